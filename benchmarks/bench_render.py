"""Benchmark: tfgym's batched renderer against VTK's 2D-TF GPU ray caster.

Measured in one run, same volume, same transfer functions (TFs), same image size and view,
shading on:

1. tfgym ``Renderer.render`` (compiled CPU kernel) against ``tfgym.vtk_render.VtkRenderer.render``
   (VTK's ``vtkGPUVolumeRayCastMapper`` in 2D-TF mode, offscreen; on a machine without a GPU
   that is Mesa's ``llvmpipe`` CPU rasteriser -- the JSON records the OpenGL renderer) on
   headsq and on a 128^3 phantom: median time per render after warm-up, and the ratio.
   Each timed call renders the next of a cycle of different bone-like TFs, so neither side
   can reuse a result; VTK's time includes building and uploading its 1024 x 1024 TF
   texture, as it must for every new TF. "VTK same-TF" re-renders without changing the TF
   (ray casting and read-back only), for reference.
2. tfgym time per render for 64^3, 128^3 and 256^3 phantoms, and per TF when rendering a
   batch of B = 1, 8, 32 TFs in one call.

Usage::

    python benchmarks/bench_render.py                      # writes runs/bench/bench_render.json
    python benchmarks/bench_render.py --sizes 64 128 --batches 1 8 --repeats 5
"""

from __future__ import annotations

import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tyro
from _common import machine_info
from tqdm import tqdm


@dataclass
class Args:
    """Benchmark options."""

    out: Path = Path("runs/bench/bench_render.json")
    """Where to write the JSON results."""
    image_size: int = 128
    """Side of the square images in pixels."""
    view: str = "front"
    """View preset for every render."""
    compare_scenes: tuple[str, ...] = ("headsq", "phantom-00")
    """Scenes for the tfgym-vs-VTK comparison."""
    compare_sizes: tuple[int, ...] = (64, 128)
    """Working size of each comparison scene (headsq at 64 is its native resolution)."""
    sizes: tuple[int, ...] = (64, 128, 256)
    """Phantom working sizes for the tfgym scaling table."""
    batches: tuple[int, ...] = (1, 8, 32)
    """Batch sizes (TFs per render call) for the tfgym scaling table."""
    phantom: str = "phantom-00"
    """Phantom used for the scaling table."""
    n_tfs: int = 8
    """Distinct TFs cycled through by the timed calls."""
    warmup: int = 2
    """Untimed calls before timing."""
    repeats: int = 15
    """Timed calls per measurement (at most)."""
    max_seconds: float = 20.0
    """Stop a measurement after this much time once 3 calls are timed."""
    threads: int | None = None
    """torch threads (default: torch's default, normally one per core)."""
    seed: int = 0
    """Seed of the TF jitter."""


