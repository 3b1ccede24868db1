"""Agents that act in TransferFunction-v0: SB3 PPO, behaviour cloning, the RLHF pipeline.

The search baselines live in the core (:mod:`tfgym.search`) and are re-exported here for
convenience.
"""

from __future__ import annotations

from tfgym.search import CrossEntropySearch, IterationStats, RandomSearch, SearchResult

__all__ = ["CrossEntropySearch", "IterationStats", "RandomSearch", "SearchResult"]
