"""Renderer on a torch device (e.g. CUDA) against the compiled CPU kernel, in one run.

Checks that both paths agree (max abs difference of alpha and label contributions) and times
one TF and batches of TFs on each. Needs a machine with the device; on a CPU-only machine run
it with ``--device cpu`` to time the dense torch path against the kernel.

    python benchmarks/bench_render_device.py --device cuda
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro
from _common import cpu_name, machine_info

from tfgym.renderer import Renderer
from tfgym.scene import load_scene
from tfgym.transfer_function import TransferFunction


@dataclass
class Args:
    """Benchmark settings."""

    device: str = "cuda"
    """torch device to compare with the CPU kernel."""
    scene: str = "phantom-00"
    """scene name."""
    sizes: tuple[int, ...] = (64, 128, 256)
    """working sizes (longest side) to time."""
    batches: tuple[int, ...] = (1, 32, 256)
    """batch sizes (TFs per render call)."""
    repeats: int = 5
    """timed repeats per measurement (median reported)."""
    out: Path = Path("runs/bench/bench_render_device.json")
    """where to write the JSON results."""


def _median_ms(fn, repeats: int, sync) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def main(args: Args) -> dict:
    rng = np.random.default_rng(0)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rows = []
    for size in args.sizes:
        scene = load_scene(args.scene, working_size=size)
        cpu = Renderer(scene)
        gpu = Renderer(scene, device=args.device)
        tfs = [
            TransferFunction.from_action(rng.uniform(-1, 1, 8)) for _ in range(max(args.batches))
        ]
        luts = np.stack([tf.lut(scene.ranges) for tf in tfs]).astype(np.float32)
        luts_t = torch.from_numpy(luts).to(dev)  # a tensor always takes the dense torch path
        a, b = cpu.render(luts[:8]), gpu.render(luts_t[:8])
        err_alpha = float(np.abs(a.alpha - b.alpha).max())
        err_contrib = float(np.abs(a.label_contrib - b.label_contrib).max() / cpu.plane_pixels)
        for batch in args.batches:
            t_cpu = _median_ms(
                lambda cpu=cpu, luts=luts, batch=batch: cpu.render(luts[:batch]),
                args.repeats,
                lambda: None,
            )
            t_dev = _median_ms(
                lambda gpu=gpu, lt=luts_t, batch=batch: gpu.render(lt[:batch]), args.repeats, sync
            )
            rows.append(
                {
                    "size": size,
                    "shape": list(scene.volume.shape),
                    "batch": batch,
                    "cpu_kernel_ms_per_tf": t_cpu / batch,
                    f"{args.device}_ms_per_tf": t_dev / batch,
                    "speedup": t_cpu / t_dev,
                    "max_abs_alpha_diff": err_alpha,
                    "max_contrib_diff_per_pixel": err_contrib,
                }
            )
            r = rows[-1]
            print(
                f"{size:>4} {batch:>4}  cpu {r['cpu_kernel_ms_per_tf']:8.3f} ms/TF  "
                f"{args.device} {r[f'{args.device}_ms_per_tf']:8.3f} ms/TF  "
                f"x{r['speedup']:6.1f}  alpha diff {err_alpha:.1e}",
                flush=True,
            )
    result = {
        "benchmark": "render_device",
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if dev.type == "cuda" else cpu_name(),
        "machine": machine_info(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(tyro.cli(Args))
