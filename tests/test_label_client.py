"""Tests of the label queue's items, the simulated labeler client and `tfgym prefs`/`label-sim`.

The client talks HTTP to the real labeling app served by uvicorn on a free loopback port (in a
thread of the test process: :func:`tfgym.labeling.server.running_server`), over a LabelQueue on
a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import time

import numpy as np
import pytest
from PIL import Image

from tfgym.display import render_display
from tfgym.labeling.client import (
    LabelClientError,
    OracleScores,
    SimReport,
    rank_order,
    simulate_labelers,
)
from tfgym.labeling.items import comparison_requests, encode_png, render_items
from tfgym.labeling.server import running_server
from tfgym.oracle import LABELER_PRESETS, SimulatedLabeler
from tfgym.preferences.queue import LabelQueue
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.transfer_function import TransferFunction

SCENE = "headsq"
SETTINGS = ScoringSettings(working_size=32, image_size=32)
DISPLAY = 16  # display working size of the test renderings (24 px images)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def actions() -> np.ndarray:
    """12 actions with distinct oracle scores: the reference-like TF, shifts, random ones."""
    rng = np.random.default_rng(3)
    base = np.array([0.2, -1, 1, -1, 1, 1, 0.2, 1], dtype=np.float32)
    acts = [base, *(np.clip(base + rng.normal(0, 0.15, 8), -1, 1) for _ in range(5))]
    acts += list(rng.uniform(-1, 1, size=(6, 8)))
    return np.asarray(acts, dtype=np.float32)


@pytest.fixture(scope="module")
def items(actions):
    return render_items(
        SCENE, actions, settings=SETTINGS, working_size=DISPLAY, keys=[str(i) for i in range(12)]
    )


@pytest.fixture(scope="module")
def scores(actions) -> np.ndarray:
    return SceneScorer(SCENE, SETTINGS).oracle_scores(actions)


# -- items -----------------------------------------------------------------------------------
def test_encode_png_is_lossless_and_deterministic(rng):
    image = rng.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)
    data = encode_png(image)
    assert data == encode_png(image.copy())  # same pixels, same content address
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), image)
    black = encode_png(np.zeros((96, 96, 3), np.uint8))
    assert len(black) < 96 * 96 * 3 / 50  # compressed, not raw
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\)"):
        encode_png(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((8, 8, 3), np.float32))


def test_render_items_are_the_display_renderings(actions, items):
    assert len(items) == 12 and [it.key for it in items] == [str(i) for i in range(12)]
    expected = render_display(SCENE, actions[:3], working_size=DISPLAY, settings=SETTINGS)
    for k, item in enumerate(items[:3]):
        assert list(item.views) == ["front", "side"]
        for v, view in enumerate(("front", "side")):
            png = item.views[view]
            decoded = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            assert decoded.shape == (24, 24, 3)
            assert np.array_equal(decoded, expected[k, v])
        assert item.action == tuple(float(x) for x in actions[k])
        tf = TransferFunction.from_dict(dict(item.tf))
        assert np.allclose(tf.action, actions[k], atol=1e-6)
        assert tf.opacity == SETTINGS.opacity and tf.ranges is not None
    assert items[0].views["front"] != items[6].views["front"]  # different TFs, different images


def test_render_items_options_and_errors(actions):
    (one,) = render_items(SCENE, actions[:1], settings=SETTINGS, views=("top",), working_size=8)
    assert list(one.views) == ["top"] and one.key is None
    with pytest.raises(ValueError, match="2 keys for 1 actions"):
        render_items(SCENE, actions[:1], working_size=8, keys=["a", "b"])
    with pytest.raises(ValueError, match="unknown view"):
        render_items(SCENE, actions[:1], working_size=8, views=("diagonal",))
    with pytest.raises(ValueError, match="no actions"):
        render_items(SCENE, np.zeros((0, 8)), working_size=8)
    with pytest.raises(ValueError, match=r"NaN|finite"):
        render_items(SCENE, np.full((1, 8), np.nan), working_size=8)


def test_comparison_requests_share_items_and_validate(items):
    requests = comparison_requests(
        SCENE, items, [(0, 1), (3, 2)], priority=2.5, overlap=2, source="test"
    )
    assert [[it.key for it in r.items] for r in requests] == [["0", "1"], ["3", "2"]]
    assert requests[1].items[0] is items[3]  # the same item: one rendering, many requests
    assert {(r.priority, r.overlap, r.source, r.scene) for r in requests} == {
        (2.5, 2, "test", SCENE)
    }
    (rank,) = comparison_requests(SCENE, items, np.array([[4, 5, 6, 7]]))
    assert len(rank.items) == 4
    for rows, match in [
        ([(0, 1, 2)], r"\(k, 2\) pairs or \(k, 4\)"),
        ([(0, 12)], "out of range"),
        ([(1, 1)], "repeats"),
        ([(0.0, 1.0)], "integer"),
        (np.zeros((0, 2), int), "shape"),
    ]:
        with pytest.raises(ValueError, match=match):
            comparison_requests(SCENE, items, rows)


# -- the simulated labeler's decisions --------------------------------------------------------
def test_rank_order_follows_bradley_terry():
    rng = np.random.default_rng(0)
    perfect = LABELER_PRESETS["perfect"]
    assert rank_order(np.array([0.1, 0.9, 0.5, 0.3]), perfect, rng) == (1, 2, 3, 0)
    # Gumbel noise of scale T orders two items with probability sigmoid(diff / T)
    lab = SimulatedLabeler(temperature=0.05, equal_band=0.0, mistake_rate=0.0)
    firsts = [rank_order(np.array([0.55, 0.5]), lab, rng)[0] == 0 for _ in range(4000)]
    assert abs(np.mean(firsts) - 1 / (1 + np.exp(-1.0))) < 0.03
    # a mistake swaps two neighbours of the sorted order
    clumsy = SimulatedLabeler(temperature=0.0, equal_band=0.0, mistake_rate=1.0)
    for _ in range(20):
        order = rank_order(np.array([0.9, 0.7, 0.5, 0.3]), clumsy, rng)
        diffs = [a - b for a, b in zip(order, (0, 1, 2, 3), strict=True)]
        assert sorted(diffs) == [-1, 0, 0, 1] and diffs.index(1) + 1 == diffs.index(-1)


def test_oracle_scores_are_the_scorers_and_cached(actions, scores):
    cached = OracleScores(SETTINGS)
    got = cached(SCENE, actions[:5].tolist())
    assert np.allclose(got, scores[:5]) and len(cached) == 5
    again = cached(SCENE, [actions[4].tolist(), actions[0].tolist(), actions[6].tolist()])
    assert np.allclose(again, scores[[4, 0, 6]]) and len(cached) == 6
    penta = cached(SCENE, [[0.2, -1, 1, -1, 1, 1, 0.5, 1.0, 0.2, 1]])  # 5 vertices: own scorer
    assert penta.shape == (1,) and 0 <= penta[0] <= 1


# -- end to end over HTTP ---------------------------------------------------------------------
def check_perfect_answers(queue: LabelQueue, scores: np.ndarray) -> None:
    """Every stored answer is what a perfect labeler says about the items' oracle scores."""
    answers = queue.answers()
    assert answers
    for a in answers:
        s = [scores[int(key)] for key in a.keys]
        if a.answer == "rank":
            assert [s[i] for i in a.order] == sorted(s, reverse=True)
        else:
            assert a.mu == (1.0 if s[0] > s[1] else 0.0 if s[0] < s[1] else 0.5)


