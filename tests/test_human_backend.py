"""The "human" reward backend: Bradley-Terry fits, blocking and asynchronous modes.

End-to-end tests run the REAL labeling server (uvicorn on a free loopback port, in a
thread) over a real SQLite label queue, and simulated labelers that answer over HTTP.
"""

from __future__ import annotations

import contextlib
import pickle
import threading
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

from tfgym.backends import BACKENDS, make_backend
from tfgym.env import TransferFunctionEnv
from tfgym.labeling.blocking import (
    BlockingHumanBackend,
    LabelTimeout,
    LabelTimeoutWarning,
    action_key,
)
from tfgym.labeling.bradley_terry import fit_bradley_terry
from tfgym.oracle import reference_action
from tfgym.preferences.queue import LabelQueue
from tfgym.scene import load_scene
from tfgym.scoring import SceneScorer, ScoringSettings

SCENE = "headsq"
SMALL = ScoringSettings(working_size=32, image_size=32)  # env, oracle and client settings
EMPTY = np.array([0.9, 0.9, 1.0, 0.9, 1.0, 1.0, 0.9, 1.0], np.float32)  # a sliver: ~nothing
FAST = {"display_size": 32, "poll_s": 0.05}


# -- Bradley-Terry -------------------------------------------------------------------------------
def _bt_answers(utilities, n, rng, tie_band=0.0):
    """``n`` simulated answers of random pairs under the Bradley-Terry model."""
    out = []
    for _ in range(n):
        i, j = rng.choice(len(utilities), 2, replace=False)
        d = utilities[i] - utilities[j]
        mu = 0.5 if abs(d) < tie_band else float(rng.random() < 1 / (1 + np.exp(-d)))
        out.append((f"item{i}", f"item{j}", mu))
    return out


def test_bradley_terry_recovers_known_strengths(rng):
    truth = np.linspace(-2.0, 2.0, 8)
    rng.shuffle(truth)
    answers = _bt_answers(truth, 1500, rng, tie_band=0.2)
    fit = fit_bradley_terry(answers, prior=0.01)
    assert fit.converged
    fitted = np.array([fit.utility(f"item{i}") for i in range(len(truth))])
    assert list(np.argsort(fitted)) == list(np.argsort(truth))  # the exact order
    # ties shrink differences a little (a tie says "equal"); the scale stays close
    np.testing.assert_allclose(fitted, truth - truth.mean(), atol=0.35)
    assert fitted.sum() == pytest.approx(0.0, abs=1e-9)  # the prior centres the utilities


def test_bradley_terry_is_the_map_estimate(rng):
    """The Newton fit maximises the posterior: scipy's optimiser finds the same point."""
    from scipy.optimize import minimize

    answers = _bt_answers(np.array([1.0, 0.0, -0.5, 2.0]), 25, rng)
    answers += [("item0", "item1", 0.5), ("item2", "item3", None)]
    prior = 0.3
    fit = fit_bradley_terry(answers, prior=prior)
    rows = {k: i for i, k in enumerate(fit.keys)}
    used = [(rows[a], rows[b], mu) for a, b, mu in answers if mu is not None]

    def negative_log_posterior(u):
        nll = sum(mu * np.logaddexp(0, u[b] - u[a]) + (1 - mu) * np.logaddexp(0, u[a] - u[b])
                  for a, b, mu in used)  # fmt: skip
        return nll + 0.5 * prior * u @ u

    best = minimize(negative_log_posterior, np.zeros(len(fit.keys)), method="BFGS", tol=1e-10)
    np.testing.assert_allclose(fit.utilities, best.x, atol=1e-4)
    assert fit.n_comparisons == len(used)


def test_bradley_terry_ties_skips_and_prior():
    fit = fit_bradley_terry([("a", "b", 0.5), ("c", "d", None)], items=["e"])
    assert fit.keys == ("e", "a", "b", "c", "d")
    assert fit.utility("a") == fit.utility("b") == 0.0  # a tie: equal
    assert fit.utility("c") == fit.utility("d") == fit.utility("e") == 0.0  # skip, unseen
    assert fit.n_answers.tolist() == [0, 1, 1, 0, 0]
    assert fit.utility("zz", default=-1.0) == -1.0
    one = fit_bradley_terry([("a", "b", 1.0)])
    assert one.utility("a") == -one.utility("b") > 0  # one win: finite, by the prior
    assert fit_bradley_terry([("a", "b", 1.0)], prior=10.0).utility("a") < one.utility("a")
    with pytest.raises(KeyError, match="not in this Bradley-Terry fit"):
        fit.utility("zz")
    with pytest.raises(ValueError, match=r"mu must be in \[0, 1\]"):
        fit_bradley_terry([("a", "b", 2.0)])
    with pytest.raises(ValueError, match="with itself"):
        fit_bradley_terry([("a", "a", 1.0)])
    with pytest.raises(ValueError, match="prior must be a positive number"):
        fit_bradley_terry([], prior=0.0)
    with pytest.raises(ValueError, match=r"must be \(item_a, item_b, mu\)"):
        fit_bradley_terry([("a", "b")])


