"""Benchmark: the labeling server under 8 concurrent simulated labelers, SQLite vs PostgreSQL.

Measured in one run, for each database (a temporary SQLite file; a throwaway PostgreSQL 15
cluster in a temporary folder, started as the ``postgres`` user when run as root):

1. **HTTP** (the issue's goal): the real server (:func:`tfgym.labeling.server.serve`, uvicorn,
   in a subprocess on a free loopback port) over a queue of the paper's protocol -- 100
   actions of headsq rendered once at display quality, ``--answers`` distinct pairs -- and
   ``--labelers`` simulated labelers (:func:`tfgym.labeling.client.simulate_labelers`, one
   thread and one keep-alive connection each, oracle scores cached beforehand, no pause)
   answering ``--answers / --labelers`` pairs each at full speed, in ``--rounds`` interleaved
   rounds (SQLite, PostgreSQL, SQLite, ...: a change of machine load hits both alike; every
   server is up through all rounds). Reported, as the median over the rounds: answers per
   second sustained (acknowledged answers over the wall time of a round), p50/p99 latency of
   ``GET /api/next`` and ``POST /api/answer``; and errors and a check of the store afterwards:
   every acknowledged answer stored, no comparison answered twice. Goal: >= 200 answers/s and
   p99 <= 50 ms.
2. **claim** (the named alternative): ``--labelers`` threads in one process claiming and
   answering ``--claims`` tasks straight on the database, (a) with
   :class:`tfgym.preferences.queue.LabelQueue` (one atomic claim statement) and (b) with
   rl-teacher's two-step claim -- ``SELECT`` a waiting task, then ``UPDATE`` it, in two
   transactions, with no guard -- on a table of the same number of tasks. Reported: claims per
   second and double-served tasks (a task handed to more than one labeler): 0 for (a), the
   race of (b) otherwise.

The ratios: PostgreSQL against SQLite over HTTP, and the queue's claim rate against the naive
claim's (the price of never serving a pair twice).

Writes ``benchmarks/results/bench_label_server.json`` (machine and library versions included).
``--quick`` shrinks everything for a smoke test (SQLite only unless ``--backends`` says more).

Usage::

    python benchmarks/bench_label_server.py                  # the full measurement
    python benchmarks/bench_label_server.py --quick --out /tmp/label.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCENE = "headsq"
BACKENDS = ("sqlite", "postgresql")
SERVER = (
    "import sys; from tfgym.labeling.server import serve; "
    "serve(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]), lease_s=float(sys.argv[3]), "
    "log_level='warning')"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=RESULTS / "bench_label_server.json")
    p.add_argument("--backends", nargs="+", choices=BACKENDS, help="databases (default: both)")
    p.add_argument("--labelers", type=int, default=8, help="concurrent simulated labelers")
    p.add_argument("--answers", type=int, default=4000, help="answers per round and database")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians reported")
    p.add_argument("--claims", type=int, default=2000, help="tasks of the in-process claim race")
    p.add_argument("--actions", type=int, default=100, help="distinct actions (renderings)")
    p.add_argument("--display-size", type=int, default=64, help="display working size")
    p.add_argument("--lease-s", type=float, default=120.0, help="lease of the server's tasks")
    p.add_argument("--goal-rate", type=float, default=200.0, help="answers/s goal over HTTP")
    p.add_argument("--goal-p99-ms", type=float, default=50.0, help="p99 latency goal, ms")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    args = p.parse_args(argv)
    if args.quick:
        args.answers = min(args.answers, 10 * args.labelers)
        args.rounds = 1
        args.claims = min(args.claims, 200)
        args.actions = min(args.actions, 20)
        args.display_size = min(args.display_size, 16)
        args.backends = args.backends or ["sqlite"]
    args.backends = args.backends or list(BACKENDS)
    if args.answers % args.labelers:
        p.error(f"--answers {args.answers} must be a multiple of --labelers {args.labelers}")
    if args.answers > args.actions * (args.actions - 1) // 2:
        p.error(f"--answers {args.answers} exceeds the distinct pairs of {args.actions} actions")
    return args


# -- databases -------------------------------------------------------------------------------
@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh, empty database of ``kind``; yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        yield str(folder / "bench.sqlite")
        return
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from pg import PostgresCluster, missing_reason  # the tests' throwaway cluster
    finally:
        sys.path.pop(0)
    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    cluster = PostgresCluster.start()  # fsync on: PostgreSQL's real commit cost
    try:
        yield cluster.create_database("bench")
    finally:
        cluster.stop()


# -- the server ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(url: str, lease_s: float) -> Iterator[str]:
    """The real labeling server in a subprocess on a free loopback port; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, url, str(port), str(lease_s)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/api/counts", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- 1. HTTP ---------------------------------------------------------------------------------
