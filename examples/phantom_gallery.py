"""Gallery of procedural CBCT head phantoms next to the real ``headsq`` scan.

Run ``python examples/phantom_gallery.py [OUT.png]`` (default ``docs/images/phantoms.png``).
It picks eight phantoms that show the range of the anatomy's variation factors (a child with
milk teeth and tooth germs, elderly patients with edentulous jaws, many metal restorations
and implants, dental and maxillofacial fields of view, positioning aids), renders each at
display quality (256 voxels) with the oracle's hand-made bone transfer function
(``reference_action``, drawn on the 64-voxel training histogram) from the front and from the
side, and tiles them with ``headsq`` into one PNG. A few minutes on a laptop CPU.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tfgym.display import render_display
from tfgym.oracle import reference_action
from tfgym.phantoms import phantom_name, phantom_spec
from tfgym.phantoms.anatomy import RESTORATIONS
from tfgym.scene import load_scene
from tfgym.transfer_function import TransferFunction

SIZE = 256
IMAGE = 384
VIEWS = ("front", "left")
# (what to show, test on a PhantomSpec) in gallery order; the first whole-head seed passing
# each test is shown.
WANTED = (
    (
        "adult",
        lambda s: s.fov.kind == "head" and s.anatomy.age == "adult" and not s.anatomy.fillings,
    ),
    ("child", lambda s: s.fov.kind == "head" and s.anatomy.age == "child"),
    ("elderly, edentulous jaw", lambda s: s.fov.kind == "head" and _edentulous(s)),
    ("implants", lambda s: s.fov.kind == "head" and any(k == 3 for *_, k in s.anatomy.fillings)),
    (
        "dental field of view, metal",
        lambda s: s.fov.kind == "dental" and len(s.anatomy.fillings) >= 3,
    ),
    ("maxillofacial field of view", lambda s: s.fov.kind == "maxillofacial"),
    ("bridge", lambda s: s.fov.kind == "head" and any(k == 4 for *_, k in s.anatomy.fillings)),
    (
        "headrest, chin rest",
        lambda s: (
            s.fov.kind == "head" and s.anatomy.headrest_hu is not None and s.anatomy.chin_rest
        ),
    ),
)


def _edentulous(spec) -> bool:
    teeth = spec.anatomy.slots("teeth")
    return bool((~teeth.reshape(2, -1)).all(axis=1).any())


def describe(spec) -> str:
    """One line on the patient, restorations and aids of a phantom."""
    an = spec.anatomy
    n_teeth = int(an.slots("teeth").sum())
    kinds = sorted({RESTORATIONS[k] for *_, k in an.fillings})
    parts = [f"{spec.fov.kind} FOV, {an.age}, {n_teeth} teeth"]
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
    """The first seed for each wanted case (no seed twice)."""
    chosen: list[tuple[int, str]] = []
    specs = [phantom_spec(seed) for seed in range(limit)]
    for _, test in WANTED:
        for spec in specs:
            if test(spec) and spec.seed not in [s for s, _ in chosen]:
                chosen.append((spec.seed, describe(spec)))
                break
    return chosen


def render(name: str) -> list[np.ndarray]:
    """Front and side renderings at display quality with the hand-made bone TF.

    The TF is drawn on the training-size (64-voxel) scene, as a user or an agent would, and
    shown on the 256-voxel display volume (:mod:`tfgym.display`).
    """
    tf = TransferFunction.from_action(reference_action(load_scene(name), "bone"))
    images = render_display(name, [tf], views=VIEWS, working_size=SIZE, image_size=IMAGE)
    return list(images[0])


def main(out: Path) -> None:
    """Pick the seeds, render them and headsq, and tile the PNG."""
    panels: list[tuple[str, list[np.ndarray]]] = []
    for seed, text in pick_seeds():
        start = time.perf_counter()
        name = phantom_name(seed)
        panels.append((f"{name}: {text}", render(name)))
        print(f"{name} ({time.perf_counter() - start:.1f} s): {text}", flush=True)
    panels.append(("headsq: real CT (VTK example data)", render("headsq")))
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
