"""Quickstart: one episode of TransferFunction-v0 with a random and a hand-made polygon.

Run ``python examples/quickstart.py [OUT_DIR]`` (default ``runs/quickstart``); it prints the
oracle's rewards and writes the renderings as PNG files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import matplotlib.image

from tfgym.oracle import reference_action


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    env = gym.make("tfgym:TransferFunction-v0", scenes="headsq", render_mode="rgb_array")

    # The observation is the scene's joint histogram (intensity x gradient magnitude).
    obs, info = env.reset(seed=0)
    print(f"scene {info['scene']}: observation {obs.shape} {obs.dtype}")

    # An action is a polygon in that histogram: x1, y1, ..., x4, y4 in [-1, 1].
    action = env.action_space.sample()
    _, reward, terminated, _, info = env.step(action)
    print(f"random polygon     reward {reward:.3f} (terminated={terminated})")
    matplotlib.image.imsave(out / "random.png", env.render())

    # Episodes last one step: reset (same scene) and try the oracle's hand-made bone TF.
    obs, info = env.reset(options={"scene": info["scene"]})
    action = reference_action(env.unwrapped.scene)
    _, reward, _, _, info = env.step(action)
    print(
        f"reference polygon  reward {reward:.3f} (visibility {info['visibility']:.3f}, "
        f"purity {info['purity']:.3f})"
    )
    matplotlib.image.imsave(out / "reference.png", env.render())
    env.close()
    print(f"wrote {out / 'random.png'} and {out / 'reference.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/quickstart"))
