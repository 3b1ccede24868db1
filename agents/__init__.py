"""Agents that act in TransferFunction-v0: SB3 PPO, behaviour cloning, the RLHF pipeline.

The search baselines live in the core (:mod:`tfgym.search`) and are re-exported here for
convenience, with :class:`ConstantPolicy`, the constant-polygon baseline as a policy.
"""

from __future__ import annotations

from agents.constant import ConstantPolicy
from tfgym.search import (
    ConstantResult,
    CrossEntropySearch,
    IterationStats,
    RandomSearch,
    SearchResult,
    best_constant_action,
)

__all__ = [
    "ConstantPolicy",
    "ConstantResult",
    "CrossEntropySearch",
    "IterationStats",
    "RandomSearch",
    "SearchResult",
    "best_constant_action",
]
