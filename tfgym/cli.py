"""The ``tfgym`` command line.

Subcommands::

    tfgym scenes                                   # bundled scenes and scene sets
    tfgym render --scene headsq --tf reference -o head.png
    tfgym render --volume scan.nii.gz --tf my_tf.json -o scan.png --view left
    tfgym demo --out runs/demo --budget 400        # CEM on a few scenes, figures + TensorBoard
    tfgym collect --scene phantom-00 --pairs 4000 --db prefs.sqlite   # simulated preferences
    tfgym train-rm --db prefs.sqlite --out rm.pt --variant mask        # reward model
    tfgym eval-rm --model rm.pt --db prefs.sqlite --scene phantom-00   # figures + metrics
    tfgym version

The commands of the reward-model pipeline are defined beside their code
(:func:`tfgym.collect.add_collect_command`, ``reward_models.train.add_train_command``,
``reward_models.evaluate.add_eval_command``); importing the latter loads torch, so the
command line takes a couple of seconds to start. A user error (missing or corrupt file,
malformed JSON, unknown scene) prints one line ``tfgym <command>: error: ...`` to stderr and
exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_USAGE = 2


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _cmd_version(args: argparse.Namespace) -> int:
    from tfgym import __version__

    print(f"tfgym {__version__}")
    return 0


def _cmd_scenes(args: argparse.Namespace) -> int:
    from tfgym.scene import SCENE_SETS, list_scenes

    scenes = list_scenes()
    width = max(len(n) for n in scenes)
    print(f"{'scene':<{width}}  description")
    print(f"{'-' * width}  {'-' * 11}")
    for name, description in scenes.items():
        print(f"{name:<{width}}  {description}")
    print()
    width = max(len(n) for n in SCENE_SETS)
    print(f"{'scene set':<{width}}  scenes")
    print(f"{'-' * width}  {'-' * 6}")
    for name, members in SCENE_SETS.items():
        shown = ", ".join(members) if len(members) <= 4 else f"{members[0]} .. {members[-1]}"
        print(f"{name:<{width}}  {len(members):>2}: {shown}")
    print("\nAny DICOM series directory, NIfTI, NRRD or MetaImage file is a scene too.")
    return 0


def save_png(path: str | Path, rgb: Any) -> Path:
    """Write an ``(H, W, 3)`` uint8 image as PNG (pillow if present, else matplotlib).

    Args:
        path: output file; missing parent directories are created.
        rgb: the image.

    Returns:
        The path written.
    """
    import numpy as np

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow comes with matplotlib
        import matplotlib.image

        matplotlib.image.imsave(out, image)
    else:
        Image.fromarray(image).save(out, format="PNG")
    return out


def _quiet_native_stderr(load: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``load`` with the process's stderr (fd 2) captured.

    ITK's file readers print parser noise straight to fd 2 before raising; on failure that
    noise is dropped (the raised error says what went wrong), on success it is passed on.
    """
    import os
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            result = load(*args, **kwargs)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        sys.stderr.write(captured.read().decode(errors="replace"))
    return result


def _render_scene(args: argparse.Namespace) -> Any:
    """The scene named by ``--scene`` or loaded from ``--volume``."""
    from tfgym.scene import Scene, load_scene, resolve_scenes
    from tfgym.volume import load_volume

    if args.scene is not None:
        if args.series_id is not None:
            raise CliError("--series-id applies to --volume DICOM directories, not to --scene")
        names = resolve_scenes(args.scene)
        if len(names) != 1:
            raise CliError(f"--scene {args.scene!r} is a scene set; name one scene of it")
        return load_scene(names[0], working_size=args.working_size)
    volume = _quiet_native_stderr(load_volume, args.volume, series_id=args.series_id)
    return Scene.from_volume(volume, working_size=args.working_size, name=str(args.volume))


def _cmd_render(args: argparse.Namespace) -> int:
    from tfgym.oracle import Oracle, reference_action, resolve_target
    from tfgym.renderer import Renderer, view_geometry
    from tfgym.transfer_function import TransferFunction

    view_geometry(args.view)  # validate before loading anything
    target = resolve_target(args.target)
    if args.image_size < 8 or args.working_size < 8:
        raise CliError("--image-size and --working-size must be at least 8")
    tf = None if args.tf == "reference" else TransferFunction.load(args.tf)  # fail fast
    scene = _render_scene(args)
    if tf is None:
        tf = TransferFunction.from_action(reference_action(scene, args.target))
    renderer = Renderer(scene, image_size=args.image_size, view=args.view)
    batch = renderer.render(tf.lut(scene.ranges)[None])
    parts = Oracle(target).evaluate(batch, renderer)
    out = save_png(args.out, batch.rgb[0])
    note = " (approximate labels: intensity classes)" if scene.labels_approximate else ""
    print(
        f"oracle score {float(parts['score'][0]):.3f} for target {args.target!r}: visibility "
        f"{float(parts['visibility'][0]):.3f}, purity {float(parts['purity'][0]):.3f}{note}"
    )
    print(f"wrote {out}")
    return 0


