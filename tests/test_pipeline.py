"""The RLHF pipeline end to end at tiny budgets: every artefact, resume, errors, the CLI."""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.config import RLHFConfig
from agents.pipeline import RunState, run_rlhf
from tfgym.cli import main

TINY = RLHFConfig(
    train_scenes="phantom-00,phantom-01",
    eval_scenes="phantom-32",
    expert_budget=24,
    experts_per_scene=2,
    constant_budget=8,
    sft_epochs=3,
    samples_per_scene=6,
    pairs=24,
    rm_epochs=2,
    rm_ensemble=2,
    ppo_steps=64,
    n_envs=2,
    best_budget=16,
    image_size=32,
    display_size=32,
    rounds=2,
)

ARTEFACTS = [
    "config.json",
    "state.json",
    "experts.npz",
    "baselines.json",
    "best_known.json",
    "sft/policy.zip",
    "sft/bc_loss.png",
    "samples.npz",
    "prefs.sqlite",
    "rm.pt",
    "rm.scale.json",
    "ppo/model.zip",
    "ppo/trace.csv",
    "ppo/actions.npz",
    "rm-2.pt",
    "ppo-2/model.zip",
    "eval/table.md",
    "eval/evaluation.json",
    "eval/renderings.png",
    "hacking.md",
    "hacking.png",
]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rlhf")
    logs: list[str] = []
    run_rlhf(TINY, folder, progress=False, log=logs.append)
    return folder, logs


def test_pipeline_writes_every_artefact(run_folder):
    folder, logs = run_folder
    for name in ARTEFACTS:
        assert (folder / name).is_file(), name
    state = json.loads((folder / "state.json").read_text())
    phases = list(state["done"])
    assert phases == [
        "experts", "baselines", "sft", "samples", "prefs", "rm", "ppo", "round-2",
        "evaluate", "report",
    ]  # fmt: skip
    assert all(state["done"][p]["seconds"] >= 0 for p in phases)
    assert state["done"]["sft"]["bc_loss_last"] < state["done"]["sft"]["bc_loss_first"]
    assert state["done"]["round-2"]["pairs_added"] > 0
    with np.load(folder / "samples.npz") as f:
        assert set(f["kinds"].tolist()) == {"policy", "shift", "random"}
        assert len(f["actions"]) == 2 * TINY.samples_per_scene
    evaluation = json.loads((folder / "eval" / "evaluation.json").read_text())
    assert {"rlhf", "sft", "constant", "random", "best"} <= set(evaluation["scores"])
    table = (folder / "eval" / "table.md").read_text()
    assert "rlhf" in table
    assert "headsq" in table
    assert any("[rlhf] report: finished" in line for line in logs)


def test_pipeline_logs_tensorboard(run_folder):
    folder, _ = run_folder
    runs = {p.parent for p in folder.joinpath("tb").rglob("events.out.tfevents.*")}
    assert any("sft" in str(r) for r in runs)
    assert any("rm" in str(r) for r in runs)
    ppo = next((folder / "ppo" / "tb").iterdir())
    events = EventAccumulator(str(ppo))
    events.Reload()
    assert {"rollout/reward_mean", "rollout/oracle_score_mean", "kl/mean"} <= set(
        events.Tags()["scalars"]
    )


def test_resume_skips_finished_phases(run_folder):
    folder, _ = run_folder
    stamp = (folder / "rm.pt").stat().st_mtime_ns
    logs: list[str] = []
    run_rlhf(TINY, folder, progress=False, log=logs.append)
    assert all("done already, skipped" in line for line in logs)
    assert len(logs) == 10
    assert (folder / "rm.pt").stat().st_mtime_ns == stamp


def test_resume_after_interruption_redoes_only_the_unfinished_phase(run_folder, tmp_path):
    import shutil

    folder, _ = run_folder
    copy = tmp_path / "run"
    shutil.copytree(folder, copy)
    state = RunState.open(copy, TINY)
    for phase in ("evaluate", "report"):  # as if killed during the evaluation
        state.done.pop(phase)
    state.save()
    logs: list[str] = []
    run_rlhf(TINY, copy, progress=False, log=logs.append)
    ran = [line for line in logs if line.endswith("...")]
    assert ran == ["[rlhf] evaluate ...", "[rlhf] report ..."]