def bone_luts(scene: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` bone-like LUTs: opacity 0.6-0.9 above a jittered bone threshold, all gradients."""
    from tfgym.transfer_function import TransferFunction
    from tfgym.volume import Tissue

    r = scene.ranges
    low = float(scene.tissue_intensity(Tissue.BONE, (10.0, 90.0))[0])
    x0 = 2 * (low - r.intensity_min) / (r.intensity_max - r.intensity_min) - 1
    luts = []
    for _ in range(n):
        x = float(np.clip(x0 + rng.uniform(-0.1, 0.1), -1.0, 0.95))
        y = float(rng.uniform(-1.0, -0.8))
        tf = TransferFunction(
            ((x, y), (1.0, y), (1.0, 1.0), (x, 1.0)), opacity=float(rng.uniform(0.6, 0.9))
        )
        luts.append(tf.lut(r))
    return np.stack(luts)


def timed(
    contenders: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]], args: Args
) -> dict[str, dict[str, float]]:
    """Seconds per call of each contender ``fn(input)``, cycling through its inputs.

    The contenders' calls are interleaved (A, B, A, B, ...) so that a background load on the
    machine slows all of them alike. Returns median, min and max seconds and the count.
    """
    for i in range(args.warmup):
        for fn, inputs in contenders.values():
            fn(inputs[i % len(inputs)])
    times: dict[str, list[float]] = {name: [] for name in contenders}
    start = time.perf_counter()
    for i in range(args.repeats):
        for name, (fn, inputs) in contenders.items():
            item = inputs[(args.warmup + i) % len(inputs)]
            t0 = time.perf_counter()
            fn(item)
            times[name].append(time.perf_counter() - t0)
        if i >= 2 and time.perf_counter() - start > args.max_seconds:
            break
    return {
        name: {
            "median_s": statistics.median(t),
            "min_s": min(t),
            "max_s": max(t),
            "n": len(t),
        }
        for name, t in times.items()
    }


def compare(args: Args, rng: np.random.Generator, bar: tqdm) -> tuple[list[dict], str]:
    """tfgym vs VTK on each comparison scene."""
    from tfgym.renderer import Renderer
    from tfgym.scene import load_scene
    from tfgym.vtk_render import VtkRenderer

    rows, gl = [], "unknown"
    for name, size in zip(args.compare_scenes, args.compare_sizes, strict=True):
        bar.set_description(f"compare {name} @{size}: setup")
        scene = load_scene(name, working_size=size)
        luts = bone_luts(scene, args.n_tfs, rng)
        t0 = time.perf_counter()
        ours = Renderer(scene, image_size=args.image_size, view=args.view, shading=True)
        ours_setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        vtk_renderer = VtkRenderer(
            scene.volume, scene.ranges, image_size=args.image_size, shading=True
        )
        gl = vtk_renderer.opengl_renderer  # also opens the window
        vtk_setup = time.perf_counter() - t0
        try:
            bar.set_description(f"compare {name} @{size}: timing")
            render_vtk = functools.partial(vtk_renderer.render, view=args.view)
            t = timed(
                {
                    "tfgym": (ours.render, [lut[None] for lut in luts]),
                    "vtk": (render_vtk, list(luts)),
                    "vtk_tf_unchanged": (render_vtk, [None]),
                },
                args,
            )
            t_ours, t_vtk, t_vtk_same = t["tfgym"], t["vtk"], t["vtk_tf_unchanged"]
            bar.update()
        finally:
            vtk_renderer.close()
        rows.append(
            {
                "scene": name,
                "shape": list(scene.volume.shape),
                "tfgym": t_ours,
                "vtk": t_vtk,
                "vtk_tf_unchanged": t_vtk_same,
                "tfgym_setup_s": ours_setup,
                "vtk_setup_s": vtk_setup,
                "speedup_tfgym_over_vtk": t_vtk["median_s"] / t_ours["median_s"],
            }
        )
    return rows, gl


def scaling(args: Args, rng: np.random.Generator, bar: tqdm) -> list[dict]:
    """tfgym per-TF time against volume size and batch size."""
    from tfgym.renderer import Renderer
    from tfgym.scene import load_scene

    rows = []
    for size in args.sizes:
        bar.set_description(f"scaling {size}^3: setup")
        scene = load_scene(args.phantom, working_size=size)
        renderer = Renderer(scene, image_size=args.image_size, view=args.view, shading=True)
        luts = bone_luts(scene, max(args.batches) + args.n_tfs, rng)
        for b in args.batches:
            bar.set_description(f"scaling {size}^3: batch {b}")
            batches = [np.roll(luts, -i, axis=0)[:b] for i in range(args.n_tfs)]
            t = timed({"tfgym": (renderer.render, batches)}, args)["tfgym"]
            rows.append(
                {
                    "phantom": args.phantom,
                    "working_size": size,
                    "shape": list(scene.volume.shape),
                    "batch": b,
                    "per_call": t,
                    "per_tf_s": t["median_s"] / b,
                }
            )
            bar.update()
    return rows


def main(args: Args) -> dict[str, Any]:
    """Run both measurements, print tables, write JSON."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    total = len(args.compare_scenes) + len(args.sizes) * len(args.batches)
    with tqdm(total=total, file=sys.stderr) as bar:
        comparison, gl = compare(args, rng, bar)
        scale = scaling(args, rng, bar)

    print(
        f"\ntfgym vs VTK 2D-TF ray casting ({args.image_size}x{args.image_size}, shading, "
        f"view {args.view}; OpenGL: {gl})"
    )
    print(
        f"{'scene':<12} {'shape':<14} {'tfgym ms':>9} {'(min)':>7} {'VTK ms':>9} {'(min)':>7} "
        f"{'VTK/tfgym':>10} {'VTK same-TF ms':>15}"
    )
    for row in comparison:
        print(
            f"{row['scene']:<12} {'x'.join(map(str, row['shape'])):<14} "
            f"{1e3 * row['tfgym']['median_s']:>9.2f} {1e3 * row['tfgym']['min_s']:>7.2f} "
            f"{1e3 * row['vtk']['median_s']:>9.2f} {1e3 * row['vtk']['min_s']:>7.2f} "
            f"{row['speedup_tfgym_over_vtk']:>10.1f} "
            f"{1e3 * row['vtk_tf_unchanged']['median_s']:>15.2f}"
        )
    print(f"\ntfgym per-TF time ({args.phantom}, {args.image_size}x{args.image_size}, shading)")
    print(f"{'shape':<14} {'batch':>5} {'ms/call':>9} {'(min)':>9} {'ms/TF':>9}")
    for row in scale:
        print(
            f"{'x'.join(map(str, row['shape'])):<14} {row['batch']:>5} "
            f"{1e3 * row['per_call']['median_s']:>9.2f} {1e3 * row['per_call']['min_s']:>9.2f} "
            f"{1e3 * row['per_tf_s']:>9.2f}"
        )
    config = asdict(args)
    result = {
        "benchmark": "bench_render",
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in config.items()},
        "machine": machine_info(opengl_renderer=gl, torch_threads=torch.get_num_threads()),
        "tfgym_vs_vtk": comparison,
        "tfgym_scaling": scale,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main(tyro.cli(Args))
