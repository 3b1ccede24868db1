"""Agent evaluation on held-out scans: numbers, baselines, the search cache, JSON, figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.constant import ConstantPolicy
from agents.evaluate import AgentEvaluation, evaluate_agents
from tfgym.scoring import SceneScorer, ScoringSettings

SETTINGS = ScoringSettings(working_size=32, image_size=32)
SCENES = (("phantom-32", "phantom-33"), "headsq")  # a group of two phantoms, then headsq
CONSTANT = np.array([0.2, -1, 1, -1, 1, 1, 0.2, 1], np.float32)  # dense half of the histogram
BUDGET = 60


class HistogramReader:
    """A deterministic agent that reads its observation: the polygon starts where the
    histogram's mass above the median intensity column begins. Records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], bool]] = []

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = np.asarray(observation, np.float64)
        self.calls.append((obs.shape, deterministic))
        mass = obs.sum(axis=(1, 2))  # (n, intensity bins)
        cum = np.cumsum(mass, axis=1) / mass.sum(axis=1, keepdims=True)
        start = (np.argmax(cum > 0.7, axis=1) / (obs.shape[-1] - 1)) * 2 - 1
        acts = np.tile(CONSTANT, (len(obs), 1))
        acts[:, 0] = acts[:, 6] = start
        return acts, state


class Lookup:
    """Plays given actions, one per observation in order (a policy that knows the answer)."""

    def __init__(self, actions: np.ndarray) -> None:
        self.actions = actions

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return self.actions[: len(observation)].copy(), state