def _safe_name(scene: str) -> str:
    """A file-system-safe folder name for a scene name or scan path."""
    name = Path(scene).name if ("/" in scene or "\\" in scene) else scene
    for suffix in (".gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"):
        name = name.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "scene"


def _polygon_xy(tf: Any, ranges: Any) -> Any:
    """A TF's vertices in grey values (x) and gradient magnitude (y)."""
    import numpy as np

    v = np.asarray(tf.vertices, dtype=np.float64)
    x = ranges.intensity_min + (v[:, 0] + 1) / 2 * (ranges.intensity_max - ranges.intensity_min)
    return np.stack([x, (v[:, 1] + 1) / 2 * ranges.gradient_max], axis=1)


def _demo_figure(scene: Any, panels: list[tuple[str, Any, Any, float]]) -> Any:
    """Figure: per TF a column with its rendering (top) and its polygon on the JH (bottom)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Polygon

    r = scene.ranges
    extent = (r.intensity_min, r.intensity_max, 0.0, r.gradient_max)
    fig = Figure(figsize=(3.4 * len(panels), 7.0), layout="constrained")
    axes = fig.subplots(2, len(panels), squeeze=False)
    for col, (title, tf, rgb, reward) in enumerate(panels):
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(rgb)
        top.set_title(f"{title}\noracle score {reward:.3f}", fontsize=10)
        top.set_axis_off()
        bottom.imshow(
            scene.observation[0], origin="lower", extent=extent, aspect="auto", cmap="gray"
        )
        bottom.add_patch(
            Polygon(
                _polygon_xy(tf, r),
                closed=True,
                fill=True,
                facecolor=(1.0, 0.6, 0.1, 0.3),
                edgecolor=(1.0, 0.5, 0.0),
                linewidth=1.5,
            )
        )
        bottom.set_xlim(extent[0], extent[1])
        bottom.set_ylim(extent[2], extent[3])
        bottom.set_xlabel("intensity")
        bottom.set_ylabel("gradient magnitude" if col == 0 else "")
        bottom.tick_params(labelsize=7)
    labels = " (approximate labels)" if scene.labels_approximate else ""
    fig.suptitle(f"{scene.name}: joint histogram and transfer functions{labels}")
    return fig


def _figure_rgb(fig: Any) -> Any:
    """Rasterise a matplotlib figure to an ``(H, W, 3)`` uint8 array."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _demo_scene(
    env: Any, scene_name: str, budget: int, rng: Any, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    """CEM on one scene; write its figure, renderings, TFs and TensorBoard logs."""
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    from agents.search import CrossEntropySearch
    from tfgym.oracle import reference_action
    from tfgym.transfer_function import TransferFunction

    search = CrossEntropySearch(
        rng, population_size=args.population_size, progress=not args.no_progress
    )
    result = search.run(env, scene_name, budget)
    scene = env.unwrapped.renderer_for(scene_name).scene
    named = {"CEM best": result.best_action, "random": rng.uniform(-1, 1, result.best_action.size)}
    with contextlib.suppress(ValueError):  # no reference panel when the target tissue is absent
        named["reference (hand-made)"] = reference_action(scene)
    rewards, batch, _ = env.unwrapped.evaluate(np.stack(list(named.values())), scene=scene_name)
    folder = out / _safe_name(scene_name)
    folder.mkdir(parents=True, exist_ok=True)
    tfs = {k: TransferFunction.from_action(a, ranges=scene.ranges) for k, a in named.items()}
    files = ["best", "random", "reference"]
    for i, tf in enumerate(tfs.values()):
        save_png(folder / f"{files[i]}.png", batch.rgb[i])
        tf.save(folder / f"{files[i]}_tf.json")
    panels = [(t, tfs[t], batch.rgb[i], float(rewards[i])) for i, t in enumerate(tfs)]
    figure = _figure_rgb(_demo_figure(scene, panels))
    save_png(folder / "figure.png", figure)

    writer = SummaryWriter(log_dir=str(out / "tensorboard" / _safe_name(scene_name)))
    try:
        for stats in result.history:
            writer.add_scalar("search/best_reward", stats.best_reward, stats.evaluations)
            writer.add_scalar("search/mean_reward", stats.mean_reward, stats.evaluations)
        for i, name in enumerate(files[: len(tfs)]):
            writer.add_image(f"render/{name}", batch.rgb[i], 0, dataformats="HWC")
        writer.add_image("figure", figure, 0, dataformats="HWC")
    finally:
        writer.close()
    return {
        "scene": scene_name,
        "folder": str(folder),
        "labels_approximate": bool(scene.labels_approximate),
        "evaluations": result.n_evaluations,
        "iterations": len(result.history),
        "best_reward": float(rewards[0]),
        "random_reward": float(rewards[1]),
        "reference_reward": float(rewards[2]) if len(rewards) > 2 else None,
        "best_action": [float(a) for a in result.best_action],
        "best_reward_history": [s.best_reward for s in result.history],
        "mean_reward_history": [s.mean_reward for s in result.history],
    }


