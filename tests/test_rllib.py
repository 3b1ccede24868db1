"""The Ray RLlib engine: env runners' envs, the RLModule, local training on loopback, backends.

These run where the ``ray`` extra is installed (``.ci/run`` makes a second virtual environment
with ``tfgym[ray,test]``, i.e. gymnasium 1.2.2, and runs them there); elsewhere they skip.
"""

from __future__ import annotations

import ipaddress
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("ray.rllib", reason="the ray extra is not installed (pip install tfgym[ray])")

import psutil
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.actor_critic import ActorCritic
from agents.config import PPOConfig
from agents.rllib import TfgymRLModule, make_env, rllib_config, train_rllib
from tfgym.cli import main
from tfgym.oracle import reference_action
from tfgym.preferences.queue import LabelQueue
from tfgym.scene import load_scene

TINY = {
    "engine": "rllib",
    "n_steps": 16,
    "batch_size": 32,
    "n_epochs": 1,
    "image_size": 32,
    "features_dim": 16,
    "net_arch": (8,),
    "display_size": 32,
    "checkpoint_every": 0,
}


def _listening() -> set[tuple[str, int]]:
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections("inet")
        if c.status == psutil.CONN_LISTEN
    }


def _ray_listening() -> set[tuple[str, int]]:
    """Listening sockets of Ray's processes (GCS, raylets, workers, agents)."""
    out = set()
    for c in psutil.net_connections("inet"):
        if c.status != psutil.CONN_LISTEN or c.pid is None:
            continue
        try:
            cmdline = " ".join(psutil.Process(c.pid).cmdline())
        except psutil.Error:
            continue
        if "/ray/" in cmdline or cmdline.startswith("ray::"):
            out.add((c.laddr.ip, c.laddr.port))
    return out


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


# -- the env runners' envs -----------------------------------------------------------------------
def test_make_env_gives_float_channel_last_images_and_transforms_rewards():
    config = {"scenes": "headsq", "image_size": 32, "reward_backend": "oracle"}
    plain = make_env(config)
    shifted = make_env({**config, "reward_shift": 0.5, "reward_scale": 0.25})
    assert plain.observation_space == gym.spaces.Box(0.0, 1.0, (64, 64, 1), np.float32)
    action = reference_action(load_scene("headsq"))
    rewards = []
    for env in (plain, shifted):
        obs, _ = env.reset(seed=0)
        assert obs.shape == (64, 64, 1) and obs.dtype == np.float32
        rewards.append(env.step(action)[1])
    assert rewards[1] == pytest.approx((rewards[0] - 0.5) / 0.25)


def test_make_env_gives_each_runner_its_own_scene_streams():
    """RLlib seeds runner k's sub-env i with seed + k + i: runners would share streams."""
    from ray.rllib.env.env_context import EnvContext

    config = {"scenes": "train", "image_size": 32, "working_size": 32}

    def stream(worker: int, seed: int) -> list[str]:
        env = make_env(EnvContext(config, worker_index=worker))
        scenes = [env.reset(seed=seed)[1]["scene"]]
        scenes += [env.reset()[1]["scene"] for _ in range(5)]
        return scenes

    # runner 1's second sub-env and runner 2's first get the same seed from RLlib
    assert stream(1, 2) != stream(2, 2)
    assert stream(1, 2) == stream(1, 2)  # reproducible


def test_make_env_shares_one_human_backend_per_process(tmp_path):
    """Each runner's envs share one label-queue backend; the reward comes from the answers."""
    from tests.test_human_backend import EMPTY, FAST, labelers, serving

    db = str(tmp_path / "labels.db")
    good = reference_action(load_scene("headsq", working_size=32))
    config = {
        "scenes": "headsq", "image_size": 32, "working_size": 32, "reward_backend": "human",
        "db": db, "mode": "blocking", "references": [good, EMPTY], "timeout_s": 30, **FAST,
    }  # fmt: skip
    with serving(db) as url, labelers(url):
        envs = [make_env(config), make_env(config)]
        other = make_env({**config, "timeout_s": 20})
        backends = [e.unwrapped.backend for e in (*envs, other)]
        assert backends[0] is backends[1] and backends[2] is not backends[0]
        rewards = []
        for env, action in zip(envs, (good * 0.98, EMPTY * 0.98), strict=True):
            env.reset(seed=0)
            rewards.append(env.step(action)[1])
    assert rewards[0] > rewards[1]  # the perfect labelers preferred the good TF
    with LabelQueue(db) as queue:
        assert len(queue.store.records(scene="headsq")) >= 6
    for backend in backends:
        backend.close()