def evaluate(agents, out_dir=None, **kwargs):
    kwargs = {"best_budget": BUDGET, "best_population": 16, **kwargs}
    return evaluate_agents(
        agents, SCENES, settings=SETTINGS, constant=CONSTANT, out_dir=out_dir, progress=False,
        **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def reader() -> HistogramReader:
    return HistogramReader()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> object:
    return tmp_path_factory.mktemp("agent-eval")


@pytest.fixture(scope="module")
def evaluation(reader, cache) -> AgentEvaluation:
    return evaluate({"reader": reader, "constant-policy": ConstantPolicy(CONSTANT)}, cache)


def test_each_agent_predicts_once_on_all_scenes_deterministically(evaluation, reader):
    assert evaluation.scenes == ("phantom-32", "phantom-33", "headsq")
    assert reader.calls == [((3, 1, 64, 64), True)]
    assert evaluation.groups == {"phantom-32+phantom-33": SCENES[0], "headsq": ("headsq",)}
    assert evaluation.methods == ("reader", "constant-policy", "constant", "random", "best")


def test_scores_are_the_oracle_scores_of_the_actions(evaluation):
    for i, scene in enumerate(evaluation.scenes):
        scorer = SceneScorer(scene, SETTINGS)
        for method in ("reader", "constant", "best"):
            direct = scorer.score(evaluation.actions[method][i]).oracle_score[0]
            assert evaluation.scores[method][i] == pytest.approx(direct, abs=1e-9)
        # the random baseline: the mean of the same seeded uniform actions on every scene
        acts = np.random.default_rng(0).uniform(-1, 1, (256, 8))
        assert evaluation.scores["random"][i] == pytest.approx(scorer.oracle_scores(acts).mean())


def test_best_is_never_below_a_candidate_and_ratios_are_score_over_best(evaluation):
    best = evaluation.scores["best"]
    for method in evaluation.methods:
        assert np.all(best >= evaluation.scores[method])
        np.testing.assert_allclose(evaluation.ratio(method), evaluation.scores[method] / best)
    assert np.all(evaluation.ratio("best") == 1.0)
    # at this budget the search beats the fixed polygons
    assert np.all(best > evaluation.scores["constant"])
    assert np.all(evaluation.scores["random"] < evaluation.scores["constant"])


def test_a_constant_agent_closes_no_gap_and_the_best_all_of_it(evaluation):
    np.testing.assert_array_equal(evaluation.gap_closed("constant-policy"), 0.0)
    np.testing.assert_allclose(evaluation.gap_closed("best"), 1.0)
    for group in evaluation.groups:
        row = evaluation.summary(group)
        assert row["constant-policy"]["gap_closed"] == 0.0
        assert row["best"]["gap_closed"] == pytest.approx(1.0)
        assert row["best"]["ratio"] == pytest.approx(1.0)


def test_group_rows_are_ratios_of_means(evaluation):
    s = evaluation.scores
    a, b, c = (s[m][:2].mean() for m in ("reader", "best", "constant"))
    row = evaluation.summary("phantom-32+phantom-33")["reader"]
    assert row["score"] == pytest.approx(a)
    assert row["ratio"] == pytest.approx(a / b)
    assert row["gap_closed"] == pytest.approx((a - c) / (b - c))
    assert evaluation.summary("headsq")["reader"]["score"] == s["reader"][2]
    with pytest.raises(KeyError, match="unknown group 'heldout'"):
        evaluation.summary("heldout")


def test_table_has_a_block_per_group_and_a_row_per_scene(evaluation):
    table = evaluation.table()
    assert "**phantom-32+phantom-33** (2 scenes)" in table
    assert "**headsq** (headsq)" in table
    assert "| constant-policy | " in table
    rows = [line for line in table.splitlines() if line.startswith("| phantom-3")]
    assert len(rows) == 2
    assert rows[0].endswith(f"| {evaluation.best_source[0]} |")


def test_json_round_trip(evaluation, tmp_path):
    path = evaluation.to_json(tmp_path / "sub" / "eval.json")
    back = AgentEvaluation.from_json(path)
    assert back.table() == evaluation.table()
    assert back.settings == evaluation.settings
    for method in evaluation.methods:
        np.testing.assert_array_equal(back.scores[method], evaluation.scores[method])
    for method, acts in evaluation.actions.items():
        np.testing.assert_array_equal(back.actions[method], acts)
    data = json.loads(path.read_text())
    assert data["summary"]["headsq"]["best"]["ratio"] == 1.0
    assert data["config"]["search"] == "cmaes"


def test_best_search_is_cached_by_scene_settings_budget_and_search(evaluation, cache):
    again = evaluate({"policy": ConstantPolicy(-CONSTANT)}, cache)  # other agents: still cached
    assert again.config["searches_cached"] == again.config["randoms_cached"] == 3
    assert again.seconds["baselines"] < 1.0
    assert len(list((cache / "best_search").glob("*.json"))) == 3
    for i, source in enumerate(evaluation.best_source):
        if source == "search" and again.best_source[i] == "search":  # the same cached action
            np.testing.assert_array_equal(again.actions["best"][i], evaluation.actions["best"][i])
        if source == "search":
            assert again.scores["best"][i] >= evaluation.scores["best"][i]
    other = evaluate({"policy": ConstantPolicy(CONSTANT)}, cache, best_budget=BUDGET + 1)
    assert other.config["searches_cached"] == 0


def test_a_changed_or_damaged_cache_record_is_searched_again(tmp_path):
    first = evaluate({"policy": ConstantPolicy(CONSTANT)}, tmp_path)
    files = sorted((tmp_path / "best_search").glob("*.json"))
    data = json.loads(files[0].read_text())
    data["check_score"] += 0.01  # as if the renderer or oracle had changed
    files[0].write_text(json.dumps(data))
    files[1].write_text("{truncated")  # a damaged record
    again = evaluate({"policy": ConstantPolicy(CONSTANT)}, tmp_path)
    assert again.config["searches_cached"] == 1
    assert again.config["randoms_cached"] == 3
    np.testing.assert_array_equal(again.scores["best"], first.scores["best"])  # same seeds
    rewritten = json.loads(files[0].read_text())["check_score"]
    assert rewritten == pytest.approx(data["check_score"] - 0.01, abs=1e-12)


def test_an_agent_better_than_the_search_is_the_best(evaluation):
    knows = Lookup(evaluation.actions["best"])
    short = evaluate({"knows": knows}, best_budget=2)  # a 2-evaluation search finds less
    np.testing.assert_array_equal(short.scores["best"], short.scores["knows"])
    assert short.best_source == ("knows",) * 3
    np.testing.assert_allclose(short.gap_closed("knows"), 1.0)


def test_figure_is_written(evaluation, tmp_path):
    from PIL import Image

    path = evaluation.save_figure(tmp_path / "fig.png", working_size=32)
    image = np.asarray(Image.open(path))
    assert image.shape[2] in (3, 4)
    assert image.shape[0] > image.shape[1] / 2  # three rows of four cells
    assert image[..., :3].std() > 20  # not blank
    with pytest.raises(ValueError, match="was not evaluated"):
        evaluation.save_figure(tmp_path / "x.png", scenes=["phantom-40"])


def test_default_figure_rows_take_scenes_from_every_group(evaluation):
    assert evaluation.figure_scenes() == ("phantom-32", "phantom-33", "headsq")
    assert evaluation.figure_scenes(rows=2) == ("phantom-32", "headsq")


def test_default_figure_rows_add_the_scenes_where_the_columns_differ_most():
    scenes = ("phantom-32", "phantom-33", "phantom-34", "headsq")
    scores = {
        "agent": np.array([0.8, 0.7, 0.2, 0.9]),
        "constant": np.array([0.7, 0.1, 0.6, 0.8]),
        "random": np.array([0.0, 0.0, 0.0, 0.0]),  # not in the figure: no effect
        "best": np.array([0.9, 0.8, 0.7, 0.9]),
    }
    evaluation = AgentEvaluation(
        scenes=scenes,
        groups={"heldout": scenes[:3], "headsq": ("headsq",)},
        agents=("agent",),
        scores=scores,
        actions={m: np.zeros((4, 8), np.float32) for m in ("agent", "constant", "best")},
        best_source=("search",) * 4,
        settings=SETTINGS,
    )
    assert evaluation.figure_scenes() == ("phantom-32", "phantom-33", "headsq")  # spread 0.7
    assert evaluation.figure_scenes(rows=4) == scenes
    assert evaluation.figure_scenes(rows=1) == ("phantom-32",)


def test_log_to_tensorboard(evaluation, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path)) as writer:
        evaluation.log_to(writer, step=7)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    (scalar,) = events.Scalars("eval/headsq/reader/ratio")
    assert scalar.step == 7
    assert scalar.value == pytest.approx(evaluation.summary("headsq")["reader"]["ratio"])


