"""Quickstart: one episode of TransferFunction-v0 with a random and a hand-made polygon.

Run ``python examples/quickstart.py [OUT_DIR]`` (default ``runs/quickstart``); it prints the
oracle's rewards, scores a batch of random polygons in one call and writes the renderings as
PNG files. Seeded: two runs print the same output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

from tfgym.figures import save_png
from tfgym.oracle import reference_action
from tfgym.scoring import SceneScorer


def main(out: Path) -> None:
    env = gym.make("tfgym:TransferFunction-v0", scenes="headsq", render_mode="rgb_array")
    env.action_space.seed(0)

    # The observation is the scene's joint histogram (intensity x gradient magnitude).
    obs, info = env.reset(seed=0)
    print(f"scene {info['scene']}: observation {obs.shape} {obs.dtype}")

    # An action is a polygon in that histogram: x1, y1, ..., x4, y4 in [-1, 1].
    action = env.action_space.sample()
    _, reward, terminated, _, info = env.step(action)
    print(f"random polygon     reward {reward:.3f} (terminated={terminated})")
    save_png(out / "random.png", env.render())

    # Episodes last one step: reset (same scene) and try the oracle's hand-made bone TF. A
    # SceneScorer at the env's default settings holds the scene the env renders.
    scorer = SceneScorer(info["scene"])
    obs, info = env.reset(options={"scene": info["scene"]})
    _, reward, _, _, info = env.step(reference_action(scorer.scene))
    print(
        f"reference polygon  reward {reward:.3f} (visibility {info['visibility']:.3f}, "
        f"purity {info['purity']:.3f})"
    )
    save_png(out / "reference.png", env.render())
    env.close()

    # The same scorer renders and scores a whole batch of polygons in one call.
    batch = scorer.score(np.random.default_rng(0).uniform(-1, 1, (64, 8)))
    beaten = float(np.mean(batch.oracle_score < reward))
    print(
        f"64 random polygons: best oracle score {batch.oracle_score.max():.3f}; "
        f"the reference beats {beaten:.0%} of them"
    )
    print(f"wrote {out / 'random.png'} and {out / 'reference.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/quickstart"))
