"""``tfgym scenes``, ``tfgym render`` and ``tfgym version``."""

from __future__ import annotations

import argparse
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tfgym.cli.common import CliError, add_command, quiet_native_stderr
from tfgym.cli.options import add_config_options
from tfgym.scoring import ScoringSettings

__all__ = ["register"]

RENDER_SETTINGS = (
    "working_size",
    "histogram_bins",
    "image_size",
    "view",
    "shading",
    "target",
    "device",
)


def _version(args: argparse.Namespace) -> int:
    from tfgym import __version__

    print(f"tfgym {__version__}")
    return 0


def _scenes(args: argparse.Namespace) -> int:
    from tfgym.cache import cache_info, clear_cache
    from tfgym.scene_sets import PROCEDURAL, PROCEDURAL_SEEDS, SCENE_SETS, list_scenes

    if args.clear_cache:
        freed = clear_cache(stale_only=args.clear_cache == "stale")
        print(f"deleted {freed / 2**20:.1f} MiB of cached phantom volumes")
        return 0
    if args.warm:
        return _warm(args)
    scenes = list_scenes()
    width = max(len(n) for n in scenes)
    print(f"{'scene':<{width}}  description")
    print(f"{'-' * width}  {'-' * 11}")
    for name, description in scenes.items():
        print(f"{name:<{width}}  {description}")
    print()
    sets = {name: f"{len(m):>2}: {_members(m)}" for name, m in SCENE_SETS.items()}
    first, last = PROCEDURAL_SEEDS[0], PROCEDURAL_SEEDS[-1]
    sets[PROCEDURAL] = (
        f"a fresh seed at each reset from {len(PROCEDURAL_SEEDS):,}: phantom-{first} .. "
        f"phantom-{last}"
    )
    width = max(len(n) for n in sets)
    print(f"{'scene set':<{width}}  scenes")
    print(f"{'-' * width}  {'-' * 6}")
    for name, shown in sets.items():
        print(f"{name:<{width}}  {shown}")
    print("\nAny DICOM series directory, NIfTI, NRRD or MetaImage file is a scene too.")
    info = cache_info()
    if info.root is None:
        print("Phantom disk cache: off (TFGYM_CACHE_DIR is empty).")
    else:
        print(
            f"Phantom disk cache: {info.root} ({info.entries} volumes, "
            f"{info.nbytes / 2**20:.1f} MiB; {info.stale_nbytes / 2**20:.1f} MiB stale; "
            f"limit {info.max_bytes / 2**20:.0f} MiB). Fill it with --warm SET."
        )
    return 0


def _members(members: tuple[str, ...]) -> str:
    return ", ".join(members) if len(members) <= 4 else f"{members[0]} .. {members[-1]}"


def _warm(args: argparse.Namespace) -> int:
    """Generate the phantom volumes of ``--warm`` scenes into the disk cache."""
    from tqdm import tqdm

    from tfgym.cache import cache_info, warm_phantoms
    from tfgym.scene import phantom_seed, phantom_sizes, resolve_scenes

    if args.jobs < 1:
        raise CliError(f"--jobs must be at least 1, got {args.jobs}")
    if any(n < 16 for n in args.working_size):
        raise CliError(f"--working-size must be at least 16, got {args.working_size}")
    info = cache_info()
    if info.root is None:
        raise CliError("the disk cache is off (TFGYM_CACHE_DIR is empty): nothing to warm")
    if "procedural" in args.warm:
        raise CliError(
            "--warm procedural: the pool's million seeds are drawn at random and cached as "
            "they are used; warm a scene set or phantom-N names"
        )
    try:
        names = resolve_scenes(args.warm)
    except ValueError as e:
        raise CliError(str(e)) from None
    seeds = [s for s in (phantom_seed(n) for n in names) if s is not None]
    if not seeds:
        raise CliError(f"--warm {' '.join(args.warm)}: no phantoms (other scans are read as is)")
    sizes = sorted({n for ws in args.working_size for n in phantom_sizes(ws)})
    done = warm_phantoms(seeds, sizes=sizes, jobs=args.jobs)
    bar = tqdm(done, total=len(seeds) * len(sizes), desc="phantoms", unit="volume")
    deque(bar, maxlen=0)  # drain it: each volume, generated or found, advances the bar
    info = cache_info()
    print(
        f"{len(seeds)} phantoms at sizes {sizes} are cached in {info.root} "
        f"({info.entries} volumes, {info.nbytes / 2**20:.1f} MiB)"
    )
    return 0


def _scene(args: argparse.Namespace, settings: ScoringSettings) -> Any:
    """The scene named by ``--scene`` or loaded from ``--volume``."""
    from tfgym.scene import Scene, load_scene, resolve_scenes
    from tfgym.volume_io import load_volume

    if args.scene is not None:
        if args.series_id is not None:
            raise CliError("--series-id applies to --volume DICOM directories, not to --scene")
        names = resolve_scenes(args.scene)
        if len(names) != 1:
            raise CliError(f"--scene {args.scene!r} is a scene set; name one scene of it")
        return load_scene(
            names[0], working_size=settings.working_size, histogram_bins=settings.histogram_bins
        )
    volume = quiet_native_stderr(load_volume, args.volume, series_id=args.series_id)
    return Scene.from_volume(
        volume,
        working_size=settings.working_size,
        histogram_bins=settings.histogram_bins,
        name=str(args.volume),
    )


