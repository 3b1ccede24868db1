"""Scene names, the named scene sets and the pools an env draws scenes from.

Scene names:

* ``"headsq"`` -- the real CT head shipped with tfgym (64x64x93, VTK example data);
* ``"phantom-N"`` for any seed ``N >= 0`` -- the procedural CBCT head of that seed
  (:mod:`tfgym.phantoms`), deterministic; ``"phantom-7"`` and ``"phantom-07"`` name the same
  scene, whose canonical name is ``phantom_name(7) == "phantom-07"``;
* ``"phantom-N+K"`` -- the ``K`` phantoms of seeds ``N`` to ``N + K - 1`` (a run of seeds,
  e.g. ``"phantom-10000+512"`` for a fixed set of extra training scans from the procedural
  range; expanded into names by :func:`resolve_scenes`);
* any path to a DICOM series directory, NIfTI, NRRD or MetaImage file.

Scene sets: ``"train"`` (phantoms 0-31), ``"heldout"`` (phantoms 32-47), ``"phantoms"``
(both), ``"real"`` (headsq) and ``"all"`` -- fixed, named benchmark sets -- and the
``"procedural"`` pool: the :data:`PROCEDURAL_SEEDS` (a million seeds from 10000, disjoint
from the benchmark sets; seeds 48-9999 are left for users' own sets). A pool is a
:class:`ScenePool` that an env draws from (:func:`scene_pool`), never expanded into names.

Everything here is names only: :mod:`tfgym.scene` loads the scenes (and re-exports this
module's public names).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfgym.phantoms import HELDOUT_PHANTOMS, TRAIN_PHANTOMS, phantom_name, phantom_spec

__all__ = [
    "PHANTOM_NAMES",
    "PROCEDURAL",
    "PROCEDURAL_SEEDS",
    "REAL_SCANS",
    "SCENE_SETS",
    "ScenePool",
    "list_scenes",
    "match_phantom",
    "phantom_seed",
    "resolve_scenes",
    "scene_pool",
]

PHANTOM_NAMES: tuple[str, ...] = (*TRAIN_PHANTOMS, *HELDOUT_PHANTOMS)
REAL_SCANS: tuple[str, ...] = ("headsq",)
SCENE_SETS: dict[str, tuple[str, ...]] = {
    "train": tuple(TRAIN_PHANTOMS),
    "heldout": tuple(HELDOUT_PHANTOMS),
    "phantoms": PHANTOM_NAMES,
    "real": REAL_SCANS,
    "all": (*PHANTOM_NAMES, *REAL_SCANS),
}
PROCEDURAL = "procedural"
PROCEDURAL_SEEDS = range(10_000, 1_010_000)
"""Seeds of the ``"procedural"`` pool: a fresh one at each reset, never a benchmark seed."""
_PHANTOM = re.compile(r"phantom-(\d+)")
_PHANTOM_RUN = re.compile(r"phantom-(\d+)\+(\d+)")


def list_scenes() -> dict[str, str]:
    """Bundled scene names with a one-line description each (the pattern ``phantom-N`` too)."""
    out = {"headsq": "real CT head, 64x64x93, 3.2x3.2x1.5 mm (VTK example data)"}
    for name in PHANTOM_NAMES:
        split = "train" if name in TRAIN_PHANTOMS else "held-out"
        spec = phantom_spec(int(name.split("-")[1]))
        out[name] = (
            f"procedural CBCT head phantom ({split}): "
            f"{'whole-head' if spec.fov.kind == 'head' else spec.fov.kind} field of view, "
            f"{spec.anatomy.age}, {len(spec.anatomy.fillings)} metal restorations"
        )
    first, last = PROCEDURAL_SEEDS[0], PROCEDURAL_SEEDS[-1]
    out["phantom-N"] = (
        f"procedural CBCT head of any seed N >= 0 (seeds {first}-{last}: the {PROCEDURAL!r} pool)"
    )
    return out


def match_phantom(key: str) -> int | None:
    """The seed of a well-formed phantom name (``"phantom-07"``); None for anything else."""
    match = _PHANTOM.fullmatch(key)
    return None if match is None else int(match.group(1))


def phantom_seed(name: str) -> int | None:
    """The seed of a phantom's scene name; None for a name that is not ``"phantom-..."``.

    Args:
        name: a scene name, e.g. ``"phantom-7"`` or ``"phantom-07"``.

    Returns:
        The seed, or None when ``name`` does not start with ``"phantom-"``.

    Raises:
        ValueError: ``"phantom-"`` followed by anything but a non-negative integer.

    Example:
        >>> phantom_seed("phantom-7"), phantom_seed("phantom-007"), phantom_seed("headsq")
        (7, 7, None)
    """
    if not name.startswith("phantom-"):
        return None
    seed = match_phantom(name)
    if seed is None:
        raise ValueError(
            f"bad phantom name {name!r}: a phantom is 'phantom-N' with N a non-negative "
            "integer seed, e.g. 'phantom-07'"
        )
    return seed


def _scene_name(key: str) -> str:
    """The canonical name of one scene name or path; ValueError when it is neither."""
    seed = match_phantom(key)
    if seed is not None:
        return phantom_name(seed)
    if key in REAL_SCANS or Path(key).exists():
        return key
    phantom_seed(key)  # raises for a malformed phantom name
    raise ValueError(
        f"unknown scene {key!r}: not a bundled scene, a scene set or an existing path. "
        f"Scene sets: {[*SCENE_SETS, PROCEDURAL]}; scenes: {', '.join(REAL_SCANS)} and "
        "phantom-N for any seed N >= 0"
    )


def resolve_scenes(scenes: str | Path | Sequence[str | Path]) -> tuple[str, ...]:
    """Expand scene-set names and validate scene names and paths.

    Args:
        scenes: a set name (``"train"``...), a scene name, a run of phantom seeds
            (``"phantom-N+K"``), a path, or a sequence of those.

    Returns:
        The canonical scene names (``"phantom-7"`` becomes ``"phantom-07"``) and paths, in
        order, without duplicates.

    Raises:
        ValueError: an unknown name that is not an existing path, a malformed phantom name,
            an empty list, or ``"procedural"`` (a pool to draw from: :func:`scene_pool`).

    Example:
        >>> resolve_scenes(["headsq", "heldout"])[:2]
        ('headsq', 'phantom-32')
        >>> resolve_scenes(["phantom-7", "phantom-123456"])
        ('phantom-07', 'phantom-123456')
        >>> resolve_scenes("phantom-10000+3")
        ('phantom-10000', 'phantom-10001', 'phantom-10002')
    """
    items = [scenes] if isinstance(scenes, str | Path) else list(scenes)
    out: list[str] = []
    for item in items:
        key = str(item)
        run = _PHANTOM_RUN.fullmatch(key)
        if key in SCENE_SETS:
            out.extend(SCENE_SETS[key])
        elif run is not None:
            first, count = int(run.group(1)), int(run.group(2))
            if count < 1:
                raise ValueError(f"bad seed run {key!r}: 'phantom-N+K' needs K >= 1")
            out.extend(phantom_name(seed) for seed in range(first, first + count))
        elif key == PROCEDURAL:
            raise ValueError(
                f"{PROCEDURAL!r} is a pool of {len(PROCEDURAL_SEEDS):,} phantom seeds, not a "
                f"list of scenes: draw from scene_pool({PROCEDURAL!r}) (the env takes "
                f"scenes={PROCEDURAL!r})"
            )
        else:
            out.append(_scene_name(key))
    if not out:
        raise ValueError("no scenes given")
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class ScenePool:
    """Scenes to draw from, uniformly: named scenes and a range of phantom seeds.

    A pool is never expanded into a list of names: ``"procedural"`` is
    ``ScenePool(seeds=PROCEDURAL_SEEDS)``, a million phantoms. A phantom drawn from
    ``seeds`` is *fresh* (:meth:`is_fresh`): it will hardly be drawn again, so the env builds
    it outside the process scene cache (its volume still comes from the disk cache).

    Attributes:
        names: scene names, set names or scan paths (made canonical, without duplicates).
        seeds: phantom seeds, a ``range`` of non-negative integers.

    Raises:
        ValueError: an empty pool, a bad name, or seeds that are not a non-negative range.

    Example:
        >>> pool = scene_pool("procedural")
        >>> len(pool), "phantom-10000" in pool, "phantom-07" in pool
        (1000000, True, False)
        >>> pool.sample(np.random.default_rng(0)) in pool
        True
        >>> list(ScenePool(("headsq",), seeds=range(3, 5)))
        ['headsq', 'phantom-03', 'phantom-04']
    """

    names: tuple[str, ...] = ()
    seeds: range = range(0)

    def __post_init__(self) -> None:
        """Validate the seeds and make the names canonical."""
        if not isinstance(self.seeds, range) or (
            len(self.seeds) and min(self.seeds[0], self.seeds[-1]) < 0
        ):
            raise ValueError(f"seeds must be a range of non-negative integers, got {self.seeds!r}")
        if self.names:
            object.__setattr__(self, "names", resolve_scenes(self.names))
        if len(self) == 0:
            raise ValueError("a scene pool needs at least one scene or seed")

    def __len__(self) -> int:
        return len(self.names) + len(self.seeds)

    def __getitem__(self, index: int) -> str:
        n = len(self.names)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"scene pool index {index} out of range")
        return self.names[index] if index < n else phantom_name(self.seeds[index - n])

    def __iter__(self) -> Iterator[str]:
        yield from self.names
        for seed in self.seeds:
            yield phantom_name(seed)

    def __contains__(self, scene: object) -> bool:
        if not isinstance(scene, str | Path):
            return False
        key = str(scene)
        seed = match_phantom(key)
        if seed is None:
            return key in self.names
        return seed in self.seeds or phantom_name(seed) in self.names

    def sample(self, rng: np.random.Generator) -> str:
        """One scene name, drawn uniformly with ``rng`` (one ``rng.integers`` call)."""
        return self[int(rng.integers(len(self)))]

    def is_fresh(self, scene: str) -> bool:
        """Whether ``scene`` comes from the seed range and is not one of the named scenes."""
        return scene not in self.names and scene in self


def scene_pool(scenes: str | Path | Sequence[str | Path] | ScenePool) -> ScenePool:
    """The :class:`ScenePool` of a scene set, scene, path, list of those, or ``"procedural"``.

    ``"procedural"`` stands alone: mixed with other scenes, their share of uniform draws from
    a million seeds would be nil; build ``ScenePool(names, seeds=PROCEDURAL_SEEDS)`` to mix.

    Raises:
        ValueError: as :func:`resolve_scenes`, or ``"procedural"`` mixed with other scenes.

    Example:
        >>> scene_pool("procedural").seeds == PROCEDURAL_SEEDS
        True
        >>> scene_pool("heldout").names[:2]
        ('phantom-32', 'phantom-33')
    """
    if isinstance(scenes, ScenePool):
        return scenes
    items = [str(scenes)] if isinstance(scenes, str | Path) else [str(s) for s in scenes]
    if PROCEDURAL in items:
        if set(items) != {PROCEDURAL}:
            raise ValueError(
                f"{PROCEDURAL!r} cannot be mixed with other scenes ({items}): build "
                "ScenePool(names, seeds=PROCEDURAL_SEEDS) to draw uniformly from both"
            )
        return ScenePool(seeds=PROCEDURAL_SEEDS)
    return ScenePool(names=resolve_scenes(items))