def test_another_config_in_the_same_folder_is_refused(run_folder):
    folder, _ = run_folder
    with pytest.raises(ValueError, match=r"another config \(differs in \['pairs'\]\)"):
        run_rlhf(
            RLHFConfig(**{**json.loads((folder / "config.json").read_text()), "pairs": 99}),
            folder,
            progress=False,
        )


def test_config_errors():
    with pytest.raises(ValueError, match="labeler"):
        RLHFConfig(labeler="crowd")
    with pytest.raises(ValueError, match="pairs must be at least 1"):
        RLHFConfig(pairs=0)
    assert RLHFConfig.short().ppo_steps < RLHFConfig().ppo_steps


def test_people_label_through_the_queue_and_a_rerun_queues_nothing_again(tmp_path):
    """labeler='human': pairs go to the label queue; simulated people answer over HTTP."""
    from agents.human_labels import label_with_people
    from tfgym.labeling.client import simulate_labelers
    from tfgym.labeling.server import running_server
    from tfgym.preferences import LabelQueue, PreferenceStore
    from tfgym.scoring import ScoringSettings

    db = tmp_path / "labels.sqlite"
    config = dataclasses.replace(
        TINY, labeler="human", label_db=str(db), rounds=1, label_poll_s=0.1, pairs=12
    )
    settings = ScoringSettings(image_size=config.image_size)
    stop = threading.Event()
    with LabelQueue(db) as queue, running_server(queue) as url:
        people = threading.Thread(
            target=simulate_labelers,
            args=(url,),
            kwargs={"labelers": 2, "stop_when_empty": False, "stop": stop, "settings": settings,
                    "preset": "perfect", "name_prefix": "dr"},
        )  # fmt: skip
        people.start()
        try:
            run = run_rlhf(config, tmp_path / "run", progress=False, log=lambda *_: None)
        finally:
            stop.set()
            people.join(timeout=30)
        comparisons = queue.counts()["answered"]
    assert run.finished("prefs") and run.finished("evaluate")
    assert json.loads((run.folder / "queued-prefs.json").read_text())
    with PreferenceStore(run.folder / "prefs.sqlite") as store:
        records = store.records()
    assert 0 < len(records) <= comparisons == 12
    assert {r.labeler for r in records} <= {"dr-0", "dr-1"}
    assert all(r.observation is not None for r in records)
    # a rerun of the phase (as after an interruption) queues nothing again and waits for nothing
    with np.load(run.folder / "samples.npz") as f:
        groups = {s: f["actions"][f["scenes"] == s] for s in dict.fromkeys(f["scenes"].tolist())}
    again = label_with_people(
        run.folder, config, settings, groups, None, 12, np.random.default_rng(0),
        phase="prefs", progress=False, log=lambda *_: None,
    )  # fmt: skip
    assert len(again) == len(records)
    with LabelQueue(db) as queue:
        assert queue.counts() == {"waiting": 0, "leased": 0, "answered": 12}


def test_evaluate_command_prints_the_table(run_folder, capsys):
    folder, _ = run_folder
    assert main(["evaluate", str(folder), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| rlhf |" in out
    assert "run folder" in out
    assert main(["evaluate", str(folder / "nope")]) == 2
    assert "neither an RLHF run folder" in capsys.readouterr().err


def test_short_option_keeps_explicit_values():
    from tfgym.cli import build_parser
    from tfgym.cli.agents import _rlhf_config

    args = build_parser().parse_args(["rlhf", "--short", "--seed", "3", "--pairs", "500"])
    config = _rlhf_config(args)
    assert config == RLHFConfig.short(seed=3, pairs=500)
    args = build_parser().parse_args(["rlhf", "--seed", "3"])
    assert _rlhf_config(args) == RLHFConfig(seed=3)


def test_train_agent_with_the_human_backend_is_a_clear_error(tmp_path, capsys):
    status = main(
        ["train-agent", "--backend", "human", "--out", str(tmp_path / "h"), "--no-progress"]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "tfgym train-agent: error:" in err
    assert "human" in err
