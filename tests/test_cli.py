"""The ``tfgym`` command line: subprocess smoke tests and error handling."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfgym import __version__
from tfgym.cli import main
from tfgym.transfer_function import TransferFunction
from tfgym.volume import bundled_scan_path


def tfgym(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tfgym.cli ARGS`` in a fresh process."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "tfgym.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


def assert_rendering(path: Path) -> None:
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (64, 64, 3)
    lit = (image.max(axis=2) > 30).mean()
    assert 0.05 < lit < 0.95, f"{path} is {lit:.0%} lit: black or blank"


def test_console_script_is_installed():
    script = shutil.which("tfgym", path=str(Path(sys.executable).parent))
    assert script is not None, "the tfgym console script is not installed next to python"
    out = subprocess.run([script, "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"tfgym {__version__}"


def test_scenes_lists_bundled_scenes_and_sets():
    out = tfgym("scenes")
    assert out.returncode == 0, out.stderr
    assert "headsq" in out.stdout
    assert "phantom-15" in out.stdout
    for scene_set in ("train", "heldout", "all"):
        assert f"\n{scene_set} " in out.stdout


def test_render_reference_in_a_subprocess(tmp_path):
    ref = tmp_path / "out" / "ref.png"
    out = tfgym(
        "render", "--scene", "headsq", "--tf", "reference", "-o", str(ref), "--image-size", "64"
    )
    assert out.returncode == 0, out.stderr
    assert "oracle score" in out.stdout
    score = float(out.stdout.split("oracle score ")[1].split()[0])
    assert 0.5 < score <= 1.0  # the hand-made bone TF is good on headsq
    assert_rendering(ref)


def test_render_json_tf_on_a_scan_file(tmp_path, capsys):
    tf_path = tmp_path / "tf.json"
    TransferFunction(((0.1, -1.0), (1.0, -1.0), (1.0, 1.0), (0.1, 1.0))).save(tf_path)
    front, side = tmp_path / "front.png", tmp_path / "side.png"
    scan = str(bundled_scan_path("headsq"))
    for view, path in (("front", front), ("side", side)):
        argv = ["render", "--volume", scan, "--tf", str(tf_path), "-o", str(path)]
        assert main([*argv, "--view", view, "--image-size", "64"]) == 0
        assert_rendering(path)
    assert "oracle score" in capsys.readouterr().out
    assert not np.array_equal(np.asarray(Image.open(front)), np.asarray(Image.open(side)))


def test_render_corrupt_scan_exits_2_with_one_clear_line(tmp_path, capfd):
    scan = tmp_path / "broken.mha"
    scan.write_bytes(bundled_scan_path("headsq").read_bytes()[:300])
    argv = ["render", "--volume", str(scan), "--tf", "reference", "-o", str(tmp_path / "x.png")]
    assert main(argv) == 2
    err = capfd.readouterr().err  # fd level: ITK's own parser messages would show here
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tfgym render: error: ")
    assert "broken.mha" in lines[0]
    assert "corrupt" in lines[0]
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("tf_text", "expected"),
    [
        (None, "transfer function file not found"),
        ('{"vertices": [[0, 0], [1', "malformed"),
        ('{"opacity": 0.5}', "not a transfer function"),
        ('{"vertices": [[0, 0], [1, 0], [0, NaN]]}', "NaN"),
    ],
    ids=["missing-file", "malformed-json", "not-a-tf", "nan-vertex"],
)
def test_render_bad_tf_exits_2(tmp_path, capsys, tf_text, expected):
    tf_path = tmp_path / "tf.json"
    if tf_text is not None:
        tf_path.write_text(tf_text)
    code = main(
        ["render", "--scene", "headsq", "--tf", str(tf_path), "-o", str(tmp_path / "x.png")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("tfgym render: error: ")
    assert expected in err
    assert "tf.json" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--scene", "no-such-scene"], "unknown scene 'no-such-scene'"),
        (["--scene", "train"], "is a scene set"),
        (["--volume", "/no/such/scan.nii.gz"], "no such file or directory"),
        (["--scene", "headsq", "--view", "diagonal"], "unknown view 'diagonal'"),
    ],
    ids=["unknown-scene", "scene-set", "missing-scan", "bad-view"],
)
def test_render_bad_source_exits_2(tmp_path, capsys, argv, expected):
    code = main(["render", *argv, "--tf", "reference", "-o", str(tmp_path / "x.png")])
    assert code == 2
    assert expected in capsys.readouterr().err


def test_demo_writes_figures_tfs_summary_and_tensorboard(tmp_path):
    out_dir = tmp_path / "demo"
    out = tfgym(
        "demo",
        "--out",
        str(out_dir),
        "--scenes",
        "phantom-00",
        "--budget",
        "32",
        "--population-size",
        "8",
        "--image-size",
        "64",
    )
    assert out.returncode == 0, out.stderr
    folder = out_dir / "phantom-00"
    for name in ("best", "random", "reference"):
        assert_rendering(folder / f"{name}.png")
        TransferFunction.load(folder / f"{name}_tf.json")
    figure = np.asarray(Image.open(folder / "figure.png").convert("RGB"))
    assert figure.shape[0] > 300
    assert figure.shape[1] > 600
    summary = json.loads((out_dir / "summary.json").read_text())
    (row,) = summary["scenes"]
    assert row["scene"] == "phantom-00"
    assert row["evaluations"] == 32
    assert len(row["best_reward_history"]) == 4
    assert row["best_reward"] >= row["best_reward_history"][0]
    best = TransferFunction.load(folder / "best_tf.json")
    np.testing.assert_allclose(best.action, row["best_action"], atol=1e-6)
    events = list((out_dir / "tensorboard" / "phantom-00").glob("events.out.tfevents.*"))
    assert len(events) == 1
    assert events[0].stat().st_size > 1000

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent), size_guidance={"images": 0})
    acc.Reload()
    assert {"search/best_reward", "search/mean_reward"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("search/best_reward")] == [8, 16, 24, 32]
    assert {"render/best", "render/random", "figure"} <= set(acc.Tags()["images"])


def test_demo_rejects_a_budget_too_small(tmp_path, capsys):
    code = main(
        ["demo", "--out", str(tmp_path), "--scenes", "phantom-00", "headsq", "--budget", "3"]
    )
    assert code == 2
    assert "too small" in capsys.readouterr().err
