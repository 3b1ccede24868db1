"""The run folder of the RLHF pipeline: its config and finished phases (``state.json``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from agents.config import RLHFConfig

__all__ = ["PHASES", "RunState", "phase_rng"]

PHASES = ("experts", "baselines", "sft", "samples", "prefs", "rm", "ppo", "evaluate", "report")
"""The pipeline's phases in order (rounds ``round-k`` come between ``ppo`` and ``evaluate``)."""


@dataclass
class RunState:
    """What a run folder holds: the config and the finished phases (``state.json``)."""

    folder: Path
    config: RLHFConfig
    done: dict[str, dict[str, Any]]

    @classmethod
    def open(cls, folder: str | Path, config: RLHFConfig) -> RunState:
        """Open (resume) or create a run folder.

        Raises:
            ValueError: the folder holds a run with another config.
        """
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        if (path / "state.json").exists():
            run = cls.read(path)
            stored = run.config
            if stored != config:
                diff = sorted(
                    f.name
                    for f in fields(RLHFConfig)
                    if getattr(stored, f.name) != getattr(config, f.name)
                )
                raise ValueError(
                    f"{path} holds a run with another config (differs in {diff}); "
                    "resume it with the same settings or choose another --out"
                )
            return run
        run = cls(path, config, {})
        run.save()
        (path / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
        return run

    @classmethod
    def read(cls, folder: str | Path) -> RunState:
        """The run a folder holds, as its ``state.json`` records it.

        Raises:
            FileNotFoundError: the folder holds no run (no ``state.json``).
        """
        path = Path(folder)
        state = json.loads((path / "state.json").read_text())
        names = {f.name for f in fields(RLHFConfig)}
        config = RLHFConfig(**{k: v for k, v in state["config"].items() if k in names})
        return cls(path, config, dict(state["done"]))

    def save(self) -> None:
        """Write ``state.json`` atomically."""
        tmp = self.folder / "state.json.tmp"
        tmp.write_text(json.dumps({"config": asdict(self.config), "done": self.done}, indent=2))
        tmp.replace(self.folder / "state.json")

    def finished(self, phase: str) -> bool:
        """Whether a phase finished in this run."""
        return phase in self.done

    def finish(self, phase: str, seconds: float, **info: Any) -> None:
        """Record a finished phase (durable before the next phase starts)."""
        self.done[phase] = {"seconds": round(seconds, 2), **info}
        self.save()


def phase_rng(config: RLHFConfig, phase: str) -> np.random.Generator:
    """The random generator of one phase (independent streams from the run's seed)."""
    return np.random.default_rng([config.seed, PHASES.index(phase) if phase in PHASES else 99])
