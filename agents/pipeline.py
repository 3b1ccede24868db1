"""The full RLHF pipeline of Ziegler et al. (2020) on TransferFunction-v0, in one run folder.

Phases, each writing into the run folder and recorded in ``state.json`` when finished (a
resumed run skips finished phases; an interrupted phase starts again)::

    experts     experts.npz          per train scene: the oracle search's best TFs
    baselines   baselines.json       best constant polygon over the train scenes
    sft         sft/policy.zip       behaviour cloning of the experts (agents.sft), curve
    samples     samples.npz          per train scene: SFT samples, expert shifts, random TFs
    prefs       prefs.sqlite         preferences over the samples (the labeler)
    rm          rm.pt                reward-model ensemble (reward_models), its TensorBoard
    ppo         ppo/model.zip        PPO against the RM from the SFT policy, with the KL
                                     penalty toward it (agents.callbacks.KLPenaltyCallback)
    [round-k]   prefs + rm-k + ppo-k further rounds: the PPO policy's own samples, the pairs
                                     the ensemble disagrees on most, labeled and added
    evaluate    eval/                held-out table and figure (agents.evaluate)
    report      hacking.md/.png      RM reward against the oracle during PPO

The KL penalty is in the reward: ``r - beta * (log pi(a|s) - log pi_sft(a|s))`` for each
sampled action (``KLPenaltyCallback``); ``beta`` (``kl_beta``) is fixed, or adapted toward
``kl_target`` with Ziegler et al.'s proportional controller. The RM's rewards are
standardised on the samples it was trained on (mean 0, sd 1) before PPO sees them, so
``beta`` has the same meaning whatever the RM's scale.

``tfgym rlhf`` is a thin command over :func:`run_rlhf`.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

from agents import rlhf_phases as ph
from agents.config import RLHFConfig
from agents.run import PHASES, RunState

__all__ = ["PHASES", "RLHFConfig", "RunState", "run_rlhf"]


def _round(run: RunState, progress: bool, *, k: int) -> dict[str, Any]:
    return ph.phase_round(run, k, progress)


def run_rlhf(
    config: RLHFConfig,
    out: str | Path,
    *,
    progress: bool = True,
    log: Any = print,
) -> RunState:
    """Run (or resume) the pipeline in the folder ``out``; see the module docstring.

    Raises:
        ValueError: a folder holding another run.
    """
    run = RunState.open(out, config)
    steps = [
        ("experts", ph.phase_experts),
        ("baselines", ph.phase_baselines),
        ("sft", ph.phase_sft),
        ("samples", ph.phase_samples),
        ("prefs", ph.phase_prefs),
        ("rm", ph.phase_rm),
        ("ppo", ph.phase_ppo),
    ]
    for k in range(2, config.rounds + 1):
        steps.append((f"round-{k}", partial(_round, k=k)))
    steps += [("evaluate", ph.phase_evaluate), ("report", ph.phase_report)]
    for name, fn in steps:
        if run.finished(name):
            log(f"[rlhf] {name}: done already, skipped")
            continue
        log(f"[rlhf] {name} ...")
        start = time.perf_counter()
        info = fn(run, progress) or {}
        run.finish(name, time.perf_counter() - start, **info)
        log(f"[rlhf] {name}: finished in {run.done[name]['seconds']:.1f} s")
    return run