def fill_queue(url: str, args: argparse.Namespace) -> Any:
    """The paper protocol's shape: ``args.actions`` actions, ``args.answers`` distinct pairs per
    round queued; returns their oracle scores, computed before any clock starts."""
    from tfgym.collect import sample_pairs
    from tfgym.labeling.client import OracleScores
    from tfgym.labeling.items import comparison_requests, render_items
    from tfgym.preferences.queue import LabelQueue

    rng = np.random.default_rng(args.seed)
    base = np.array([0.2, -1, 1, -1, 1, 1, 0.2, 1], dtype=np.float32)
    acts = np.clip(base + rng.normal(0, 0.3, size=(args.actions, 8)), -1, 1).astype(np.float32)
    items = render_items(SCENE, acts, working_size=args.display_size)
    with LabelQueue(url) as queue:
        for _ in range(args.rounds):
            pairs = sample_pairs(len(acts), args.answers, rng)
            queue.enqueue(comparison_requests(SCENE, items, pairs, source="bench"))
    scores = OracleScores()
    scores(SCENE, acts.tolist())
    return scores


def check_store(url: str, reports: list[Any]) -> dict[str, Any]:
    """Acknowledged answers stored, and no comparison answered twice."""
    from tfgym.preferences.queue import LabelQueue

    with LabelQueue(url) as queue:
        answers = queue.answers()
        counts = queue.counts()
    stored = {a.answer_id: a for a in answers}
    acked = [(r.labeler, ack) for report in reports for r in report.labelers for ack in r.acks]
    missing = sum(
        1
        for who, ack in acked
        if ack.answer_id not in stored or stored[ack.answer_id].labeler != who
    )
    per_comparison = Counter(a.comparison_id for a in answers)
    return {
        "answers": len(acked),
        "stored_answers": len(answers),
        "acknowledged_missing": missing,
        "comparisons_answered_twice": sum(n > 1 for n in per_comparison.values()),
        "counts": counts,
    }


def _median(rows: list[dict[str, Any]], *keys: str) -> float:
    values = []
    for row in rows:
        for key in keys:
            row = row[key]
        values.append(row)
    return float(statistics.median(values))