def test_action_key_names_a_tf():
    a = np.array([0.2, -1, 1, -1, 1, 1, 0.2, 1], np.float32)
    assert action_key(a) == action_key(a.astype(np.float64) + 1e-6)
    assert action_key(a) != action_key(a + 1e-3)


# -- the real server on loopback ------------------------------------------------------------------
@contextlib.contextmanager
def serving(db):
    """The REAL labeling server (uvicorn in a thread, loopback) on its own queue over ``db``."""
    from tfgym.labeling.server import running_server

    with LabelQueue(db, lease_s=30.0) as queue, running_server(queue) as url:
        yield url


@contextlib.contextmanager
def labelers(url, n=2, preset="perfect"):
    """Simulated labelers answering over HTTP in a thread until the block ends."""
    from tfgym.labeling.client import simulate_labelers

    stop = threading.Event()
    report: list = []
    thread = threading.Thread(
        target=lambda: report.append(
            simulate_labelers(
                url, labelers=n, preset=preset, stop_when_empty=False, stop=stop,
                settings=SMALL, poll_s=0.05, kinds=("pair",),
            )
        ),
        daemon=True,
    )  # fmt: skip
    thread.start()
    try:
        yield report
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "labels.db")


@pytest.fixture(scope="module")
def scene():
    return load_scene(SCENE, working_size=32)


# -- blocking ------------------------------------------------------------------------------------
def test_blocking_env_gets_its_reward_from_answers_over_http(db, scene):
    good = reference_action(scene)
    with serving(db) as url, labelers(url):
        env = gym.make(
            "tfgym:TransferFunction-v0", scenes=SCENE, reward_backend="human",
            working_size=32, image_size=32,
            reward_kwargs={"db": db, "mode": "blocking", "references": [good, EMPTY],
                           "timeout_s": 30, **FAST},
        )  # fmt: skip
        backend = env.unwrapped.backend
        rewards = {}
        for name, action in (("good", good * 0.98), ("empty", EMPTY * 0.98)):
            env.reset(seed=0)
            start = time.monotonic()
            rewards[name] = env.step(action)[1]
            assert time.monotonic() - start < 30
        stats = backend.stats()
        env.close()
    assert stats["timeouts"] == 0 and stats["unanswered"] == 0
    # the given references against each other, the good action against both (it fills the
    # third reference place), the empty one against all three
    assert stats["queued"] == 1 + 2 + 3
    assert stats["answers"] == 6
    # the perfect labelers' verdicts, fitted: the reference > its slightly shrunk copy > the
    # empty TFs; the good copy sat between two references (utility 0) at its own step
    fit = backend.impl.last_fit
    u = {
        name: fit.utility(action_key(a))
        for name, a in (
            ("ref", good),
            ("good", good * 0.98),
            ("empty_ref", EMPTY),
            ("empty", EMPTY * 0.98),
        )
    }
    assert u["ref"] > u["good"] > max(u["empty_ref"], u["empty"])
    assert rewards["empty"] == u["empty"] < 0 == pytest.approx(rewards["good"], abs=1e-9)
    with LabelQueue(db) as queue:
        records = queue.store.records(scene=SCENE)
        assert {r.labeler for r in records} <= {"sim-0", "sim-1"}
        assert len(records) == 6
        assert all(r.observation is not None and r.observation.working_size == 32 for r in records)