def test_simulated_labelers_answer_everything_over_http(tmp_path, items, scores):
    pairs = [(i, j) for i in range(12) for j in range(i + 1, 12)][::2]  # 33 pairs
    ranks = [(0, 3, 6, 9), (1, 4, 7, 10), (2, 5, 8, 11)]
    with LabelQueue(tmp_path / "q.sqlite", seed=0) as queue:
        queue.enqueue(comparison_requests(SCENE, items, pairs, source="test"))
        queue.enqueue(comparison_requests(SCENE, items, ranks, source="test"))
        with running_server(queue) as url:
            report = simulate_labelers(
                url, labelers=4, preset="perfect", settings=SETTINGS, idle_s=0.3
            )
        assert isinstance(report, SimReport)
        assert report.answers == 36 and queue.counts()["waiting"] == 0
        assert {r.stopped for r in report.labelers} == {"empty"}
        assert not report.errors
        stored = {a.answer_id: a for a in queue.answers()}
        assert len(stored) == 36
        for r in report.labelers:
            assert r.labeler.startswith("sim-") and len(r.next_s) > len(r.acks)
            assert len(r.answer_s) == len(r.acks)
            for ack in r.acks:
                a = stored[ack.answer_id]
                assert (a.pair_id, a.labeler, a.comparison_id) == (
                    ack.pair_id,
                    r.labeler,
                    ack.comparison_id,
                )
                assert a.answer == ack.answer and a.lead_time_s is not None
        assert sum(a.answer == "rank" for a in stored.values()) == 3
        check_perfect_answers(queue, scores)
        # a non-skip pair answer and each ranking's six pairs are preference records
        assert len(queue.store) == 33 + 3 * 6 - sum(a.mu == 0.5 for a in stored.values())
        summary = report.summary()
        assert summary["answers"] == 36 and summary["next_ms"]["p99"] >= summary["next_ms"]["p50"]
        json.dumps(summary)


