"""Gallery of procedural CBCT head phantoms next to the real ``headsq`` scan.

Run ``python examples/phantom_gallery.py [OUT.png]`` (default ``docs/images/phantoms.png``).
It picks eight phantoms that show the range of the anatomy's variation factors (a child with
milk teeth and tooth germs, elderly patients with edentulous jaws, many metal restorations
and implants, positioning aids), generates each at 256 voxels, renders it with the oracle's
hand-made bone transfer function (``reference_action``) from the front and from the side,
and tiles them with ``headsq`` into one PNG. A few minutes on a laptop CPU.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tfgym.oracle import reference_action
from tfgym.phantoms import make_phantom, phantom_spec
from tfgym.phantoms.anatomy import RESTORATIONS
from tfgym.renderer import Renderer
from tfgym.scene import Scene
from tfgym.transfer_function import TransferFunction
from tfgym.volume_io import bundled_scan_path, load_volume

SIZE = 256
IMAGE = 384
VIEWS = ("front", "left")
# (what to show, test on a PhantomSpec) in gallery order; the first whole-head seed passing
# each test is shown.
WANTED = (
    ("adult", lambda s: s.anatomy.age == "adult" and not s.anatomy.fillings),
    ("child", lambda s: s.anatomy.age == "child"),
    ("elderly, edentulous jaw", lambda s: _edentulous(s) and not s.anatomy.fillings),
    ("elderly with implants", lambda s: any(k == 3 for *_, k in s.anatomy.fillings)),
    ("many restorations", lambda s: len(s.anatomy.fillings) >= 5),
    ("bridge", lambda s: any(k == 4 for *_, k in s.anatomy.fillings)),
    ("headrest, chin rest", lambda s: s.anatomy.headrest_hu is not None and s.anatomy.chin_rest),
    ("bite block", lambda s: s.anatomy.bite_block > 0),
)


def _edentulous(spec) -> bool:
    teeth = spec.anatomy.slots("teeth")
    return bool((~teeth.reshape(2, -1)).all(axis=1).any())


def describe(spec) -> str:
    """One line on the patient, restorations and aids of a phantom."""
    an = spec.anatomy
    n_teeth = int(an.slots("teeth").sum())
    kinds = sorted({RESTORATIONS[k] for *_, k in an.fillings})
    parts = [f"{an.age}, {n_teeth} teeth"]
    if an.fillings:
        parts.append(f"{len(an.fillings)} metal ({', '.join(kinds)})")
    aids = [
        name
        for name, on in (
            ("headrest", an.headrest_hu is not None),
            ("chin rest", an.chin_rest),
            ("bite block", an.bite_block > 0),
        )
        if on
    ]
    if aids:
        parts.append(" + ".join(aids))
    return "; ".join(parts)


def pick_seeds(limit: int = 400) -> list[tuple[int, str]]:
    """The first whole-head seed for each wanted case (no seed twice)."""
    chosen: list[tuple[int, str]] = []
    specs = [phantom_spec(seed) for seed in range(limit)]
    for _, test in WANTED:
        for spec in specs:
            if spec.fov.kind == "head" and test(spec) and spec.seed not in [s for s, _ in chosen]:
                chosen.append((spec.seed, describe(spec)))
                break
    return chosen


def render(scene: Scene) -> list[np.ndarray]:
    """Front and side renderings of a scene with the hand-made bone TF."""
    lut = TransferFunction.from_action(reference_action(scene, "bone")).lut(scene.ranges)
    return [Renderer(scene, image_size=IMAGE, view=v).render(lut[None]).rgb[0] for v in VIEWS]


def main(out: Path) -> None:
    panels: list[tuple[str, list[np.ndarray]]] = []
    for seed, text in pick_seeds():
        start = time.perf_counter()
        volume = make_phantom(seed, size=SIZE)
        scene = Scene.from_volume(volume, working_size=SIZE, reference=volume)
        panels.append((f"{volume.name}: {text}", render(scene)))
        print(f"{volume.name} ({time.perf_counter() - start:.1f} s): {text}", flush=True)
    headsq = load_volume(bundled_scan_path("headsq"), name="headsq")
    panels.append(
        ("headsq: real CT (VTK example data)", render(Scene.from_volume(headsq, working_size=SIZE)))
    )
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 6.4, rows * 3.5), dpi=100)
    for ax, (title, images) in zip(axes.ravel(), panels, strict=False):
        ax.imshow(np.concatenate(images, axis=1))
        ax.set_title(title, fontsize=9, color="white")
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, facecolor="black")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/phantoms.png"))