def test_rllib_config_maps_the_ppo_settings():
    config = PPOConfig(
        engine="rllib", env_runners=3, n_envs=8, n_steps=16, batch_size=64, n_epochs=3,
        learning_rate=1e-3, clip_range=0.1, ent_coef=0.01, seed=5, image_size=64,
    )  # fmt: skip
    rl = rllib_config(config, {"working_size": 64})
    assert rl.num_env_runners == 3 and rl.num_envs_per_env_runner == 3  # ceil(8 / 3)
    assert rl.train_batch_size_per_learner == 8 * 16 and rl.minibatch_size == 64
    assert (rl.num_epochs, rl.lr, rl.clip_param, rl.entropy_coeff) == (3, 1e-3, 0.1, 0.01)
    assert rl.use_kl_loss is False and rl.vf_loss_coeff == 0.5 and rl.grad_clip == 0.5
    assert rl.seed == 5
    assert rl.env_config["reward_backend"] == "oracle" and rl.env_config["working_size"] == 64


def test_rl_module_is_the_actor_critic():
    spec = RLModuleSpec(
        module_class=TfgymRLModule,
        observation_space=gym.spaces.Box(0.0, 1.0, (32, 32, 1), np.float32),
        action_space=gym.spaces.Box(-1.0, 1.0, (8,), np.float32),
        model_config={"features_dim": 16, "net_arch": [8], "vf_share_layers": True},
    )
    module = spec.build()
    assert isinstance(module.net, ActorCritic) and module.net.hparams["features_dim"] == 16
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (4, 1, 32, 32), dtype=np.uint8)
    obs = torch.as_tensor(np.moveaxis(raw, 1, -1) / 255.0, dtype=torch.float32)
    out = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    assert out.shape == (4, 16)
    np.testing.assert_allclose(out[:, 8:].numpy(), -1.0)  # the initial log std
    np.testing.assert_allclose(
        np.clip(out[:, :8].numpy(), -1, 1), module.net.predict(raw)[0], atol=1e-6
    )
    assert module.compute_values({Columns.OBS: obs}).shape == (4,)


# -- training ------------------------------------------------------------------------------------
def test_train_rllib_locally_listens_on_loopback_only(tmp_path):
    before = _listening()
    seen: list[set[tuple[str, int]]] = []
    config = PPOConfig(
        **TINY, env_runners=1, n_envs=2, total_timesteps=64, eval_scenes="phantom-32",
        eval_every=1, image_scenes=("phantom-32",), image_every=1,
    )  # fmt: skip
    run = train_rllib(
        config, tmp_path / "run", progress=False, on_iteration=lambda row: seen.append(_listening())
    )
    opened = set().union(*seen) - before
    assert opened, "Ray listened nowhere?"
    assert all(_is_loopback(ip) for ip, _ in opened), sorted(opened)
    assert [r["timesteps"] for r in run.monitor_rows] == [32.0, 64.0]
    assert all(r["episodes"] == 32 and 0 <= r["oracle_mean"] <= 1 for r in run.monitor_rows)
    assert all(r["reward_mean"] == pytest.approx(r["oracle_mean"]) for r in run.monitor_rows)
    folder = tmp_path / "run"
    saved = ActorCritic.load(folder / "policy.pt")
    obs = np.zeros((1, 1, 64, 64), np.uint8)
    np.testing.assert_array_equal(saved.predict(obs)[0], run.policy.predict(obs)[0])
    assert json.loads((folder / "config.json").read_text())["engine"] == "rllib"
    assert (folder / "rllib_checkpoint").is_dir()
    assert (folder / "trace.csv").read_text().count("\n") == 3
    tb = EventAccumulator(str(folder / "tb"), size_guidance={"images": 0})
    tb.Reload()
    assert {"rollout/reward_mean", "eval/oracle_score_mean", "perf/env_steps_per_s"} <= set(
        tb.Tags()["scalars"]
    )
    assert "images/phantom-32" in tb.Tags()["images"]


def test_train_rllib_loads_the_reward_model_in_every_runner(tmp_path):
    from reward_models.checkpoint import save_checkpoint
    from reward_models.config import model_config
    from reward_models.model import RewardEnsemble, RewardModel

    torch.manual_seed(0)
    path = save_checkpoint(
        tmp_path / "rm.pt", RewardEnsemble([RewardModel(model_config("tiny-mask"))])
    )
    config = PPOConfig(
        **TINY, env_runners=2, n_envs=2, total_timesteps=32, eval_every=0,
        backend="reward_model", reward_model_path=str(path), image_every=0,
    )  # fmt: skip
    run = train_rllib(config, None, progress=False)
    row = run.monitor_rows[0]
    assert row["episodes"] == 32 and np.isfinite(row["reward_mean"])
    assert row["reward_mean"] != pytest.approx(row["oracle_mean"])  # the RM's reward