def test_an_sb3_ppo_model_is_an_agent():
    from stable_baselines3 import PPO

    from tfgym.env import TransferFunctionEnv

    env = TransferFunctionEnv("heldout", working_size=32, image_size=32)
    small = {"net_arch": [8], "features_extractor_kwargs": {"features_dim": 8}}
    model = PPO(
        "CnnPolicy", env, n_steps=16, batch_size=16, seed=0, device="cpu", policy_kwargs=small
    )
    result = evaluate({"ppo": model}, best_budget=2, random_samples=4)
    assert result.actions["ppo"].shape == (3, 8)
    expected = model.predict(result_observations(), deterministic=True)[0]
    np.testing.assert_allclose(result.actions["ppo"], np.clip(expected, -1, 1), atol=1e-6)


def result_observations() -> np.ndarray:
    return np.stack(
        [SceneScorer(s, SETTINGS).observation for s in ("phantom-32", "phantom-33", "headsq")]
    )


def test_baselines_alone_without_agents():
    result = evaluate_agents(
        {}, "headsq", settings=SETTINGS, constant=CONSTANT, best_budget=8, random_samples=4,
        progress=False,
    )  # fmt: skip
    assert set(result.scores) == {"constant", "random", "best"}
    assert result.scores["best"][0] >= result.scores["constant"][0]


@pytest.mark.parametrize(
    ("agents", "kwargs", "error", "match"),
    [
        ({"best": ConstantPolicy(CONSTANT)}, {}, ValueError, "taken by the baselines"),
        ({"a": ConstantPolicy(CONSTANT)}, {"best_search": "nope"}, ValueError, "valid: .*cmaes"),
        ({"a": ConstantPolicy(CONSTANT)}, {"best_budget": 0}, ValueError, "at least 1"),
        ({"a": object()}, {}, TypeError, "'a' \\(object\\) has no predict"),
        ({"a": Lookup(np.zeros((3, 6)))}, {}, ValueError, "expected \\(1, 8\\)"),
        ({"a": ConstantPolicy(CONSTANT)}, {"constant": CONSTANT[:6]}, ValueError, "8 numbers"),
    ],
    ids=["baseline-name", "unknown-search", "budget", "no-predict", "shape", "const"],
)
def test_errors(agents, kwargs, error, match):
    with pytest.raises(error, match=match):
        evaluate_agents(agents, "headsq", settings=SETTINGS, progress=False, **kwargs)