def run_http(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Every database's server up at once; ``args.rounds`` interleaved rounds of labeling."""
    from tfgym.labeling.client import simulate_labelers

    with contextlib.ExitStack() as stack:
        setups = {}
        for kind in args.backends:
            url = stack.enter_context(database(kind, folder / kind))
            start = time.perf_counter()
            scores = fill_queue(url, args)
            setup_s = time.perf_counter() - start
            setups[kind] = (url, stack.enter_context(server(url, args.lease_s)), scores, setup_s)
        reports: dict[str, list[Any]] = {kind: [] for kind in args.backends}
        for r in range(args.rounds):  # a change of machine load hits every database alike
            for kind, (_, base, scores, _) in setups.items():
                reports[kind].append(
                    simulate_labelers(
                        base,
                        labelers=args.labelers,
                        answers_per_labeler=args.answers // args.labelers,
                        scores=scores,
                        kinds=("pair",),
                        seed=args.seed + r,
                        idle_s=2.0,
                    )
                )
        out = {}
        for kind, (url, _, _, setup_s) in setups.items():
            rounds = [report.summary() for report in reports[kind]]
            row: dict[str, Any] = {
                "answers_per_s": _median(rounds, "answers_per_s"),
                "next_ms": {q: _median(rounds, "next_ms", q) for q in ("p50", "p99")},
                "answer_ms": {q: _median(rounds, "answer_ms", q) for q in ("p50", "p99")},
                "errors": dict(sum((Counter(x["errors"]) for x in rounds), Counter())),
            }
            row.update(check_store(url, reports[kind]))
            row["setup_s"] = setup_s
            row["goal_met"] = bool(
                row["answers_per_s"] >= args.goal_rate
                and max(row["next_ms"]["p99"], row["answer_ms"]["p99"]) <= args.goal_p99_ms
            )
            row["rounds"] = rounds
            out[kind] = row
        return out


# -- 2. claim race ---------------------------------------------------------------------------
def _race(n_threads: int, work: Any) -> tuple[float, list[list[int]]]:
    """Run ``work(thread_index, served_list)`` in threads; returns (seconds, served per thread)."""
    served: list[list[int]] = [[] for _ in range(n_threads)]
    barrier = threading.Barrier(n_threads + 1)

    def body(i: int) -> None:
        barrier.wait()
        work(i, served[i])

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start, served


def _race_row(seconds: float, served: list[list[int]]) -> dict[str, Any]:
    counts = Counter(task for tasks in served for task in tasks)
    claims = sum(len(tasks) for tasks in served)
    return {
        "claims": claims,
        "seconds": seconds,
        "claims_per_s": claims / seconds,
        "distinct_tasks": len(counts),
        "double_served": sum(n > 1 for n in counts.values()),
    }


def claim_ours(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """LabelQueue.claim + answer from threads, straight on the database."""
    from tfgym.labeling.items import comparison_requests, render_items
    from tfgym.preferences.queue import LabelQueue

    (item_a, item_b) = render_items(
        SCENE,
        np.array([[0.2, -1, 1, -1, 1, 1, 0.2, 1], [0, -1, 1, -1, 1, 1, 0, 1]]),
        working_size=8,
    )
    with LabelQueue(url, seed=args.seed) as queue:
        queue.enqueue(
            comparison_requests(SCENE, [item_a, item_b], [(0, 1)] * args.claims, source="race")
        )

        def work(i: int, served: list[int]) -> None:
            name = f"race-{i}"
            while (lease := queue.claim(name)) is not None:
                served.append(lease.pair_id)
                queue.answer(lease.pair_id, name, "left")

        return _race_row(*_race(args.labelers, work))


def claim_naive(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """rl-teacher's claim: SELECT a waiting task, then UPDATE it (two transactions, no guard).

    Same engine and durability as the queue: the read in a read transaction, the lease
    committed without waiting for the disk, the answer committed durably.
    """
    from sqlalchemy import text

    from tfgym.preferences.db import make_engine, transaction

    engine = make_engine(url)
    with transaction(engine) as c:
        c.execute(
            text(
                "CREATE TABLE naive_tasks (id INTEGER PRIMARY KEY, state VARCHAR(16) NOT NULL, "
                "labeler VARCHAR(64))"
            )
        )
        c.execute(text("CREATE INDEX naive_waiting ON naive_tasks (state, id)"))
        c.execute(
            text("INSERT INTO naive_tasks (id, state) VALUES (:id, 'waiting')"),
            [{"id": i + 1} for i in range(args.claims)],
        )
    pick = text("SELECT id FROM naive_tasks WHERE state = 'waiting' ORDER BY id LIMIT 1")
    lease = text("UPDATE naive_tasks SET state = 'leased', labeler = :who WHERE id = :id")
    done = text("UPDATE naive_tasks SET state = 'answered' WHERE id = :id")

    def work(i: int, served: list[int]) -> None:
        name = f"naive-{i}"
        while True:
            with transaction(engine, write=False) as c:
                task = c.execute(pick).scalar()
            if task is None:
                return
            with transaction(engine, durable=False) as c:
                c.execute(lease, {"who": name, "id": task})
            served.append(int(task))
            with transaction(engine) as c:
                c.execute(done, {"id": task})

    try:
        return _race_row(*_race(args.labelers, work))
    finally:
        engine.dispose()


def run_claims(kind: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    with database(kind, folder) as url:
        ours = claim_ours(url, args)
        naive = claim_naive(url, args)
    return {
        "queue": ours,
        "naive_two_step": naive,
        "rate_ratio": ours["claims_per_s"] / naive["claims_per_s"],
    }


# -- report ------------------------------------------------------------------------------------
def print_table(record: dict[str, Any]) -> None:
    a = record["args"]
    print(
        f"\nHTTP: {a['labelers']} labelers, {a['answers']} answers per round, median of "
        f"{a['rounds']} round(s)"
    )
    print(
        f"{'db':<11} {'answers/s':>9} {'next p50':>9} {'next p99':>9} {'ans p50':>8} "
        f"{'ans p99':>8} {'missing':>7} {'twice':>5}  goal"
    )
    for kind, row in record["http"].items():
        print(
            f"{kind:<11} {row['answers_per_s']:>9.1f} {row['next_ms']['p50']:>9.1f} "
            f"{row['next_ms']['p99']:>9.1f} {row['answer_ms']['p50']:>8.1f} "
            f"{row['answer_ms']['p99']:>8.1f} {row['acknowledged_missing']:>7} "
            f"{row['comparisons_answered_twice']:>5}  {'PASS' if row['goal_met'] else 'FAIL'}"
        )
    if "postgresql_vs_sqlite" in record:
        print(f"PostgreSQL / SQLite answers/s: {record['postgresql_vs_sqlite']:.2f}")
    print(f"\nclaim race: {record['args']['labelers']} threads, {record['args']['claims']} tasks")
    print(f"{'db':<11} {'claim':<15} {'claims/s':>9} {'double-served':>14}")
    for kind, rows in record["claims"].items():
        for name in ("queue", "naive_two_step"):
            row = rows[name]
            print(f"{kind:<11} {name:<15} {row['claims_per_s']:>9.1f} {row['double_served']:>14}")
        print(f"{kind:<11} {'ratio':<15} {rows['rate_ratio']:>9.2f}")


def main(args: argparse.Namespace) -> dict[str, Any]:
    record: dict[str, Any] = {
        "benchmark": "bench_label_server",
        "machine": machine_info(
            server_libraries={
                name: _version(name)
                for name in ("fastapi", "uvicorn", "sqlalchemy", "psycopg", "httpx")
            }
        ),
        "args": {k: _jsonable(v) for k, v in vars(args).items()},
        "goals": {"answers_per_s": args.goal_rate, "p99_ms": args.goal_p99_ms},
        "http": {},
        "claims": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-label-") as tmp:
        folder = Path(tmp)
        record["http"] = run_http(args, folder / "http")
        for kind in args.backends:
            record["claims"][kind] = run_claims(kind, args, folder / "claims" / kind)
    if {"sqlite", "postgresql"} <= set(record["http"]):
        record["postgresql_vs_sqlite"] = (
            record["http"]["postgresql"]["answers_per_s"]
            / record["http"]["sqlite"]["answers_per_s"]
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print_table(record)
    print(f"\nwrote {args.out}")
    return record


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        path = value.resolve()
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(value)
    return value


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main(parse_args())