def test_answers_per_labeler_pace_and_kinds(tmp_path, items, scores):
    pairs = [(i, (i + 1) % 12) for i in range(12)]
    with LabelQueue(tmp_path / "q.sqlite", seed=0) as queue:
        queue.enqueue(comparison_requests(SCENE, items, pairs))
        queue.enqueue(comparison_requests(SCENE, items, [(0, 1, 2, 3)]))
        with running_server(queue) as url:
            report = simulate_labelers(
                url,
                labelers=2,
                answers_per_labeler=3,
                pace_s=0.05,
                kinds=("pair",),
                settings=SETTINGS,
            )
        assert [len(r.acks) for r in report.labelers] == [3, 3]
        assert {r.stopped for r in report.labelers} == {"answers"}
        answers = queue.answers()
        assert len(answers) == 6 and all(a.answer != "rank" for a in answers)
        assert all(a.lead_time_s >= 0.05 for a in answers)
        assert report.elapsed_s >= 3 * 0.05
        assert queue.counts()["waiting"] == 12 + 1 - 6


def test_token_is_sent_and_a_wrong_one_fails_fast(tmp_path, items):
    with LabelQueue(tmp_path / "q.sqlite") as queue:
        queue.enqueue(comparison_requests(SCENE, items, [(0, 1), (2, 3)]))
        with running_server(queue, token="s3cret-token-123") as url:
            with pytest.raises(LabelClientError, match="401"):
                simulate_labelers(url, labelers=1, settings=SETTINGS, token="wrong-token-456")
            report = simulate_labelers(
                url, labelers=1, settings=SETTINGS, token="s3cret-token-123", idle_s=0
            )
        assert report.answers == 2


def test_unreachable_server_is_retried_then_reported():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    report = simulate_labelers(url, labelers=2, retry_s=0.3, settings=SETTINGS)
    assert time.monotonic() - start < 5
    assert {r.stopped for r in report.labelers} == {"unreachable"}
    assert report.answers == 0 and report.errors.get("ConnectError", 0) >= 2 * 3


def test_simulate_labelers_validates_arguments():
    for kwargs, match in [
        ({"labelers": 0}, "labelers must be at least 1"),
        ({"answers_per_labeler": 0}, "answers_per_labeler"),
        ({"pace_s": -1.0}, "pace_s"),
        ({"kinds": ("pairs",)}, "kinds"),
        ({"preset": "sloppy"}, "unknown labeler preset"),
    ]:
        with pytest.raises(ValueError, match=match):
            simulate_labelers("http://127.0.0.1:9", **kwargs)


# -- the commands ------------------------------------------------------------------------------
def run_command(argv: list[str]) -> int:
    from tfgym.cli import prefs

    parser = argparse.ArgumentParser(prog="tfgym")
    prefs.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.command_spec.run(args))


def test_label_sim_and_prefs_export_commands(tmp_path, items, capsys):
    db = tmp_path / "q.sqlite"
    with LabelQueue(db, seed=0) as queue:
        queue.enqueue(comparison_requests(SCENE, items, [(i, i + 6) for i in range(6)]))
        with running_server(queue) as url:
            argv = ["label-sim", "--url", url, "--labelers", "2", "--preset", "perfect"]
            argv += ["--working-size", "32", "--image-size", "32", "--idle-s", "0.2"]
            assert run_command([*argv, "--json", str(tmp_path / "sim.json")]) == 0
    out = capsys.readouterr().out
    assert "6 answers in" in out and "sim-0" in out and "/api/next p50" in out
    figures = json.loads((tmp_path / "sim.json").read_text())
    assert figures["answers"] == 6 and figures["labelers"] == 2
    target = tmp_path / "out" / "export.jsonl"
    assert run_command(["prefs", "export", "--db", str(db), "--out", str(target)]) == 0
    assert f"exported 6 comparisons with 6 answers and the stats to {target}" in (
        capsys.readouterr().out
    )
    *lines, stats = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["format"] for line in lines] == ["tfgym.Comparison"] * 6
    assert stats["format"] == "tfgym.LabelStats" and stats["answered"] == 6
    assert set(stats["labelers"]) == {"sim-0", "sim-1"}
    exported = {a["answer_id"]: a for line in lines for a in line["answers"]}
    with LabelQueue(db) as queue:
        stored = queue.answers()
    assert len(exported) == len(stored) == 6
    for a in stored:
        e = exported[a.answer_id]
        assert (e["labeler"], e["answer"], e["pair_id"]) == (a.labeler, a.answer, a.pair_id)
        assert e["lead_time_s"] == pytest.approx(a.lead_time_s) and e["created"]


def test_label_sim_command_errors(tmp_path):
    from tfgym.cli.common import CliError

    with pytest.raises(CliError, match="--url must start with http"):
        run_command(["label-sim", "--url", "127.0.0.1:8000"])
    with pytest.raises(SystemExit):
        run_command(["label-sim", "--url", "http://x", "--preset", "sloppy"])
