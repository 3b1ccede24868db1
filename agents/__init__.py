"""Agents that act in TransferFunction-v0: search baselines, SB3 PPO, the RLHF pipeline."""

from __future__ import annotations

from agents.search import CrossEntropySearch, IterationStats, RandomSearch, SearchResult

__all__ = ["CrossEntropySearch", "IterationStats", "RandomSearch", "SearchResult"]
