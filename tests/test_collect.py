"""Tests of tfgym.collect: the paper's action set, simulated preferences and `tfgym collect`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest

from tfgym.cli import main
from tfgym.collect import (
    HUMAN,
    ActionSet,
    CollectConfig,
    check_pairs,
    collect_multi,
    collect_preferences,
    paper_actions,
    sample_pairs,
)
from tfgym.labeling.items import QueueConfig, enqueue_preferences, render_items
from tfgym.observation import ObservationSettings
from tfgym.oracle import LABELER_PRESETS, SimulatedLabeler, labeler_id, reference_action
from tfgym.preferences import PreferenceStore
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.transfer_function import TransferFunction

SCENE = "headsq"
SETTINGS = ScoringSettings(image_size=32, working_size=32)


@pytest.fixture(scope="module")
def scorer() -> SceneScorer:
    return SceneScorer(SCENE, SETTINGS)


@pytest.fixture(scope="module")
def actions(scorer) -> ActionSet:
    return paper_actions(scorer, np.random.default_rng(0), expert_budget=128)


def scores_of(scorer: SceneScorer, acts) -> np.ndarray:
    return scorer.oracle_scores(np.asarray(acts))


# -- action set ------------------------------------------------------------------------------
def test_paper_actions_sizes_kinds_ranges(actions):
    a = actions.actions
    assert a.shape == (100, 8) and a.dtype == np.float32 and len(actions) == 100
    assert actions.kinds == ("expert",) * 10 + ("shift",) * 40 + ("random",) * 50
    assert np.all(a >= -1) and np.all(a <= 1)
    experts, shifts = a[:10], a[10:50]
    # each shift is a small perturbation of its expert (4 per expert)
    offsets = shifts - experts[np.arange(40) % 10]
    assert np.abs(offsets).max() < 6 * 0.05 and 0.02 < np.abs(offsets).mean() < 0.06
    # experts are distinct designs
    dist = np.abs(experts[:, None] - experts[None]).max(axis=2)
    assert dist[~np.eye(10, dtype=bool)].min() >= 0.1
    assert actions.mask("random").sum() == 50


def test_experts_score_well(scorer, actions):
    s = scores_of(scorer, actions.actions)
    expert, shift, random = (s[actions.mask(k)] for k in ("expert", "shift", "random"))
    ref = scores_of(scorer, reference_action(scorer.scene)[None])[0]
    assert expert.min() >= 0.85 * max(expert.max(), ref)  # all near the best found
    assert expert.mean() > random.mean() + 0.2
    assert shift.mean() > random.mean() + 0.2
    assert expert.min() > np.median(random)


def test_paper_actions_custom_counts_and_vertices(scorer):
    penta = SceneScorer(SCENE, replace(SETTINGS, n_vertices=5))
    a = paper_actions(
        penta, np.random.default_rng(1), n_expert=3, n_shift=7, n_random=5, expert_budget=32
    )
    assert a.actions.shape == (15, 10)
    assert a.kinds.count("expert") == 3 and a.kinds.count("shift") == 7
    with pytest.raises(ValueError, match="n_expert >= 1"):
        paper_actions(scorer, np.random.default_rng(0), n_expert=0)
    with pytest.raises(ValueError, match="shift_scale must be > 0"):
        paper_actions(scorer, np.random.default_rng(0), shift_scale=0)
    with pytest.raises(ValueError, match="unknown action kinds"):
        ActionSet(np.zeros((2, 8)), ("expert", "guess"))


def test_paper_actions_deterministic(scorer, actions):
    again = paper_actions(scorer, np.random.default_rng(0), expert_budget=128)
    np.testing.assert_array_equal(again.actions, actions.actions)
    other = paper_actions(scorer, np.random.default_rng(1), expert_budget=128)
    assert not np.array_equal(other.actions, actions.actions)


# -- pairs and labels ------------------------------------------------------------------------
def test_sample_pairs_distinct_and_unordered():
    rng = np.random.default_rng(0)
    pairs = sample_pairs(100, 4000, rng)
    assert pairs.shape == (4000, 2) and pairs.dtype == np.int64
    assert np.all(pairs[:, 0] != pairs[:, 1]) and pairs.min() >= 0 and pairs.max() < 100
    unordered = {tuple(sorted(p)) for p in pairs.tolist()}
    assert len(unordered) == 4000
    assert 0.4 < np.mean(pairs[:, 0] < pairs[:, 1]) < 0.6  # both orders occur
    assert len({tuple(sorted(p)) for p in sample_pairs(10, 45, rng).tolist()}) == 45
    with pytest.raises(ValueError, match="cannot sample 46 distinct pairs from 10 actions"):
        sample_pairs(10, 46, rng)


def test_collect_mu_values_and_determinism(scorer, actions):
    prefs = collect_preferences(scorer, actions, n_pairs=600, rng=np.random.default_rng(3))
    assert len(prefs) == 600
    mus = np.array([p.mu for p in prefs])
    assert set(mus) == {0.0, 0.5, 1.0}
    assert 0.05 < np.mean(mus == 0.5) < 0.5
    assert {p.labeler for p in prefs} == {"sim:noisy"} and {p.scene for p in prefs} == {SCENE}
    again = collect_preferences(scorer, actions, n_pairs=600, rng=np.random.default_rng(3))
    stamp = prefs[0].created
    assert [replace(p, created=stamp) for p in again] == [replace(p, created=stamp) for p in prefs]
    pairs = {tuple(sorted((p.action_a, p.action_b))) for p in prefs}
    assert len(pairs) == 600


def test_perfect_labeler_agrees_with_oracle(scorer, actions):
    prefs = collect_preferences(
        scorer, actions.actions, n_pairs=300, labeler="perfect", rng=np.random.default_rng(4)
    )
    s_a = scores_of(scorer, [p.action_a for p in prefs])
    s_b = scores_of(scorer, [p.action_b for p in prefs])
    expected = np.where(s_a > s_b, 1.0, np.where(s_a < s_b, 0.0, 0.5))
    np.testing.assert_array_equal([p.mu for p in prefs], expected)
    assert {p.labeler for p in prefs} == {"sim:perfect"}


def test_skipping_labeler_drops_pairs(scorer, actions):
    prefs = collect_preferences(
        scorer, actions, n_pairs=1000, labeler="distracted", rng=np.random.default_rng(5)
    )
    assert 700 < len(prefs) < 900  # skip_rate 0.2
    assert all(p.mu in (0.0, 0.5, 1.0) for p in prefs)
    with pytest.raises(ValueError, match="unknown labeler preset 'lazy'"):
        collect_preferences(
            scorer, actions, n_pairs=10, labeler="lazy", rng=np.random.default_rng()
        )
    with pytest.raises(ValueError, match="cannot sample 4951 distinct pairs"):
        collect_preferences(scorer, actions, n_pairs=4951, rng=np.random.default_rng())


def test_labeler_id():
    assert labeler_id("noisy") == "sim:noisy"
    assert labeler_id(LABELER_PRESETS["noisy"]) == "sim:noisy"
    assert labeler_id(SimulatedLabeler(0.05, 0.02, 0.2)) == "sim:mistaken"
    assert labeler_id(SimulatedLabeler(0.5)).startswith("sim:custom(temperature=0.5,")


# -- store -----------------------------------------------------------------------------------
def test_collect_into_store(scorer, actions, tmp_path):
    ranges = scorer.scene.ranges
    with PreferenceStore(tmp_path / "p.sqlite") as store:
        prefs = collect_preferences(
            scorer, actions, n_pairs=300, rng=np.random.default_rng(6), store=store
        )
        assert [p.id for p in prefs] == list(range(1, 301))
        assert store.records() == prefs
    p = prefs[0]
    tf_a, tf_b = TransferFunction.from_dict(p.tf_a), TransferFunction.from_dict(p.tf_b)
    assert tf_a.ranges == ranges
    assert (tf_a.opacity, tf_a.color_scheme) == (SETTINGS.opacity, SETTINGS.color_scheme)
    np.testing.assert_allclose(tf_a.action, p.action_a, atol=1e-6)
    np.testing.assert_allclose(tf_b.action, p.action_b, atol=1e-6)


def test_records_carry_the_observation_they_were_labeled_on(scorer, actions):
    prefs = collect_preferences(scorer, actions, n_pairs=20, rng=np.random.default_rng(8))
    expected = ObservationSettings.from_scene(scorer.scene, n_vertices=4)
    assert {p.observation for p in prefs} == {expected}
    obs = prefs[0].observation
    assert (obs.scene, obs.working_size, obs.histogram_bins, obs.n_vertices) == (SCENE, 32, 64, 4)
    assert obs.load_scene().content_hash == scorer.scene.content_hash


def test_collect_multi():
    config = CollectConfig(pairs=120, labeler="perfect", seed=7, expert_budget=64)
    with PreferenceStore(":memory:") as store:
        prefs = collect_multi([SCENE, "phantom-00"], config, settings=SETTINGS, store=store)
        assert len(store) == 240 and store.scenes() == [SCENE, "phantom-00"]
    assert [p.scene for p in prefs] == [SCENE] * 120 + ["phantom-00"] * 120
    assert {p.labeler for p in prefs} == {"sim:perfect"}
    assert {p.observation.working_size for p in prefs} == {32}
    # each scene has its own action set
    a0 = {p.action_a for p in prefs[:120]} | {p.action_b for p in prefs[:120]}
    a1 = {p.action_a for p in prefs[120:]} | {p.action_b for p in prefs[120:]}
    assert not a0 & a1
    # the seed decides everything
    again = collect_multi([SCENE, "phantom-00"], config, settings=SETTINGS)
    assert [(p.action_a, p.action_b, p.mu) for p in again] == [
        (p.action_a, p.action_b, p.mu) for p in prefs
    ]


def test_collect_config_validates_before_any_work():
    with pytest.raises(ValueError, match="pairs must be at least 1"):
        CollectConfig(pairs=0)
    with pytest.raises(ValueError, match="exceeds the 4950 distinct pairs of 100 actions"):
        CollectConfig(pairs=4951)
    with pytest.raises(ValueError, match="unknown labeler preset 'lazy'"):
        CollectConfig(labeler="lazy")
    with pytest.raises(ValueError, match="n_expert >= 1"):
        CollectConfig(n_expert=0)


# -- command line ----------------------------------------------------------------------------
def test_collect_command_writes_db_and_jsonl(tmp_path, capsys):
    db, out = tmp_path / "prefs.sqlite", tmp_path / "out.jsonl"
    argv = ["collect", "--scene", SCENE, "--pairs", "80", "--db", str(db), "--jsonl", str(out)]
    argv += ["--seed", "1", "--image-size", "32", "--working-size", "32", "--no-progress"]
    argv += ["--expert-budget", "64"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"stored 80 preferences for 1 scene(s) in {db}" in text
    assert "ties" in text and "skipped 0 (0.0% of 80 pairs)" in text
    assert "labeler sim:noisy, working size 32" in text
    with PreferenceStore(db) as store:
        assert len(store) == 80 and {p.labeler for p in store} == {"sim:noisy"}
        assert {p.observation.working_size for p in store} == {32}
    lines = out.read_text().splitlines()
    assert len(lines) == 80 and json.loads(lines[0])["scene"] == SCENE
    # a second run appends
    assert main(argv) == 0
    with PreferenceStore(db) as store:
        assert len(store) == 160


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--scene", SCENE, "--pairs", "5000"], "exceeds the 4950 distinct pairs"),
        (["--scene", "nowhere"], "unknown scene 'nowhere'"),
        (["--scenes", "train", "--pairs", "0"], "pairs must be at least 1"),
        (["--scene", SCENE, "--working-size", "4"], "--working-size must be at least 8"),
    ],
    ids=["too-many-pairs", "unknown-scene", "zero-pairs", "tiny-working-size"],
)
def test_collect_command_user_errors(tmp_path, capsys, extra, match):
    db = tmp_path / "x.sqlite"
    base = ["collect", "--db", str(db), "--image-size", "32", "--no-progress"]
    assert main(base + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfgym collect: error: ")
    assert match in err
    assert not db.exists()  # nothing created on a user error


def test_collect_command_errors_name_the_option(tmp_path, capsys):
    base = ["collect", "--db", str(tmp_path / "x.sqlite"), "--no-progress", "--scene", SCENE]
    assert main([*base, "--pairs", "0"]) == 2
    assert main([*base, "--working-size", "4"]) == 2
    err = capsys.readouterr().err
    assert "--pairs must be at least 1" in err
    assert "--working-size must be at least 8" in err


@pytest.mark.parametrize(
    "extra",
    [["--scene", SCENE, "--labeler", "lazy"], ["--scene", SCENE, "--scenes", "train"]],
    ids=["unknown-labeler", "scene-and-scenes"],
)
def test_collect_command_usage_errors_exit_2(tmp_path, capsys, extra):
    db = tmp_path / "x.sqlite"
    with pytest.raises(SystemExit) as info:  # argparse refuses these before any work
        main(["collect", "--db", str(db), *extra])
    assert info.value.code == 2
    assert "tfgym collect: error:" in capsys.readouterr().err
    assert not db.exists()


def test_train_follows_the_collected_working_size(tmp_path, capsys):
    """Collect at working size 32; train-rm without naming it trains at 32; naming 64 fails."""
    db = tmp_path / "p.sqlite"
    collect = ["collect", "--scene", SCENE, "--pairs", "120", "--db", str(db), "--no-progress"]
    collect += ["--working-size", "32", "--image-size", "32", "--expert-budget", "64"]
    assert main(collect) == 0
    train = ["train-rm", "--db", str(db), "--out", str(tmp_path / "rm.pt"), "--epochs", "1"]
    train += ["--no-progress"]
    capsys.readouterr()
    assert main(train) == 0
    assert "at working size 32" in capsys.readouterr().out
    from reward_models.checkpoint import read_checkpoint_info

    assert read_checkpoint_info(tmp_path / "rm.pt").working_size == 32
    assert main([*train, "--working-size", "64"]) == 2
    err = capsys.readouterr().err
    assert "--working-size 32" in err
    assert "--working-size 64" in err


# -- queued for people (--labeler human) -----------------------------------------------------
def test_check_pairs():
    assert check_pairs([[0, 2], [1, 0]], 3).dtype == np.int64
    for pairs, match in [
        ([[0, 0]], "two different"),
        ([[0, 3]], "two different actions of 3"),
        ([[-1, 0]], "two different"),
        ([0, 1], r"\(k, 2\)"),
        (np.zeros((0, 2)), r"\(k, 2\)"),
    ]:
        with pytest.raises(ValueError, match=match):
            check_pairs(pairs, 3)


def test_human_labeler_is_a_config_choice_that_collect_multi_refuses():
    config = CollectConfig(labeler=HUMAN, pairs=10)
    with pytest.raises(ValueError, match=r"queue the comparisons with tfgym\.labeling\.items"):
        collect_multi([SCENE], config, settings=SETTINGS)


def test_queue_config_validates():
    assert QueueConfig(views=["front"]).views == ("front",)
    for kwargs, match in [
        ({"display_size": 4}, "display_size must be at least 8"),
        ({"views": ("diagonal",)}, "unknown view"),
        ({"overlap": 0}, "overlap must be at least 1"),
        ({"priority": float("nan")}, "priority must be finite"),
    ]:
        with pytest.raises(ValueError, match=match):
            QueueConfig(**kwargs)


def test_enqueue_preferences_queues_the_collect_pairs_rendered_once(scorer, actions, tmp_path):
    from tfgym.preferences.queue import LabelQueue

    config = QueueConfig(display_size=16, views=("front", "side"), priority=1.5)
    expected = sample_pairs(100, 30, np.random.default_rng(5))  # what collect would answer
    with LabelQueue(tmp_path / "q.sqlite", seed=0) as queue:
        ids = enqueue_preferences(
            scorer, actions, queue=queue, n_pairs=30, rng=np.random.default_rng(5), config=config
        )
        assert len(ids) == len(set(ids)) == 30
        assert queue.counts() == {"waiting": 30, "leased": 0, "answered": 0}
        index = {tuple(float(x) for x in a): i for i, a in enumerate(actions.actions)}
        seen_pairs, shas, expected_mu = set(), {}, {}
        while (lease := queue.claim("dr-a")) is not None:
            assert lease.scene == SCENE and lease.kind == "pair"
            pair = [
                index[tuple(item.action)] for item in sorted(lease.items, key=lambda x: x.index)
            ]
            seen_pairs.add(tuple(pair))
            for item in lease.items:
                action = index[tuple(item.action)]
                assert set(item.views) == {"front", "side"}
                # one rendering per action and view, whatever the pair
                assert (
                    shas.setdefault((action, "front"), item.views["front"]) == item.views["front"]
                )
            left = next(item for item in lease.items if item.position == 0)
            expected_mu[lease.pair_id] = 1.0 if left.index == 0 else 0.0
            queue.answer(lease.pair_id, "dr-a", "left")
        assert seen_pairs == {tuple(p) for p in expected.tolist()}
        used = np.unique(expected)
        assert len(set(shas.values())) == len(used)
        # the stored bytes are the display rendering of that action
        first = int(used[0])
        (item,) = render_items(
            scorer.scene, actions.actions[first : first + 1], settings=SETTINGS, working_size=16
        )
        png = queue.rendering(shas[(first, "front")])
        assert png == item.views["front"]
        assert shas[(first, "front")] == hashlib.sha256(png).hexdigest()
        # answers carry the keys, the observation and the TFs
        answers = queue.answers()
        assert len(answers) == 30
        assert {a.pair_id: a.mu for a in answers} == expected_mu  # "left" mapped back
        assert set(expected_mu.values()) == {0.0, 1.0}  # sides were drawn at random
        kinds = dict(enumerate(actions.kinds))
        for a in answers:
            for key in a.keys:
                i, kind = key.split(":")
                assert kinds[int(i)] == kind
        records = queue.store.records()
        assert len(records) == 30 and all(r.labeler == "dr-a" for r in records)
        assert sorted(r.mu for r in records) == sorted(expected_mu.values())
        assert {r.observation for r in records} == {
            ObservationSettings.from_scene(scorer.scene, n_vertices=4)
        }
        assert all(r.tf_a is not None and r.tf_b is not None for r in records)


def test_enqueue_preferences_given_pairs_and_errors(scorer, actions, tmp_path):
    from tfgym.preferences.queue import LabelQueue

    config = QueueConfig(display_size=8, views=("front",))
    with LabelQueue(tmp_path / "q.sqlite") as queue:
        ids = enqueue_preferences(
            scorer,
            actions.actions[:4],
            queue=queue,
            pairs=np.array([[0, 1], [3, 2]]),
            rng=np.random.default_rng(0),
            config=config,
        )
        assert len(ids) == 2
        lease = queue.claim("dr-b")
        assert {item.action for item in lease.items} == {
            tuple(float(x) for x in actions.actions[i]) for i in (0, 1)
        }
        for pairs, match in [(np.array([[0, 0]]), "two different"), (np.array([0, 1]), "shape")]:
            with pytest.raises(ValueError, match=match):
                enqueue_preferences(
                    scorer, actions, queue=queue, pairs=pairs, rng=np.random.default_rng(0)
                )
        assert queue.counts()["waiting"] + queue.counts()["leased"] == 2


def test_collect_command_human_queues_for_the_label_server(tmp_path, capsys):
    from tfgym.preferences.queue import LabelQueue

    db = tmp_path / "q.sqlite"
    argv = ["collect", "--scene", SCENE, "--labeler", HUMAN, "--pairs", "12", "--db", str(db)]
    argv += ["--working-size", "32", "--image-size", "32", "--expert-budget", "32"]
    argv += ["--display-size", "16", "--views", "front", "--overlap", "2", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "queued 12 comparisons for people" in out
    assert f"tfgym label --db {db}" in out
    with LabelQueue(db) as queue:
        first = queue.claim("dr-a")
        assert set(first.items[0].views) == {"front"}
        assert queue.claim("dr-b").comparison_id == first.comparison_id  # overlap 2
        assert len(queue.store) == 0  # nothing answered
    assert main([*argv, "--jsonl", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "tfgym prefs export" in err and not (tmp_path / "x.jsonl").exists()