def _render(args: argparse.Namespace) -> int:
    from tfgym.figures import save_png
    from tfgym.oracle.reference import reference_action
    from tfgym.scoring import SceneScorer
    from tfgym.transfer_function import TransferFunction

    if Path(args.out).suffix.lower() != ".png":
        raise CliError(f"-o {args.out}: output images are PNG; use a .png file name")
    settings = ScoringSettings(**args.command_spec.values(args, "settings"))
    tf = None if args.tf == "reference" else TransferFunction.load(args.tf)  # fail fast
    scene = _scene(args, settings)
    if tf is None:
        tf = TransferFunction.from_action(reference_action(scene, settings.target))
    else:
        print(_mapping_note(tf, scene.ranges, args.tf_mapping))
        try:
            tf = tf.mapped(scene.ranges, args.tf_mapping)
        except ValueError as e:
            raise CliError(f"--tf-mapping {args.tf_mapping}: {e}") from e
    settings = replace(settings, n_vertices=len(tf.vertices))
    batch = SceneScorer(scene, settings).score_tfs([tf], renderings=True)
    assert batch.renderings is not None
    out = save_png(args.out, batch.renderings.rgb[0])
    note = " (approximate labels: intensity classes)" if scene.labels_approximate else ""
    print(
        f"oracle score {batch.oracle_score[0]:.3f} for target {settings.target!r}: visibility "
        f"{batch.visibility[0]:.3f}, purity {batch.purity[0]:.3f}, structure "
        f"{batch.structure[0]:.3f}{note}"
    )
    if not batch.target_plausible:
        print(f"warning: {batch.target_warning}; this oracle score means nothing for this scan")
    print(f"wrote {out}")
    return 0


def _mapping_note(tf: Any, ranges: Any, mapping: str) -> str:
    """Say how a TF from a JSON file lands on this scan's histogram."""
    old = tf.ranges
    if old is None:
        return f"TF mapping: {mapping} (the TF records no grey-value ranges)"
    same = np.allclose(
        [old.intensity_min, old.intensity_max, old.gradient_max],
        [ranges.intensity_min, ranges.intensity_max, ranges.gradient_max],
        rtol=1e-6,
    )
    if same:
        return f"TF mapping: {mapping} (this scan has the histogram the TF was designed on)"
    how = (
        "polygon kept relative to this scan's histogram axes"
        if mapping == "relative"
        else "polygon kept at its grey values and gradients"
    )
    return (
        f"TF mapping: {mapping}, {how}; designed on grey values "
        f"{old.intensity_min:.6g}..{old.intensity_max:.6g}, this scan's histogram spans "
        f"{ranges.intensity_min:.6g}..{ranges.intensity_max:.6g} "
        f"(--tf-mapping {'absolute' if mapping == 'relative' else 'relative'} for the other choice)"
    )


def register(subparsers: Any) -> None:
    """Add ``scenes``, ``version`` and ``render``."""
    p, _ = add_command(
        subparsers,
        "scenes",
        _scenes,
        help="list bundled scenes and scene sets; fill or clear the phantom disk cache",
        description="List scenes and scene sets. --warm generates phantom volumes into the "
        "disk cache ($TFGYM_CACHE_DIR, default the user cache dir) so that no reset waits "
        "for them.",
    )
    p.add_argument(
        "--warm",
        nargs="+",
        metavar="SCENE",
        help="scene sets or phantom-N names whose volumes to generate into the disk cache",
    )
    p.add_argument(
        "--working-size",
        type=int,
        nargs="+",
        default=[64],
        help="working sizes to warm (default 64; e.g. 64 256 for training and display)",
    )
    p.add_argument("--jobs", type=int, default=1, help="processes generating volumes at once")
    p.add_argument(
        "--clear-cache",
        choices=("all", "stale"),
        help="delete all cached phantom volumes, or those of older generator versions",
    )
    add_command(subparsers, "version", _version, help="print the tfgym version")
    p, command = add_command(
        subparsers,
        "render",
        _render,
        help="render one transfer function to a PNG and print its oracle score",
        description="Render one transfer function (a JSON file, or 'reference' for the "
        "oracle's hand-made bone TF) on a scene or scan and write a PNG.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--scene", help="a bundled scene name (see `tfgym scenes`)")
    source.add_argument("--volume", help="a scan: DICOM directory, NIfTI, NRRD or MetaImage")
    p.add_argument("--tf", required=True, help="transfer function JSON file, or 'reference'")
    p.add_argument("-o", "--out", required=True, help="output PNG path")
    p.add_argument(
        "--tf-mapping",
        choices=("relative", "absolute"),
        default="relative",
        help="how a TF designed on another scan is placed on this scan's histogram: "
        "'relative' to its axes (as the env and agents do) or at the 'absolute' grey values "
        "the TF recorded (default: relative)",
    )
    p.add_argument("--series-id", help="DICOM Series Instance UID (directories with several)")
    command.add_group("settings", add_config_options(p, ScoringSettings, include=RENDER_SETTINGS))
    command.options.update(series_id="--series-id", out="-o", tf_mapping="--tf-mapping")
