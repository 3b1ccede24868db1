"""Smoke run of benchmarks/bench_label_server.py: it runs, prints its tables, writes its JSON."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_label_server_quick(tmp_path):
    path = tmp_path / "label.json"
    script = ROOT / "benchmarks" / "bench_label_server.py"
    out = subprocess.run(
        [sys.executable, str(script), "--quick", "--labelers", "4", "--out", str(path)],
        capture_output=True,
        encoding="utf-8",
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "answers/s" in out.stdout and "double-served" in out.stdout
    record = json.loads(path.read_text())
    assert record["benchmark"] == "bench_label_server"
    assert {"cpu", "cores", "load_average", "libraries"} <= set(record["machine"])
    assert record["args"]["quick"] is True and record["args"]["labelers"] == 4
    assert record["goals"] == {"answers_per_s": 200.0, "p99_ms": 50.0}
    http = record["http"]["sqlite"]
    assert http["answers"] == record["args"]["answers"] == 40
    assert http["stored_answers"] == 40 and http["acknowledged_missing"] == 0
    assert http["comparisons_answered_twice"] == 0 and not http["errors"]
    assert http["counts"] == {"waiting": 0, "leased": 0, "answered": 40}
    for endpoint in ("next_ms", "answer_ms"):
        p50, p99 = http[endpoint]["p50"], http[endpoint]["p99"]
        assert 0 < p50 <= p99 and math.isfinite(p99)
    assert http["answers_per_s"] > 0 and isinstance(http["goal_met"], bool)
    race = record["claims"]["sqlite"]
    ours, naive = race["queue"], race["naive_two_step"]
    assert ours["claims"] == ours["distinct_tasks"] == 200 and ours["double_served"] == 0
    assert naive["distinct_tasks"] == 200 and naive["claims"] >= 200
    # a task served to k labelers counts once as double-served and k - 1 times as extra claims
    assert naive["double_served"] <= naive["claims"] - naive["distinct_tasks"]
    assert race["rate_ratio"] == ours["claims_per_s"] / naive["claims_per_s"]
