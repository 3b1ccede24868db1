"""Agents that act in TransferFunction-v0: SB3 PPO, behaviour cloning, the RLHF pipeline.

The agent interface (:mod:`agents.base`): :class:`Policy` (SB3's ``predict``) and
:class:`Agent` (also ``learn``), which SB3 models satisfy as they are. The search agents
(:mod:`agents.search_agents`) learn from env steps like an RL agent: per-scan random search
and CMA-ES, and the constant polygon. The search baselines live in the core
(:mod:`tfgym.search`) and are re-exported here for convenience, with
:class:`ConstantPolicy`, the constant-polygon baseline as a policy.
"""

from __future__ import annotations

from agents.base import Agent, Policy, StepAgent, observation_key
from agents.constant import ConstantPolicy
from agents.search_agents import CMAESAgent, ConstantAgent, RandomSearchAgent
from tfgym.search import (
    CMAESSearch,
    ConstantResult,
    CrossEntropySearch,
    IterationStats,
    RandomSearch,
    SearchResult,
    best_constant_action,
)

__all__ = [
    "Agent",
    "CMAESAgent",
    "CMAESSearch",
    "ConstantAgent",
    "ConstantPolicy",
    "ConstantResult",
    "CrossEntropySearch",
    "IterationStats",
    "Policy",
    "RandomSearch",
    "RandomSearchAgent",
    "SearchResult",
    "StepAgent",
    "best_constant_action",
    "observation_key",
]