def test_blocking_timeout_returns_the_fit_of_what_arrived(db, scene):
    good = reference_action(scene)
    backend = make_backend(
        "human", db=db, mode="blocking", references={SCENE: [good, EMPTY]}, timeout_s=0.3,
        **FAST,
    )  # fmt: skip
    scorer = SceneScorer(scene, SMALL, backend=backend)
    x = (good + EMPTY) / 2
    with pytest.warns(LabelTimeoutWarning, match="3 of 3 comparisons unanswered"):
        first = scorer.score(x).rewards  # (good, empty), (x, good), (x, empty) queued
    assert first.tolist() == [0.0]  # nobody answered: the prior's mean
    stats = backend.stats()
    assert stats["timeouts"] == 1 and stats["queued"] == 3 and stats["unanswered"] == 3
    # a late answer by a person at the queue: x better than the empty TF; the rest skipped
    with LabelQueue(db) as queue:
        answered = 0
        while (lease := queue.claim("dr-a")) is not None:
            side = {action_key(item.action): item.position for item in lease.items}
            if action_key(x) in side and action_key(EMPTY) in side:
                queue.answer(lease.pair_id, "dr-a", "left" if side[action_key(x)] == 0 else "right")
                answered += 1
            else:
                queue.answer(lease.pair_id, "dr-a", "skip")
        assert answered == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing new to ask: no wait, no warning
        again = scorer.score(x).rewards
    assert again[0] > 0.0  # the late answer counts in the next fit
    assert backend.stats()["timeouts"] == 1
    strict = BlockingHumanBackend(db, references=[good], timeout_s=0.2, on_timeout="raise", **FAST)
    with pytest.raises(LabelTimeout, match="1 of 1 comparisons unanswered"):
        SceneScorer(scene, SMALL, backend=strict).score(EMPTY * 0.5)
    strict.close()
    backend.close()


def test_blocking_references_fill_from_the_first_actions(db, scene):
    backend = BlockingHumanBackend(db, n_references=2, timeout_s=0.1, **FAST)
    scorer = SceneScorer(scene, SMALL, backend=backend)
    a, b, c = np.random.default_rng(0).uniform(-1, 1, (3, 8)).astype(np.float32)
    with pytest.warns(LabelTimeoutWarning):
        scorer.score(np.stack([a, b, c]))
    # a: no reference yet (reward: the prior's mean); b against a; c against a and b
    assert backend.stats()["unanchored"] == 1
    assert backend.stats()["queued"] == 3
    with pytest.warns(LabelTimeoutWarning):
        scorer.score(np.stack([c, a * 0.5]))  # only the new action: against a and b
    assert backend.stats()["queued"] == 5
    with LabelQueue(db) as queue:
        assert queue.counts()["waiting"] == 5
    backend.close()


def test_search_agent_with_blocking_humans(db, scene):
    from tfgym.search import CrossEntropySearch

    with serving(db) as url, labelers(url, n=3):
        backend = make_backend(
            "human", db=db, mode="blocking", references=[reference_action(scene)],
            timeout_s=30, **FAST,
        )  # fmt: skip
        scorer = SceneScorer(scene, SMALL, backend=backend)
        result = CrossEntropySearch(np.random.default_rng(0), population_size=4).run(
            scorer, budget=8, keep_all=True
        )
        stats = backend.stats()
        backend.close()
    assert result.n_evaluations == 8
    assert stats["timeouts"] == 0 and stats["queued"] >= 8
    assert stats["answers"] == stats["queued"]
    assert np.isfinite(result.rewards).all() and result.rewards.std() > 0


# -- asynchronous ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ensemble_checkpoint(tmp_path_factory):
    from reward_models.checkpoint import save_checkpoint
    from reward_models.config import model_config
    from reward_models.model import RewardEnsemble, RewardModel

    torch.manual_seed(0)
    members = [RewardModel(model_config("tiny-mask")) for _ in range(3)]
    return str(save_checkpoint(tmp_path_factory.mktemp("rm") / "ens.pt", RewardEnsemble(members)))


