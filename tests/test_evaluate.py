"""Reward-model evaluation: metrics, figures and checkpoint evaluation on a tiny trained model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from reward_models.checkpoint import CheckpointError, heldout_records
from reward_models.config import EvalConfig, TrainConfig
from reward_models.evaluate import (
    evaluate_checkpoint,
    evaluate_reward_model,
    oracle_pair_accuracy,
)
from reward_models.figures import corner_point_figure, reward_histogram_figure, tf_grid_figure
from reward_models.metrics import OracleScorer, pair_accuracy, spearman_random
from reward_models.train import train_reward_model
from tests.test_reward_model import simulated_preferences
from tfgym.action_sets import paper_actions
from tfgym.cli import main
from tfgym.display import DISPLAY_VIEWS, DISPLAY_WORKING_SIZE
from tfgym.oracle import reference_action
from tfgym.preferences import Preference, PreferenceStore
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.search import CrossEntropySearch

SCENE = "phantom-00"
IMAGE_SIZE = 32  # small renderings: the oracle score is cheap, the ranking much the same
PNGS = ["corner_points.png", "reward_histogram.png", "reward_vs_oracle.png", "tf_grid.png"]
DISPLAY = 48  # display working size of the figures in tests (the default is 256: slow)


def paper_like_actions(scorer: SceneScorer, rng: np.random.Generator) -> np.ndarray:
    """10 good actions (a small CEM), 40 shifted copies of them and 50 random ones."""
    start = reference_action(scorer.scene)[None]
    cem = CrossEntropySearch(rng, population_size=16).run(scorer, 64, initial=start, keep_all=True)
    assert cem.actions is not None and cem.rewards is not None
    good = cem.actions[np.argsort(-cem.rewards, kind="stable")[:10]]
    shifted = good[rng.integers(0, 10, 40)] + rng.normal(0.0, 0.15, (40, scorer.action_dim))
    random = rng.uniform(-1, 1, (50, scorer.action_dim))
    return np.clip(np.concatenate([good, shifted, random]), -1, 1).astype(np.float32)


class Setup:
    """One scene scorer, 400 noisy stored preferences, two tiny models trained on them."""

    def __init__(self) -> None:
        self.scorer = SceneScorer(SCENE, ScoringSettings(image_size=IMAGE_SIZE))
        rng = np.random.default_rng(0)
        actions = paper_like_actions(self.scorer, rng)
        self.records = simulated_preferences(self.scorer, actions, 400, rng, labeler="noisy")
        self.config = TrainConfig(epochs=15, variant="tiny-mask", seed=0)
        self.result = train_reward_model(self.records, self.config, progress=False)
        self.model = self.result.model
        mus = np.random.default_rng(1).permutation([r.mu for r in self.records])
        shuffled = [replace(r, mu=float(m)) for r, m in zip(self.records, mus, strict=True)]
        self.shuffled = train_reward_model(shuffled, self.config, progress=False).model
        self.held = heldout_records(self.records, self.result.info)


@pytest.fixture(scope="module")
def setup() -> Setup:
    import torch

    torch.manual_seed(0)
    return Setup()


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_heldout_records_are_the_validation_pairs(setup):
    val = setup.result.validation
    assert len(setup.held) == len(val) == 40
    np.testing.assert_array_equal(
        np.array([r.action_a for r in setup.held], np.float32), val.action_a
    )
    np.testing.assert_array_equal(np.array([r.mu for r in setup.held], np.float32), val.mu)
    assert [r.id for r in setup.held] == val.record_ids.tolist()


def test_pair_accuracy_counts_and_ranges(setup):
    held = setup.held
    out = pair_accuracy(setup.model, held, settings=setup.scorer.settings)
    assert out["n_pairs"] == len(held)
    assert out["n_unambiguous"] == sum(r.mu != 0.5 for r in held)
    assert 0 < out["n_oracle"] <= out["n_unambiguous"]
    assert out["n_oracle"] <= out["n_oracle_all"] <= out["n_pairs"]
    for key in ("accuracy_labeler", "accuracy_oracle", "accuracy_oracle_all", "labeler_vs_oracle"):
        assert 0.0 <= out[key] <= 1.0, key
    # the noisy labeler agrees with its own oracle far more often than chance
    assert out["labeler_vs_oracle"] > 0.7
    empty = pair_accuracy(setup.model, [], settings=setup.scorer.settings)
    assert empty["n_pairs"] == 0 and np.isnan(empty["accuracy_labeler"])


def test_oracle_as_model_is_the_ceiling(setup):
    oracle = OracleScorer(setup.scorer)
    acc = pair_accuracy(oracle, setup.records[:50], settings=setup.scorer.settings)
    assert acc["accuracy_oracle"] == 1.0 and acc["accuracy_oracle_all"] == 1.0
    rho, rewards, scores = spearman_random(oracle, setup.scorer, np.random.default_rng(3), n=128)
    assert rho == pytest.approx(1.0)
    np.testing.assert_allclose(rewards, scores)
    with pytest.raises(ValueError, match="not the joint histogram"):
        oracle.predict(np.zeros_like(setup.scorer.observation), np.zeros((1, 8)))


def test_trained_model_ranks_better_than_shuffled_labels(setup):
    rho, rewards, scores = spearman_random(
        setup.model, setup.scorer, np.random.default_rng(4), n=400
    )
    rho_shuffled, _, scores_2 = spearman_random(
        setup.shuffled, setup.scorer, np.random.default_rng(4), n=400
    )
    assert rewards.shape == scores.shape == (400,)
    np.testing.assert_array_equal(scores, scores_2)  # same rng: the same random actions
    assert np.all((scores >= 0) & (scores <= 1))
    assert -1.0 <= rho_shuffled <= 1.0
    assert rho > rho_shuffled + 0.2, (rho, rho_shuffled)
    assert rho > 0.2


def test_figures_render_to_png(setup, tmp_path):
    good = reference_action(setup.scorer.scene)
    rng = np.random.default_rng(5)
    figures = {
        "hist": reward_histogram_figure(rng.normal(size=500), marks={"good": 1.0}),
        "corner": corner_point_figure(setup.model, setup.scorer.scene, good, grid=8),
        "grid": tf_grid_figure(
            setup.model,
            setup.scorer,
            rng.uniform(-1, 1, (12, 8)).astype(np.float32),
            display_size=DISPLAY,
        ),
    }
    for name, fig in figures.items():
        path = tmp_path / f"{name}.png"
        fig.savefig(path, dpi=80)
        width, height = _png_size(path)
        assert 300 <= width <= 2000 and 200 <= height <= 2000, (name, width, height)
        assert path.stat().st_size > 10_000, name  # drawn, not blank
    assert len(figures["corner"].axes) == 4 + 1  # a panel per vertex and the colour bar
    grid = figures["grid"]
    titles = [ax.get_title(loc="left") for ax in grid.axes if ax.get_title(loc="left")]
    rewards = [float(t.split("RM ")[1].split("\n")[0]) for t in titles]
    assert len(rewards) == 12 and rewards == sorted(rewards, reverse=True)
    # each TF at display quality from every view: 48-voxel volume, 72-pixel images
    shown = [im.get_array().shape for ax in grid.axes for im in ax.get_images()]
    assert shown == [(72, 72, 3)] * 12 * len(DISPLAY_VIEWS)
    assert sum(len(ax.child_axes) for ax in grid.axes) == 12  # the histogram insets


def test_evaluate_reward_model_writes_what_it_returns(setup, tmp_path):
    metrics = evaluate_reward_model(
        setup.model,
        setup.scorer,
        setup.held,
        np.random.default_rng(6),
        out_dir=tmp_path / "eval",
        log_dir=tmp_path / "tb",
        n_random=200,
        grid=8,
        display_size=DISPLAY,
    )
    on_disk = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert on_disk == metrics
    assert metrics["pair_labels"] == "preferences" and metrics["n_actions"] is None
    # the same rng draws the same random actions as spearman_random
    rho, rewards, _ = spearman_random(setup.model, setup.scorer, np.random.default_rng(6), n=200)
    assert metrics["spearman_rho"] == pytest.approx(rho)
    assert metrics["reward_mean"] == pytest.approx(rewards.mean())
    accuracy = pair_accuracy(setup.model, setup.held, settings=setup.scorer.settings)
    for key, value in accuracy.items():
        assert metrics[key] == (None if np.isnan(value) else pytest.approx(value)), key
    assert sorted(Path(p).name for p in metrics["files"].values()) == PNGS
    for name in PNGS:
        assert (tmp_path / "eval" / name).stat().st_size > 10_000
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_evaluate_oracle_scorer_scores_perfectly(setup, tmp_path):
    metrics = evaluate_reward_model(
        OracleScorer(setup.scorer),
        setup.scorer,
        setup.held,
        np.random.default_rng(7),
        out_dir=tmp_path,
        n_random=64,
        grid=4,
        display_size=DISPLAY,
    )
    assert metrics["accuracy_oracle"] == 1.0 and metrics["spearman_rho"] == pytest.approx(1.0)
    assert metrics["good_tf_reward"] == pytest.approx(
        setup.scorer.oracle_scores(np.array([metrics["good_tf_action"]]))[0]
    )


def test_evaluate_checkpoint_end_to_end(setup, tmp_path):
    db = tmp_path / "prefs.sqlite"
    with PreferenceStore(db) as store:
        store.add_many(setup.records)
        records = store.records()
    trained = train_reward_model(records, setup.config, progress=False)
    ckpt = trained.save(tmp_path / "rm.pt")
    config = EvalConfig(n_random=200, grid=4, image_size=IMAGE_SIZE, display_size=DISPLAY)
    out = tmp_path / "eval"
    extra = replace(records[0], id=None)  # a record added since: not held out
    metrics = evaluate_checkpoint(ckpt, [extra, *reversed(records)], SCENE, config, out_dir=out)
    assert metrics["n_pairs"] == len(trained.validation) == 40
    assert metrics["pair_labels"] == "preferences"
    assert metrics["source"] == "40 stored heldout preferences of scene 'phantom-00'"
    held = heldout_records(records, trained.info)
    distinct = {tuple(a) for r in held for a in (r.action_a, r.action_b)}
    assert metrics["n_actions"] == len(distinct)
    assert -1.0 <= metrics["spearman_rho_actions"] <= 1.0
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert sorted(p.name for p in out.glob("*.png")) == PNGS
    all_pairs = evaluate_checkpoint(
        ckpt, records, SCENE, replace(config, pairs="all"), out_dir=tmp_path / "all"
    )
    assert all_pairs["n_pairs"] == len(records)

    with pytest.raises(ValueError, match="is a scene set"):
        evaluate_checkpoint(ckpt, records, "heldout", config, out_dir=out)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        evaluate_checkpoint(tmp_path / "none.pt", records, SCENE, config, out_dir=out)


@pytest.fixture(scope="module")
def checkpoint(setup, tmp_path_factory) -> Path:
    """The tiny model trained on phantom-00's stored preferences, saved."""
    return setup.result.save(tmp_path_factory.mktemp("ckpt") / "rm.pt")


