"""Examples run with their defaults as subprocess smoke tests (imitation's habit)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs_and_writes_renderings(tmp_path):
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), str(tmp_path / "qs")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    rewards = [
        float(line.split("reward ")[1].split()[0])
        for line in out.stdout.splitlines()
        if "reward " in line
    ]
    assert len(rewards) == 2
    assert all(0.0 <= r <= 1.0 for r in rewards)
    assert rewards[1] > 0.5  # the hand-made bone TF on headsq
    for name in ("random.png", "reference.png"):
        image = np.asarray(Image.open(tmp_path / "qs" / name).convert("RGB"))
        assert image.shape == (128, 128, 3)
    reference = np.asarray(Image.open(tmp_path / "qs" / "reference.png").convert("L"))
    assert (reference > 30).mean() > 0.05


def readme_python_blocks() -> list[str]:
    text = (EXAMPLES.parent / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


# Extra flags that shrink the README's reward-model pipeline to a smoke run.
TINY = {
    "collect": ["--pairs", "200", "--image-size", "32", "--no-progress"],
    "train-rm": ["--epochs", "2", "--variant", "tiny-mask", "--no-progress"],
    "eval-rm": ["--n-random", "256"],
}


def readme_pipeline_commands() -> list[list[str]]:
    text = (EXAMPLES.parent / "README.md").read_text()
    section = text.split("## Reward models from preferences", 1)[1]
    block = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)[0]
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("tfgym ")]


def run_readme_pipeline() -> None:
    from tfgym.cli import main

    commands = readme_pipeline_commands()
    assert [c[0] for c in commands] == ["collect", "train-rm", "eval-rm"]
    for argv in commands:
        argv = (
            [a for a in argv if a not in ("--variant", "mask")] if argv[0] == "train-rm" else argv
        )
        assert main([*argv, *TINY[argv[0]]]) == 0, argv


def test_readme_reward_model_pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_readme_pipeline()
    assert (tmp_path / "runs" / "rm.pt").is_file()
    assert (tmp_path / "runs" / "eval" / "metrics.json").is_file()
    assert list((tmp_path / "runs" / "eval").glob("*.png"))


def test_readme_python_code_runs(tmp_path, monkeypatch, capsys):
    blocks = readme_python_blocks()
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    run_readme_pipeline()  # the reward-model block loads runs/rm.pt
    namespace: dict[str, object] = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "random polygon: reward" in out
    assert namespace["image"].shape == (128, 128, 3)  # type: ignore[attr-defined]
    assert namespace["result"].n_evaluations == 256  # type: ignore[attr-defined]
