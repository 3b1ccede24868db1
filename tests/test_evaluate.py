"""Reward-model evaluation: metrics, figures and ``tfgym eval-rm`` on a tiny trained model."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from reward_models.evaluate import (
    OracleScorer,
    add_eval_command,
    corner_point_figure,
    evaluate_reward_model,
    heldout_records,
    pair_accuracy,
    reward_histogram_figure,
    spearman_random,
    tf_grid_figure,
)
from reward_models.model import model_config
from reward_models.train import TrainConfig, save_checkpoint, train_reward_model
from tfgym.collect import collect_preferences, paper_actions
from tfgym.oracle import reference_action
from tfgym.preferences import PreferenceStore

SCENE = "phantom-00"
IMAGE_SIZE = 32  # small renderings: the oracle score is cheap, the ranking much the same


class Setup:
    """One env, 400 simulated preferences, and two tiny models trained on them."""

    def __init__(self) -> None:
        self.env = gym.make("tfgym:TransferFunction-v0", scenes=SCENE, image_size=IMAGE_SIZE)
        rng = np.random.default_rng(0)
        actions = paper_actions(self.env, SCENE, rng, expert_budget=64)
        self.records = collect_preferences(
            self.env, SCENE, actions, n_pairs=400, labeler="noisy", rng=rng
        )
        self.config = TrainConfig(epochs=15, model=model_config("tiny-mask"), seed=0)
        self.result = train_reward_model(self.records, self.config, progress=False)
        self.model = self.result.model
        mus = np.random.default_rng(1).permutation([r.mu for r in self.records])
        shuffled = [replace(r, mu=float(m)) for r, m in zip(self.records, mus, strict=True)]
        self.shuffled = train_reward_model(shuffled, self.config, progress=False).model
        self.scene = self.env.unwrapped.renderer_for(SCENE).scene


@pytest.fixture(scope="module")
def setup() -> Setup:
    import torch

    torch.manual_seed(0)
    return Setup()


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_heldout_records_replay_the_training_split(setup):
    held = heldout_records(setup.records, setup.config.to_dict())
    val = setup.result.validation
    assert len(held) == len(val) == 40
    np.testing.assert_array_equal(np.array([r.action_a for r in held], np.float32), val.action_a)
    np.testing.assert_array_equal(np.array([r.mu for r in held], np.float32), val.mu)
    with pytest.raises(ValueError, match="no validation split"):
        heldout_records(setup.records, {"seed": 0, "val_fraction": 0.0})


def test_pair_accuracy_counts_and_ranges(setup):
    held = heldout_records(setup.records, setup.config.to_dict())
    out = pair_accuracy(setup.model, held, env=setup.env)
    assert out["n_pairs"] == len(held)
    assert out["n_unambiguous"] == sum(r.mu != 0.5 for r in held)
    assert 0 < out["n_oracle"] <= out["n_unambiguous"]
    assert out["n_oracle"] <= out["n_oracle_all"] <= out["n_pairs"]
    for key in ("accuracy_labeler", "accuracy_oracle", "accuracy_oracle_all", "labeler_vs_oracle"):
        assert 0.0 <= out[key] <= 1.0, key
    # the noisy labeler agrees with its own oracle far more often than chance
    assert out["labeler_vs_oracle"] > 0.7
    assert np.isnan(pair_accuracy(setup.model, [], env=setup.env)["accuracy_labeler"])


def test_oracle_as_model_is_the_ceiling(setup):
    oracle = OracleScorer(setup.env, SCENE)
    acc = pair_accuracy(oracle, setup.records[:50], env=setup.env)
    assert acc["accuracy_oracle"] == 1.0  # the oracle always agrees with itself
    rho, rewards, scores = spearman_random(
        oracle, setup.env, SCENE, np.random.default_rng(3), n=128
    )
    assert rho == pytest.approx(1.0)
    np.testing.assert_allclose(rewards, scores)
    with pytest.raises(ValueError, match="not the joint histogram"):
        oracle.predict(np.zeros_like(setup.scene.observation), np.zeros((1, 8)))


def test_trained_model_ranks_better_than_shuffled_labels(setup):
    rho, rewards, scores = spearman_random(
        setup.model, setup.env, SCENE, np.random.default_rng(4), n=400
    )
    rho_shuffled, _, scores_2 = spearman_random(
        setup.shuffled, setup.env, SCENE, np.random.default_rng(4), n=400
    )
    assert rewards.shape == scores.shape == (400,)
    np.testing.assert_array_equal(scores, scores_2)  # same rng: the same random actions
    assert np.all((scores >= 0) & (scores <= 1))
    assert -1.0 <= rho_shuffled <= 1.0
    assert rho > rho_shuffled + 0.2, (rho, rho_shuffled)
    assert rho > 0.2


def test_figures_render_to_png(setup, tmp_path):
    good = reference_action(setup.scene)
    rng = np.random.default_rng(5)
    figures = {
        "hist": reward_histogram_figure(rng.normal(size=500), marks={"good": 1.0}),
        "corner": corner_point_figure(setup.model, setup.scene, good, grid=8),
        "grid": tf_grid_figure(
            setup.model, setup.env, SCENE, rng.uniform(-1, 1, (12, 8)).astype(np.float32)
        ),
    }
    for name, fig in figures.items():
        path = tmp_path / f"{name}.png"
        fig.savefig(path, dpi=80)
        width, height = _png_size(path)
        assert 300 <= width <= 2000 and 200 <= height <= 2000, (name, width, height)
        assert path.stat().st_size > 10_000, name  # drawn, not blank
    assert len(figures["corner"].axes) == 4 + 1  # a panel per vertex and the colour bar
    titles = [ax.get_title() for ax in figures["grid"].axes if ax.get_title()]
    rewards = [float(t.split("RM ")[1].split("\n")[0]) for t in titles]
    assert len(rewards) == 12 and rewards == sorted(rewards, reverse=True)


def test_evaluate_reward_model_writes_everything(setup, tmp_path):
    held = heldout_records(setup.records, setup.config.to_dict())
    metrics = evaluate_reward_model(
        setup.model,
        setup.env,
        SCENE,
        held,
        np.random.default_rng(6),
        out_dir=tmp_path / "eval",
        log_dir=tmp_path / "tb",
        n_random=200,
        grid=8,
    )
    on_disk = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert on_disk == metrics
    assert -1 <= metrics["spearman_rho"] <= 1 and metrics["n_random"] == 200
    assert metrics["reward_min"] <= metrics["reward_mean"] <= metrics["reward_max"]
    assert 0.0 <= metrics["good_tf_reward_percentile"] <= 100.0
    assert metrics["n_pairs"] == len(held)
    for name in ("reward_histogram", "corner_points", "tf_grid", "reward_vs_oracle"):
        assert (tmp_path / "eval" / f"{name}.png").stat().st_size > 10_000
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfgym")
    add_eval_command(parser.add_subparsers(dest="command", required=True))
    return parser


def test_eval_command_end_to_end(setup, tmp_path, capsys):
    db = tmp_path / "prefs.sqlite"
    with PreferenceStore(db) as store:
        store.add_many(setup.records)
        records = store.records()
    trained = train_reward_model(records, setup.config, progress=False)
    ckpt = save_checkpoint(tmp_path / "rm.pt", trained.model, setup.config)
    out = tmp_path / "eval"
    argv = ["eval-rm", "--model", str(ckpt), "--db", str(db), "--scene", SCENE, "--out", str(out)]
    argv += ["--n-random", "200", "--image-size", str(IMAGE_SIZE), "--no-progress"]
    args = _parser().parse_args(argv)
    assert args.func(args) == 0
    assert "Spearman rho" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_pairs"] == len(trained.validation) == 40
    assert sorted(p.name for p in out.glob("*.png")) == [
        "corner_points.png",
        "reward_histogram.png",
        "reward_vs_oracle.png",
        "tf_grid.png",
    ]

    missing = _parser().parse_args([*argv[:4], str(tmp_path / "nope.sqlite"), *argv[5:]])
    with pytest.raises(FileNotFoundError, match="preference store not found"):
        missing.func(missing)
    other = _parser().parse_args([*argv[:5], "--scene", "phantom-01", *argv[7:]])
    with pytest.raises(ValueError, match="no heldout preferences of scene 'phantom-01'"):
        other.func(other)


def test_eval_command_user_errors_exit_2(setup, tmp_path, capsys):
    from tfgym import cli

    try:
        cli.main(["eval-rm", "--help"])
    except SystemExit as e:
        if e.code != 0:
            pytest.skip("eval-rm is not registered in tfgym.cli yet")
    capsys.readouterr()
    db = tmp_path / "prefs.sqlite"
    with PreferenceStore(db) as store:
        store.add_many(setup.records[:10])
    code = cli.main(
        ["eval-rm", "--model", str(tmp_path / "none.pt"), "--db", str(db), "--scene", SCENE]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("tfgym eval-rm: error: ")
    assert "checkpoint not found" in err[0]


@pytest.mark.slow
def test_bench_reward_model_quick(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "rm.json"
    script = root / "benchmarks" / "bench_reward_model.py"
    argv = ["--quick", "--parts", "a", "d", "e", "--no-progress", "--out", str(out)]
    run = subprocess.run(
        [sys.executable, str(script), *argv],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "(a) paper protocol" in run.stdout and "(e) speed" in run.stdout
    record = json.loads(out.read_text())
    assert record["machine"]["cores"] >= 1
    assert set(record["parts"]) == {"a", "d", "e"}
    assert all(-1 <= row["rho"] <= 1 for row in record["parts"]["a"]["rows"])
    assert (tmp_path / "rm_label_efficiency.png").stat().st_size > 10_000