def test_oracle_pair_accuracy_equals_pair_accuracy_on_oracle_labelled_records(setup):
    """Every pair labelled by the noise-free oracle, as stored records, gives the same numbers."""
    rng = np.random.default_rng(8)
    acts = np.concatenate(
        [paper_like_actions(setup.scorer, rng)[:20], np.repeat(np.zeros((1, 8)), 2, 0)]
    ).astype(np.float32)  # two equal (empty) TFs: one oracle tie
    rewards = setup.model.predict(setup.scorer.observation, acts).astype(np.float64)
    scores = setup.scorer.oracle_scores(acts)
    out = oracle_pair_accuracy(rewards, scores)
    i, j = np.triu_indices(len(acts), k=1)
    mu = np.where(scores[i] > scores[j], 1.0, np.where(scores[i] < scores[j], 0.0, 0.5))
    records = [
        Preference(SCENE, acts[a].tolist(), acts[b].tolist(), mu=float(m), labeler="oracle")
        for a, b, m in zip(i, j, mu, strict=True)
    ]
    stored = pair_accuracy(setup.model, records, settings=setup.scorer.settings)
    assert out["n_pairs"] == len(records) == 231
    assert out["n_unambiguous"] < out["n_pairs"]  # the tie is no unambiguous pair
    for key, value in stored.items():
        assert out[key] == pytest.approx(value), key
    assert out["labeler_vs_oracle"] == 1.0


