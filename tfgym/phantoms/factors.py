"""The variation factors of the phantom distribution: what varies between real CBCT scans.

Each factor has its own random stream (``np.random.default_rng([seed, stream])``), so setting
one factor to its neutral value (``make_phantom(seed, neutral={"noise"})``) changes that
factor only and leaves every other draw of the seed as it was. That is how
``benchmarks/bench_scenes.py`` measures how far each factor moves the target's cluster in the
normalised joint histogram.

The table :data:`FACTORS` names each factor, its real-world cause and its documented range;
the modules that implement them say how.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FACTORS", "Factor", "check_neutral"]


@dataclass(frozen=True)
class Factor:
    """One variation factor.

    Attributes:
        name: key used in ``neutral=``.
        stream: index of the factor's random stream, ``default_rng([seed, stream])``.
        cause: the real-world cause of the variation.
        range: the range drawn, in words (units, distribution, how often).
        neutral: what the factor is when neutralised.
    """

    name: str
    stream: int
    cause: str
    range: str
    neutral: str


FACTORS: dict[str, Factor] = {
    f.name: f
    for f in (
        Factor("fov", 1, "TODO", "TODO", "TODO"),
        Factor("noise", 2, "TODO", "TODO", "TODO"),
        Factor("scatter", 3, "TODO", "TODO", "TODO"),
        Factor("beam_hardening", 4, "TODO", "TODO", "TODO"),
        Factor("metal", 5, "TODO", "TODO", "TODO"),
        Factor("kernel", 6, "TODO", "TODO", "TODO"),
        Factor("grey_mapping", 7, "TODO", "TODO", "TODO"),
        Factor("patient", 8, "TODO", "TODO", "TODO"),
        Factor("aids", 9, "TODO", "TODO", "TODO"),
    )
}


def check_neutral(neutral: object) -> frozenset[str]:
    """Validate a collection of factor names; returns it as a frozenset.

    Raises:
        ValueError: a name that is not a key of :data:`FACTORS`.
    """
    if neutral is None:
        return frozenset()
    if isinstance(neutral, str):
        neutral = (neutral,)
    names = frozenset(str(n) for n in neutral)  # type: ignore[attr-defined]
    unknown = sorted(names - set(FACTORS))
    if unknown:
        raise ValueError(f"unknown variation factor(s) {unknown}; valid: {list(FACTORS)}")
    return names