@pytest.mark.slow
def test_train_rllib_against_people_through_the_label_queue(tmp_path):
    """The human backend in an env runner (another process): its envs queue comparisons in
    the label database, simulated people answer over HTTP, the rewards come from them."""
    from tests.test_human_backend import EMPTY, FAST, labelers, serving

    db = str(tmp_path / "labels.db")
    good = reference_action(load_scene("headsq", working_size=32))
    config = PPOConfig(
        **{**TINY, "n_steps": 4}, env_runners=1, n_envs=2, total_timesteps=8, eval_every=0,
        image_every=0, scenes="headsq", backend="human", label_db=db, human_mode="blocking",
    )  # fmt: skip
    options = {"working_size": 32, "references": [good, EMPTY], "timeout_s": 60, **FAST}
    with serving(db) as url, labelers(url):
        run = train_rllib(config, None, env_options=options, progress=False)
    row = run.monitor_rows[0]
    assert row["episodes"] == 8 and np.isfinite(row["reward_mean"])
    with LabelQueue(db) as queue:
        records = queue.store.records(scene="headsq")
        counts = queue.counts()
    # the references against each other, then each action against the references; every
    # step waited for its answers
    assert len(records) >= 1 + 8 * 2
    assert {r.labeler for r in records} <= {"sim-0", "sim-1"}
    assert counts["waiting"] == counts["leased"] == 0 and counts["answered"] == len(records)


@pytest.fixture
def ray_cluster(tmp_path):
    """A separate Ray "cluster" (one head node on 127.0.0.1, started by ``ray start``)."""
    import os
    import shutil
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable))
    # a head that no other machine may join: Ray's servers stay on loopback (agents.rllib)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    start = [ray_cli, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
             "--num-cpus=3", "--include-dashboard=false", "--disable-usage-stats"]  # fmt: skip
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)


@pytest.mark.slow
def test_train_agent_joins_an_existing_cluster_by_ray_address(ray_cluster, tmp_path):
    """``tfgym train-agent --engine rllib`` with ``$RAY_ADDRESS``: it joins the cluster (with
    its token: Ray never sends one to an explicit address unless told), trains, disconnects;
    the cluster runs on, on loopback only. Without the token mode: a clear error."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "tfgym.cli", "train-agent", "--engine", "rllib", "--out", str(out),
        "--env-runners", "2", "--n-envs", "2", "--n-steps", "16", "--batch-size", "32",
        "--n-epochs", "1", "--image-size", "32", "--features-dim", "16", "--steps", "32",
        "--eval-every", "0", "--image-every", "0", "--checkpoint-every", "0", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "RAY_ADDRESS": ray_cluster, "RAY_AUTH_MODE": "token"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "policy.pt").is_file() and (out / "trace.csv").read_text().count("\n") == 2
    port = int(ray_cluster.rsplit(":", 1)[1])
    assert port in {p for _, p in _listening()}  # the cluster's GCS still listens
    cluster = _ray_listening()
    assert cluster and all(_is_loopback(ip) for ip, _ in cluster), sorted(cluster)
    env.pop("RAY_AUTH_MODE")
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert "RAY_AUTH_MODE=token" in refused.stderr


@pytest.mark.slow
def test_rllib_ppo_two_runners_learns_and_is_evaluated(tmp_path, capsys):
    """RLlib PPO, 2 env runners x 2 envs, 12 iterations of 512 actions: the held-out oracle
    score of the deterministic policy rises, and tfgym evaluate tables it."""
    config = PPOConfig(
        engine="rllib", env_runners=2, n_envs=4, n_steps=128, batch_size=256, n_epochs=4,
        total_timesteps=12 * 512, image_size=64, eval_scenes="phantom-32,phantom-33,phantom-34",
        eval_every=11, image_every=0, checkpoint_every=0,
    )  # fmt: skip
    run = train_rllib(config, tmp_path / "run", progress=False)
    curve = [r["eval_oracle_mean"] for r in run.monitor_rows if "eval_oracle_mean" in r]
    assert len(curve) == 2 and curve[1] > curve[0] + 0.2, curve
    rewards = [r["reward_mean"] for r in run.monitor_rows]
    assert np.mean(rewards[-3:]) > np.mean(rewards[:3]) + 0.05, rewards
    code = main(["evaluate", str(tmp_path / "run"), "--best-budget", "64",
                 "--constant-budget", "32", "--no-progress"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "| ppo-rllib |" in out
    evaluation = json.loads((tmp_path / "run" / "eval" / "evaluation.json").read_text())
    assert evaluation["agents"] == ["ppo-rllib"]


def test_bench_rllib_smoke(tmp_path):
    """The benchmark runs (tiny budgets, sampling only) and writes its table as JSON."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    path = tmp_path / "rllib.json"
    args = ["--scenes", "headsq", "--n-envs", "2", "--n-steps", "16", "--image-size", "32",
            "--steps", "40", "--rounds", "2", "--no-training", "--out", str(path)]  # fmt: skip
    out = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_rllib.py"), *args],
        capture_output=True, encoding="utf-8", timeout=300, cwd=root, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads(path.read_text())
    rows = {row["name"]: row for row in record["sampling"]}
    assert list(rows) == ["SB3 SubprocVecEnv x2", "SB3 DummyVecEnv x2", "RLlib 1 runner x2",
                          "RLlib 2 runners x1"]  # fmt: skip
    assert all(row["steps_per_second"] > 0 for row in rows.values())
    assert rows["RLlib 2 runners x1"]["baseline"] == "SB3 SubprocVecEnv x2"
    assert "training" not in record
