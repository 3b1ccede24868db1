"""The simulated labeler: a human-like answer to "which rendering is better?".

Simulated labeler
-----------------
Compares two scores ``s_a, s_b`` as a human would and answers ``mu`` in ``{1, 0.5, 0}`` (a is
better / about equal / b is better), the target of the Bradley-Terry loss. In order:

1. with probability ``skip_rate`` the pair is skipped (``mu = NaN``);
2. if ``|s_a - s_b| < equal_band`` the answer is "equal" (``mu = 0.5``);
3. otherwise ``mu = 1`` with Bradley-Terry probability ``sigmoid((s_a - s_b) / temperature)``
   (``temperature = 0``: always the better one), else ``mu = 0``;
4. with probability ``mistake_rate`` a non-tie answer is flipped (a slip of the mouse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LABELER_PRESETS", "SimulatedLabeler", "labeler_id", "make_labeler"]


@dataclass(frozen=True)
class SimulatedLabeler:
    """A simulated human comparing two renderings by their oracle scores.

    Attributes:
        temperature: Bradley-Terry temperature on score differences (0 = deterministic).
        equal_band: score differences below this are answered "equal" (0.5).
        mistake_rate: probability of flipping a non-tie answer.
        skip_rate: probability of skipping a pair (answer NaN).
    """

    temperature: float = 0.05
    equal_band: float = 0.02
    mistake_rate: float = 0.05
    skip_rate: float = 0.0

    def __post_init__(self) -> None:
        """Validate parameters."""
        for name in ("temperature", "equal_band"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("mistake_rate", "skip_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def prob_a_better(self, score_a: np.ndarray, score_b: np.ndarray) -> np.ndarray:
        """Bradley-Terry probability that ``a`` is preferred (before ties and mistakes)."""
        diff = np.asarray(score_a, np.float64) - np.asarray(score_b, np.float64)
        if self.temperature == 0:
            return np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
        return 0.5 * (1.0 + np.tanh(diff / (2.0 * self.temperature)))  # stable sigmoid

    def compare(
        self, score_a: np.ndarray, score_b: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Answers ``mu`` (1, 0.5, 0, or NaN when skipped) for pairs of scores.

        Example:
            >>> lab = LABELER_PRESETS["perfect"]
            >>> lab.compare(np.array([0.9, 0.1, 0.5]), np.array([0.2, 0.8, 0.5]),
            ...             np.random.default_rng(0))
            array([1. , 0. , 0.5])
        """
        a, b = np.broadcast_arrays(np.asarray(score_a, np.float64), np.asarray(score_b, np.float64))
        mu = (rng.random(a.shape) < self.prob_a_better(a, b)).astype(np.float64)
        tie = np.abs(a - b) < self.equal_band
        tie |= (a == b) & (self.temperature == 0)
        mistake = rng.random(a.shape) < self.mistake_rate
        mu = np.where(mistake, 1.0 - mu, mu)
        mu[tie] = 0.5
        mu[rng.random(a.shape) < self.skip_rate] = np.nan
        return mu


LABELER_PRESETS: dict[str, SimulatedLabeler] = {
    "perfect": SimulatedLabeler(temperature=0.0, equal_band=0.0, mistake_rate=0.0),
    # equal_band 0.014: 17 % ties (10-23 %) on the paper protocol over the train phantoms;
    # the paper had 613 of 4000 (15 %)
    "noisy": SimulatedLabeler(temperature=0.05, equal_band=0.014, mistake_rate=0.05),
    "mistaken": SimulatedLabeler(temperature=0.05, equal_band=0.02, mistake_rate=0.2),
    "indecisive": SimulatedLabeler(temperature=0.05, equal_band=0.1, mistake_rate=0.05),
    "distracted": SimulatedLabeler(
        temperature=0.1, equal_band=0.02, mistake_rate=0.1, skip_rate=0.2
    ),
}


def make_labeler(preset: str | SimulatedLabeler) -> SimulatedLabeler:
    """A labeler from a preset name of :data:`LABELER_PRESETS` (or pass one through)."""
    if isinstance(preset, SimulatedLabeler):
        return preset
    if preset not in LABELER_PRESETS:
        raise ValueError(f"unknown labeler preset {preset!r}; valid: {sorted(LABELER_PRESETS)}")
    return LABELER_PRESETS[preset]


def labeler_id(labeler: str | SimulatedLabeler) -> str:
    """``"sim:<preset>"`` for a preset (name or equal instance), else ``"sim:custom(...)"``.

    Example:
        >>> labeler_id("noisy"), labeler_id(SimulatedLabeler(0.0, 0.0, 0.0))
        ('sim:noisy', 'sim:perfect')
    """
    lab = make_labeler(labeler)
    for name, preset in LABELER_PRESETS.items():
        if preset == lab:
            return f"sim:{name}"
    return (
        f"sim:custom(temperature={lab.temperature},equal_band={lab.equal_band},"
        f"mistake_rate={lab.mistake_rate},skip_rate={lab.skip_rate})"
    )
