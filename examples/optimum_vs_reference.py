"""The oracle's optimum beside the hand-made reference TF, at display quality.

For each held-out phantom and headsq: CEM (the given budget) on the oracle at the training
size, then the best TF and the hand-made bone TF rendered at display quality (256 voxels,
front view), with their oracle scores. Look at them: where the optimum looks worse than the
reference (speckle, holes, clutter in front of the bone), the oracle is wrong.

Usage::

    python examples/optimum_vs_reference.py --out docs/images/optimum_vs_reference.png
"""

from __future__ import annotations

import argparse

import numpy as np
from tqdm import tqdm

from tfgym.display import render_display
from tfgym.oracle.reference import reference_action
from tfgym.scene import resolve_scenes
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.search import CrossEntropySearch


def main() -> None:
    """Search, render and lay out the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="+", default=["heldout", "headsq"])
    parser.add_argument("--budget", type=int, default=1500)
    parser.add_argument("--display-size", type=int, default=256)
    parser.add_argument("--columns", type=int, default=3, help="scenes per row")
    parser.add_argument("--out", default="docs/images/optimum_vs_reference.png")
    args = parser.parse_args()
    from matplotlib.figure import Figure

    scenes = resolve_scenes(args.scenes)
    panels = []
    for i, name in enumerate(tqdm(scenes, desc="scenes")):
        scorer = SceneScorer(name, ScoringSettings())
        search = CrossEntropySearch(np.random.default_rng(i), population_size=32)
        best = search.run(scorer, args.budget).best_action
        batch = scorer.score(np.stack([reference_action(scorer.scene), best]))
        images = render_display(name, batch.tfs, views=("front",), working_size=args.display_size)
        panels.append((name, images[:, 0], batch.rewards, batch.structure))
    rows = -(-len(panels) // args.columns)
    fig = Figure(figsize=(4.2 * args.columns, 2.3 * rows), layout="constrained")
    axes = fig.subplots(rows, 2 * args.columns, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for k, (name, images, rewards, structure) in enumerate(panels):
        for j, label in enumerate(("reference", "optimum")):
            ax = axes[k // args.columns, 2 * (k % args.columns) + j]
            ax.imshow(images[j])
            ax.set_title(
                f"{name} {label}\n{rewards[j]:.3f} (structure {structure[j]:.2f})", fontsize=8
            )
    fig.set_facecolor("black")
    for ax in axes.ravel():
        ax.title.set_color("white")
    fig.savefig(args.out, dpi=100, facecolor="black")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