def _cmd_demo(args: argparse.Namespace) -> int:
    import json
    import time

    import gymnasium as gym
    import numpy as np

    from tfgym import __version__
    from tfgym.scene import resolve_scenes

    scenes = resolve_scenes(args.scenes)
    if args.population_size < 2:
        raise CliError(f"--population-size must be at least 2, got {args.population_size}")
    if args.budget < 2 * len(scenes):
        raise CliError(
            f"--budget {args.budget} is too small for {len(scenes)} scenes "
            f"(at least 2 evaluations per scene)"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = gym.make("tfgym:TransferFunction-v0", scenes=list(scenes), image_size=args.image_size)
    start = time.perf_counter()
    rows = []
    for i, name in enumerate(scenes):
        budget = args.budget // len(scenes) + (i < args.budget % len(scenes))
        rng = np.random.default_rng([args.seed, i])
        rows.append(_demo_scene(env, name, budget, rng, args, out))
    env.close()
    summary = {
        "tfgym_version": __version__,
        "config": {k: v for k, v in vars(args).items() if k not in ("func", "command")},
        "seconds": round(time.perf_counter() - start, 2),
        "scenes": rows,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\n{'scene':<14} {'random':>8} {'reference':>9} {'CEM best':>9} {'evals':>6}")
    for row in rows:
        ref = "-" if row["reference_reward"] is None else f"{row['reference_reward']:.3f}"
        print(
            f"{row['scene'][-14:]:<14} {row['random_reward']:>8.3f} {ref:>9} "
            f"{row['best_reward']:>9.3f} {row['evaluations']:>6}"
        )
    print(f"\nwrote {out}/ (figures, renderings, TFs, summary.json) in {summary['seconds']} s")
    print(f"TensorBoard: tensorboard --logdir {out / 'tensorboard'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfgym",
        description="Learn 2D transfer functions for CT volume rendering (Gymnasium env).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("scenes", help="list bundled scenes and scene sets")
    p.set_defaults(func=_cmd_scenes)

    p = sub.add_parser("version", help="print the tfgym version")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser(
        "render",
        help="render one transfer function to a PNG and print its oracle score",
        description="Render one transfer function (a JSON file, or 'reference' for the "
        "oracle's hand-made bone TF) on a scene or scan and write a PNG.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--scene", help="a bundled scene name (see `tfgym scenes`)")
    source.add_argument("--volume", help="a scan: DICOM directory, NIfTI, NRRD or MetaImage")
    p.add_argument("--tf", required=True, help="transfer function JSON file, or 'reference'")
    p.add_argument("-o", "--out", required=True, help="output PNG path")
    p.add_argument("--view", default="front", help="front, back, left/side, right, top, bottom")
    p.add_argument("--image-size", type=int, default=128, help="image side in pixels")
    p.add_argument("--working-size", type=int, default=64, help="voxels along the longest side")
    p.add_argument("--series-id", help="DICOM Series Instance UID (directories with several)")
    p.add_argument("--target", default="bone", help="oracle target (bone, bone_only, ...)")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser(
        "demo",
        help="search TFs with CEM on a few scenes; write figures, TFs and TensorBoard logs",
        description="Run the cross-entropy method on each scene (the total budget is split "
        "evenly) and write, under --out: a figure per scene (joint histogram with the polygon, "
        "renderings of the best and a random TF), the best TFs as JSON, summary.json and "
        "TensorBoard logs.",
    )
    p.add_argument("--out", default="runs/demo", help="run folder")
    p.add_argument(
        "--scenes",
        nargs="+",
        default=["phantom-00", "phantom-01", "headsq"],
        help="scene names, scene sets or scan paths",
    )
    p.add_argument("--budget", type=int, default=400, help="env evaluations in total")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--population-size", type=int, default=16, help="CEM population size")
    p.add_argument("--image-size", type=int, default=128, help="image side in pixels")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_demo)

    # preference collection and reward-model commands live beside their code
    from reward_models.evaluate import add_eval_command
    from reward_models.train import add_train_command
    from tfgym.collect import add_collect_command

    add_collect_command(sub)
    add_train_command(sub)
    add_eval_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Args:
        argv: arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        0 on success, 2 on a user error (message on stderr).

    Example:
        >>> main(["version"])  # doctest: +ELLIPSIS
        tfgym ...
        0
    """
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (CliError, OSError, ValueError) as error:  # VolumeError is a ValueError
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"tfgym {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"tfgym {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