def test_evaluate_without_preferences_uses_the_oracle_labelled_action_set(setup, tmp_path):
    """With no records, the pairs are every pair of the given actions, labelled by the oracle:
    the oracle as the model is then right on every pair."""
    actions = paper_actions(setup.scorer, np.random.default_rng(9), expert_budget=64).actions
    metrics = evaluate_reward_model(
        OracleScorer(setup.scorer),
        setup.scorer,
        [],
        np.random.default_rng(10),
        out_dir=tmp_path,
        n_random=64,
        grid=4,
        actions=actions,
        source="generated",
        display_size=DISPLAY,
        views=("front",),
    )
    assert metrics["pair_labels"] == "oracle" and metrics["source"] == "generated"
    assert metrics["n_actions"] == 100 and metrics["n_pairs"] == 100 * 99 // 2
    assert metrics["accuracy_oracle"] == 1.0 and metrics["accuracy_labeler"] == 1.0
    assert metrics["spearman_rho_actions"] == pytest.approx(1.0)
    assert metrics["labels_approximate"] is False


def test_evaluate_checkpoint_without_a_store(checkpoint, tmp_path):
    config = EvalConfig(n_random=256, grid=4, image_size=IMAGE_SIZE, display_size=DISPLAY)
    # no store: the training scene, on its generated action set
    own = evaluate_checkpoint(checkpoint, [], SCENE, config, out_dir=tmp_path / "own")
    assert own["pair_labels"] == "oracle"
    assert own["source"].startswith("no preference store given; generated the paper's action")
    assert "(10 expert, 40 shift, 50 random actions)" in own["source"]
    assert "true tissue labels" in own["source"]
    assert own["n_actions"] == 100 and own["n_pairs"] == 4950
    assert own["labels_approximate"] is False
    # the model learned the oracle's ranking of such actions: far better than chance
    assert own["spearman_rho_actions"] > 0.5, own["spearman_rho_actions"]
    assert own["accuracy_oracle"] > 0.65, own["accuracy_oracle"]
    assert sorted(p.name for p in (tmp_path / "own").glob("*.png")) == PNGS
    assert json.loads((tmp_path / "own" / "metrics.json").read_text()) == own