def _async_env(db, checkpoint, **options):
    kwargs = {
        "db": db, "mode": "async", "path": checkpoint, "query_every": 4, "pairs_per_query": 4,
        "candidates": 8, "retrain_every": 6, "finetune_epochs": 5, "lr": 1e-2, **FAST, **options,
    }  # fmt: skip
    return TransferFunctionEnv(
        scenes=SCENE, reward_backend="human", working_size=32, image_size=32,
        reward_kwargs=kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("selection", ["disagreement", "random"])
def test_async_answers_retrain_the_model_and_rewards_change(
    db, ensemble_checkpoint, selection, tmp_path
):
    env = _async_env(db, ensemble_checkpoint, selection=selection, checkpoint_dir=tmp_path / "rm")
    backend = env.backend.impl
    probe = np.array([0.0, -1, 0.6, -1, 0.6, 1, 0.0, 1], np.float32)
    env.reset(seed=0)
    before = env.step(probe)[1]
    env.reset(seed=0)
    assert env.step(probe)[1] == before  # no answers, no change
    rng = np.random.default_rng(0)
    step_s = []
    with serving(db) as url, labelers(url):
        for _ in range(16):
            env.reset()
            start = time.perf_counter()
            env.step(rng.uniform(-1, 1, 8).astype(np.float32))
            step_s.append(time.perf_counter() - start)
        assert backend.wait(retrains=1, timeout_s=60), backend.stats()
        for _ in range(4):  # steps go on while the model retrains
            env.reset()
            env.step(rng.uniform(-1, 1, 8).astype(np.float32))
    env.close()  # stops the threads: no retraining after this point
    stats = backend.stats()
    env.reset(seed=0)
    after = env.step(probe)[1]  # a closed backend still scores with its last model
    assert stats["queued"] >= 6 and stats["labels"] >= 6
    assert stats["retrains"] >= 1 and stats["version"] == stats["retrains"]
    assert stats["errors"] == 0, backend.errors
    assert after != pytest.approx(before, abs=1e-6)
    # each retrained model is saved, and is the model the env now uses
    from reward_models.backend import RewardModelBackend

    saved = RewardModelBackend(str(tmp_path / "rm" / f"human-rm-v{stats['version']}.pt"))
    assert saved.rewards(env.scene.observation, probe)[0] == pytest.approx(after)
    assert max(step_s) < 5.0  # never waits for a person
    assert not any(t.is_alive() for t in backend.threads)


def test_async_disagreement_picks_the_most_disputed_pairs(db, ensemble_checkpoint, scene):
    backend = make_backend("human", db=db, mode="async", path=ensemble_checkpoint, **FAST).impl
    acts = np.random.default_rng(1).uniform(-1, 1, (6, 8)).astype(np.float32)
    keys = [action_key(a) for a in acts]
    chosen = backend._pairs(scene, acts, keys)
    r = backend.model_backend.model.predict_all(scene.observation, acts)
    p = 1 / (1 + np.exp(r[:, None, :] - r[:, :, None]))  # p[k, i, j] = P(i better than j)
    variance = p.var(axis=0)
    ranked = sorted(
        ((i, j) for i in range(6) for j in range(i + 1, 6)), key=lambda ij: -variance[ij]
    )
    assert chosen == ranked[:4]
    backend.close()
    assert not any(t.is_alive() for t in backend.threads)


def test_async_env_passes_the_sb3_env_checker(db, ensemble_checkpoint):
    from stable_baselines3.common.env_checker import check_env

    env = _async_env(db, ensemble_checkpoint, query_every=2)
    check_env(env)
    backend = env.backend.impl
    assert backend.wait(queued=1, timeout_s=20), backend.stats()
    assert backend.stats()["steps"] >= 2
    env.close()
    assert not any(t.is_alive() for t in backend.threads)
    with LabelQueue(db) as queue:
        assert queue.counts()["waiting"] == backend.stats()["queued"]


def test_human_backend_errors(db, tmp_path, ensemble_checkpoint):
    assert BACKENDS["human"].entry_point == "reward_models.human_backend:HumanBackend"
    with pytest.raises(ValueError, match="unknown human backend mode 'live'"):
        make_backend("human", db=db, mode="live")
    with pytest.raises(ValueError, match="needs db="):
        make_backend("human")
    with pytest.raises(ValueError, match="unknown on_timeout"):
        make_backend("human", db=db, on_timeout="ignore")
    from reward_models.checkpoint import save_checkpoint
    from reward_models.config import model_config
    from reward_models.model import RewardModel

    single = save_checkpoint(tmp_path / "one.pt", RewardModel(model_config("tiny")))
    with pytest.raises(ValueError, match="needs an ensemble checkpoint"):
        make_backend("human", db=db, mode="async", path=single)
    with pytest.raises(ValueError, match="unknown selection"):
        make_backend("human", db=db, mode="async", path=single, selection="greedy")
    backend = make_backend("human", db=db, mode="async", path=single, selection="random")
    with pytest.raises(TypeError, match="one process"):
        pickle.dumps(backend)
    backend.close()
