"""The ``tfgym`` command line: subprocess smoke tests and error handling."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_volume import SERIES_A, SERIES_B, write_dicom_series

from tfgym import __version__
from tfgym.cli import build_parser, main
from tfgym.transfer_function import TransferFunction
from tfgym.volume_io import bundled_scan_path

SCRIPT = Path(sys.executable).parent / "tfgym"  # the console script, as a user runs it


def tfgym(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``tfgym`` console script with ``ARGS`` in a fresh process."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        encoding="utf-8",
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
    out = subprocess.run([script, "version"], capture_output=True, encoding="utf-8", check=True)
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


def test_render_tf_from_another_scan_says_how_it_is_mapped(tmp_path, capsys):
    from tfgym.scene import load_scene

    headsq = load_scene("headsq")
    tf_path = tmp_path / "tf.json"
    TransferFunction(((0.2, -1.0), (0.6, -1.0), (0.6, 1.0), (0.2, 1.0)), ranges=headsq.ranges).save(
        tf_path
    )
    scores = {}
    for mapping in ("relative", "absolute"):
        argv = ["render", "--scene", "phantom-03", "--tf", str(tf_path), "-o"]
        argv += [str(tmp_path / f"{mapping}.png"), "--image-size", "32", "--tf-mapping", mapping]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert f"TF mapping: {mapping}" in out and "designed on grey values 0..2" in out
        scores[mapping] = float(out.split("oracle score ")[1].split()[0])
    assert scores["relative"] != scores["absolute"]  # the choice matters and is honoured
    # a TF without recorded ranges can only be mapped relative: a clear error, exit 2
    bare = tmp_path / "bare.json"
    TransferFunction(((0.2, -1.0), (0.6, -1.0), (0.6, 1.0), (0.2, 1.0))).save(bare)
    argv = ["render", "--scene", "headsq", "--tf", str(bare), "-o", str(tmp_path / "b.png")]
    assert main([*argv, "--tf-mapping", "absolute"]) == 2
    assert "can only be mapped 'relative'" in capsys.readouterr().err


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


def rendered_score(capsys, scene: str, tf: Path, out: Path) -> float:
    """The oracle score ``tfgym render`` prints for a TF file."""
    assert main(["render", "--scene", scene, "--tf", str(tf), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    return float(text.split("oracle score ")[1].split()[0])


def test_demo_writes_figures_tfs_summary_and_tensorboard(tmp_path, capsys):
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
        "--display-size",
        "48",
        "--no-progress",
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
    assert summary["settings"]["image_size"] == 64
    (row,) = summary["scenes"]
    assert row["scene"] == "phantom-00"
    assert row["evaluations"] == 32
    history = row["best_reward_history"]
    assert len(history) == 4
    assert history == sorted(history)  # a running maximum
    # re-scored: the same (up to float32 summation order, which depends on the batch size)
    assert row["best_reward"] == pytest.approx(history[-1], abs=1e-6)
    best = TransferFunction.load(folder / "best_tf.json")
    np.testing.assert_allclose(best.action, row["best_action"], atol=1e-6)
    # The saved TFs, re-rendered by `tfgym render`, score what the summary says (printed
    # with 3 decimals), and the search beat the random TF and got near the hand-made one.
    scores = {
        name: rendered_score(capsys, "phantom-00", folder / f"{name}_tf.json", tmp_path / "x.png")
        for name in ("best", "random", "reference")
    }
    assert scores["best"] == pytest.approx(row["best_reward"], abs=6e-4)
    assert scores["random"] == pytest.approx(row["random_reward"], abs=6e-4)
    assert scores["reference"] == pytest.approx(row["reference_reward"], abs=6e-4)
    assert row["best_reward"] > row["random_reward"] + 0.1
    assert row["best_reward"] > 0.7 * row["reference_reward"]
    assert f"{row['best_reward']:>9.3f}" in out.stdout  # the printed table
    events = list((out_dir / "tensorboard" / "phantom-00").glob("events.out.tfevents.*"))
    assert len(events) == 1
    assert events[0].stat().st_size > 1000

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent), size_guidance={"images": 0})
    acc.Reload()
    assert {"search/best_reward", "search/mean_reward"} <= set(acc.Tags()["scalars"])
    logged = acc.Scalars("search/best_reward")
    assert [e.step for e in logged] == [8, 16, 24, 32]
    np.testing.assert_allclose([e.value for e in logged], history, rtol=1e-6)
    assert {"render/best", "render/random", "figure"} <= set(acc.Tags()["images"])


def test_demo_rejects_a_budget_too_small(tmp_path, capsys):
    code = main(
        ["demo", "--out", str(tmp_path), "--scenes", "phantom-00", "headsq", "--budget", "3"]
    )
    assert code == 2
    assert "too small" in capsys.readouterr().err


# -- output format, DICOM series, cheap help, defaults in --help ---------------------------


@pytest.mark.parametrize("name", ["out.jpg", "out.JPEG", "out"], ids=["jpg", "jpeg", "no-suffix"])
def test_render_refuses_a_non_png_output(tmp_path, capsys, name):
    code = main(["render", "--scene", "headsq", "--tf", "reference", "-o", str(tmp_path / name)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("tfgym render: error: ")
    assert name in err and ".png" in err
    assert list(tmp_path.iterdir()) == []  # nothing written, under any name


def test_render_dicom_directory_with_two_series(tmp_path, capsys):
    scan = tmp_path / "dicom"
    array = np.random.default_rng(0).integers(-1000, 3000, size=(5, 6, 7)).astype(np.int16)
    write_dicom_series(scan, array, series_uid=SERIES_A, description="bone", prefix="a")
    other = {"spacing": (0.5, 0.7, 2.0), "series_uid": SERIES_B, "description": "soft"}
    write_dicom_series(scan, array[:3], prefix="b", **other)
    out = tmp_path / "x.png"
    argv = ["render", "--volume", str(scan), "--tf", "reference", "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfgym render: error: ")
    assert "holds 2 DICOM series; pass --series-id to choose one of:" in err
    assert "series_id=" not in err
    lines = err.strip().splitlines()  # the whole message, one series per line
    assert lines[1:] == [f"  {SERIES_A} (5 files, 'bone')", f"  {SERIES_B} (3 files, 'soft')"]
    assert not out.exists()
    assert main([*argv, "--series-id", SERIES_B, "--image-size", "32"]) == 0
    assert out.is_file()
    assert "oracle score" in capsys.readouterr().out


def test_series_id_with_a_scene_is_refused(tmp_path, capsys):
    argv = ["render", "--scene", "headsq", "--series-id", SERIES_A, "--tf", "reference"]
    assert main([*argv, "-o", str(tmp_path / "x.png")]) == 2
    assert "--series-id applies to --volume DICOM directories" in capsys.readouterr().err


ALL_COMMANDS = ("scenes", "version", "render", "demo", "collect", "train-rm", "eval-rm")
COMMANDS_WITH_OPTIONS = ("render", "demo", "collect", "train-rm", "eval-rm")
RM_COMMANDS = ("train-rm", "eval-rm")


def subparsers() -> dict[str, argparse.ArgumentParser]:
    """Every registered command's parser, by name."""
    (action,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def skip_unregistered(command: str) -> None:
    if command in RM_COMMANDS and command not in subparsers():
        pytest.skip(f"`tfgym {command} --help` fails: tfgym/cli/rm.py registers no commands yet")
    assert command in subparsers(), f"tfgym {command} is not registered"


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["version"], *([c, "--help"] for c in ALL_COMMANDS)],
    ids=lambda argv: " ".join(argv),
)
def test_help_and_version_load_neither_torch_nor_matplotlib(argv):
    if argv[0] in ALL_COMMANDS:
        skip_unregistered(argv[0])
    code = f"""
import contextlib, io, sys
from tfgym.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        status = main({argv!r})
    except SystemExit as stop:
        status = stop.code
text = out.getvalue()
print(status, text.startswith(("usage: tfgym", "tfgym ")))
print(sorted(m for m in ("torch", "matplotlib", "vtk", "pyvista") if m in sys.modules))
"""
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, encoding="utf-8", check=True
    )
    assert run.stdout.splitlines() == ["0 True", "[]"], run.stdout + run.stderr


def squash(text: str) -> str:
    """Text without whitespace: argparse wraps help lines wherever it likes."""
    return "".join(text.split())


@pytest.mark.parametrize("command", COMMANDS_WITH_OPTIONS)
def test_every_option_with_a_default_shows_it_in_help(command):
    skip_unregistered(command)
    parser = subparsers()[command]
    shown = squash(parser.format_help())
    checked = []
    for action in parser._actions:
        if not action.option_strings or action.default in (None, argparse.SUPPRESS):
            continue
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            continue  # a flag: its default is its absence
        text = parser._get_formatter()._expand_help(action)
        value = action.default
        value = " ".join(map(str, value)) if isinstance(value, tuple | list) else str(value)
        option = "/".join(action.option_strings)
        assert f"(default: {value})" in " ".join(text.split()), (option, text)
        assert squash(text) in shown, (option, text)
        checked.append(option)
    assert checked, f"tfgym {command} has no option with a default"