def test_evaluate_checkpoint_on_a_scan_the_store_lacks(setup, checkpoint, tmp_path):
    """A store without headsq: its action set is generated, on approximate labels, and the
    source says so."""
    config = EvalConfig(n_random=256, grid=4, image_size=IMAGE_SIZE, display_size=DISPLAY)
    scan = evaluate_checkpoint(checkpoint, setup.records, "headsq", config, out_dir=tmp_path / "h")
    assert scan["source"].startswith(
        "the preference store holds no heldout preferences of scene 'headsq'; generated"
    )
    assert "APPROXIMATE labels" in scan["source"] and scan["labels_approximate"] is True
    assert -1.0 <= scan["spearman_rho"] <= 1.0 and 0.0 <= scan["accuracy_oracle"] <= 1.0


def test_eval_rm_command_without_a_store(checkpoint, tmp_path, capsys):
    out = tmp_path / "eval"
    small = ["--n-random", "64", "--grid", "4", "--image-size", "32", "--display-size", "48"]
    argv = ["eval-rm", str(checkpoint), "--scene", "headsq", "--out", str(out), *small]
    assert main([*argv, "--no-progress", "--views", "front"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("source: no preference store given; generated the paper's action set")
    assert "oracle-labelled pairs (unambiguous)" in text
    assert "Spearman rho, 100 eval actions" in text
    assert "accuracy vs labeler" not in text  # the labeler is the oracle here
    assert "note: the oracle judged approximate labels" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"{metrics['spearman_rho']:.3f}" in text
    assert main(["eval-rm", str(checkpoint), "--model", "other.pt", "--scene", "headsq"]) == 2
    assert "two checkpoints named" in capsys.readouterr().err
    assert main(["eval-rm", "--scene", "headsq"]) == 2
    assert "name the reward model checkpoint" in capsys.readouterr().err


def test_eval_config_display_defaults_are_the_display_modules():
    assert EvalConfig().display_size == DISPLAY_WORKING_SIZE
    assert EvalConfig().views == DISPLAY_VIEWS
    assert EvalConfig(views="top").views == ("top",)
    with pytest.raises(ValueError, match="display_size must be at least 8"):
        EvalConfig(display_size=4)


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
    assert record["args"]["quick"] is True
    assert set(record["parts"]) == {"a", "d", "e"}
    rows_a = record["parts"]["a"]["rows"]
    assert [r["variant"] for r in rows_a] == ["paper", "mask"]
    assert all(r["n_pairs"] == 300 and -1 <= r["rho"] <= 1 for r in rows_a)
    assert [r["n_pairs"] for r in record["parts"]["d"]["rows"]] == [100, 100, 300, 300]
    assert (tmp_path / "rm_label_efficiency.png").stat().st_size > 10_000
