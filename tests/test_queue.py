"""Tests of tfgym.preferences.queue: the leased label queue, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections import Counter
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from PIL import Image

from tests.test_preferences import make_obs
from tfgym.preferences import (
    PAIR_ANSWERS,
    ComparisonRequest,
    Item,
    LabelQueue,
    LeaseConflict,
    PreferenceStore,
    QueueError,
    UnknownPair,
)


def png(i: int) -> bytes:
    """A distinct 4x4 PNG per ``i``."""
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (i % 256, (i // 256) % 256, 7)).save(buf, format="PNG")
    return buf.getvalue()


def item(i: int, n: int = 8, **kw) -> Item:
    """Item ``i``: a distinct action (its first number is i / 1000), two views, a key."""
    action = (i / 1000, *(0.1 * k for k in range(1, n)))
    views = {"front": png(2 * i), "side": png(2 * i + 1)}
    return Item(action, views, tf={"opacity": i / 100}, key=f"k{i}", **kw)


def pair(i: int, j: int, scene: str = "phantom-00", **kw) -> ComparisonRequest:
    return ComparisonRequest(scene, (item(i), item(j)), **kw)


def index_of(action: tuple[float, ...]) -> int:
    return round(action[0] * 1000)


def count(queue: LabelQueue, table: str) -> int:
    with queue.engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one())


@pytest.fixture
def queue(db_url):
    with LabelQueue(db_url, seed=1) as q:
        yield q


# -- round trip ------------------------------------------------------------------------------
def test_enqueue_claim_answer_round_trip(queue, db_url):
    obs = make_obs("phantom-00")
    ids = queue.enqueue([pair(1, 2, observation=obs, source="collect"), pair(3, 4)])
    assert ids == [1, 2]
    assert queue.counts() == {"waiting": 2, "leased": 0, "answered": 0}
    before = datetime.now(timezone.utc)
    lease = queue.claim("dr-a")
    assert lease is not None and lease.comparison_id == 1 and lease.labeler == "dr-a"
    assert lease.scene == "phantom-00" and lease.kind == "pair"
    assert sorted(it.index for it in lease.items) == [0, 1]
    assert [it.position for it in lease.items] == [0, 1]
    assert 119 < (lease.expires - before).total_seconds() < 121
    for it in lease.items:
        assert index_of(it.action) == it.index + 1
        assert set(it.views) == {"front", "side"}
        assert queue.rendering(it.views["side"]) == png(2 * (it.index + 1) + 1)
    assert queue.counts() == {"waiting": 1, "leased": 1, "answered": 0}

    answer = queue.answer(lease.pair_id, "dr-a", "left", lead_time_s=3.5)
    left = lease.items[0].index
    assert answer.mu == (1.0 if left == 0 else 0.0) and answer.answer == "left"
    assert (answer.pair_id, answer.comparison_id, answer.labeler) == (lease.pair_id, 1, "dr-a")
    assert answer.lead_time_s == 3.5 and answer.order is None and answer.scene == "phantom-00"
    assert answer.keys == ("k1", "k2") and answer.created.tzinfo is not None
    assert queue.counts() == {"waiting": 1, "leased": 0, "answered": 1}

    with PreferenceStore(db_url) as store:  # durable, in the store's table, another connection
        (pref,) = store.records()
    assert pref.labeler == "dr-a" and pref.scene == "phantom-00" and pref.mu == answer.mu
    assert pref.action_a == item(1).action and pref.action_b == item(2).action
    assert pref.tf_a == {"opacity": 0.01} and pref.observation == obs
    assert pref.render_a == "sha256:" + hashlib.sha256(png(2)).hexdigest()  # item 1's front
    assert pref.render_b == "sha256:" + hashlib.sha256(png(4)).hexdigest()
    assert datetime.fromisoformat(pref.created) == answer.created
    assert queue.answers() == [answer]
    assert queue.store.records() == [pref]


def test_default_lead_time_is_lease_to_answer(queue):
    queue.enqueue([pair(1, 2)])
    lease = queue.claim("a")
    time.sleep(0.05)
    answer = queue.answer(lease.pair_id, "a", "equal")
    assert answer.mu == 0.5 and 0.04 < answer.lead_time_s < 5


def test_skip_is_recorded_without_a_preference(queue):
    queue.enqueue([pair(1, 2)])
    lease = queue.claim("a")
    answer = queue.answer(lease.pair_id, "a", "skip")
    assert answer.mu is None and answer.answer == "skip"
    assert len(queue.store) == 0 and queue.counts()["answered"] == 1
    assert queue.claim("a") is None  # a skipped comparison is not served to them again


def test_a_ranking_can_be_skipped(queue):
    queue.enqueue([ComparisonRequest("s", tuple(item(i) for i in range(4)))])
    lease = queue.claim("a", kind="rank")
    answer = queue.answer(lease.pair_id, "a", "skip")
    assert answer.mu is None and answer.answer == "skip" and answer.order is None
    assert len(queue.store) == 0 and queue.counts()["answered"] == 1
    with pytest.raises(LeaseConflict, match="already answered"):
        queue.answer(lease.pair_id, "a", "skip")


def test_renderings_are_stored_once(queue):
    shared = png(999)
    a = Item((0.0, 0.0), {"front": shared, "side": png(1)})
    b = Item((1.0, 1.0), {"front": shared})
    queue.enqueue([ComparisonRequest("s", (a, b)), ComparisonRequest("s", (b, a))])
    queue.enqueue([ComparisonRequest("s", (a, b), overlap=3)])
    assert count(queue, "renderings") == 2 and count(queue, "comparisons") == 3
    lease = queue.claim("x")
    sha = lease.items[0].views["front"]
    assert queue.rendering(sha) == shared and len(sha) == 64
    assert queue.rendering("0" * 64) is None
    for bad in ("../../etc/passwd", "A" * 64, "0" * 63, 7):
        with pytest.raises(ValueError, match="64 lowercase hex digits"):
            queue.rendering(bad)


def test_priority_order_then_oldest_first(queue):
    ids = queue.enqueue([pair(i, i + 1, priority=p) for i, p in enumerate([0, 5, 1, 5, -2])])
    served = []
    while (lease := queue.claim("a")) is not None:
        served.append(lease.comparison_id)
        queue.answer(lease.pair_id, "a", "equal")
    assert served == [ids[1], ids[3], ids[2], ids[0], ids[4]]


def test_overlap_k_distinct_labelers(queue):
    queue.enqueue([pair(1, 2, overlap=3)])
    leases = {name: queue.claim(name) for name in ("a", "b", "c")}
    assert all(lease is not None and lease.comparison_id == 1 for lease in leases.values())
    assert len({lease.pair_id for lease in leases.values()}) == 3
    assert queue.claim("d") is None  # k labelers get it, not k + 1
    assert queue.claim("a").pair_id == leases["a"].pair_id  # a held lease comes back
    queue.answer(leases["a"].pair_id, "a", "left")
    assert queue.claim("a") is None  # never the same labeler twice
    queue.answer(leases["b"].pair_id, "b", "right")
    queue.answer(leases["c"].pair_id, "c", "skip")
    assert queue.counts() == {"waiting": 0, "leased": 0, "answered": 3}
    assert [a.labeler for a in queue.answers([1])] == ["a", "b", "c"]


def test_queue_default_overlap(db_url):
    with LabelQueue(db_url, overlap=2) as queue:
        queue.enqueue([pair(1, 2), pair(3, 4, overlap=1)])
        assert queue.counts()["waiting"] == 3
        assert queue.claim("a").comparison_id == 1 and queue.claim("b").comparison_id == 1
        assert queue.claim("c").comparison_id == 2


def test_concurrent_claims_never_share_a_task(queue):
    """8 threads claim and answer 60 pairs: each task exactly once, by its claimer."""
    queue.enqueue([pair(i, i + 1) for i in range(60)])
    got: dict[str, list[tuple[int, int]]] = {}
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def label(name: str) -> None:
        mine = []
        try:
            start.wait()
            while (lease := queue.claim(name)) is not None:
                answer = queue.answer(lease.pair_id, name, PAIR_ANSWERS[lease.pair_id % 4])
                mine.append((lease.pair_id, answer.answer_id))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        got[name] = mine

    threads = [threading.Thread(target=label, args=(f"sim-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    pairs = [p for mine in got.values() for p, _ in mine]
    assert sorted(pairs) == list(range(1, 61))  # every task once, none twice
    answers = queue.answers()
    assert len(answers) == 60 and len({a.answer_id for a in answers}) == 60
    by_pair = {a.pair_id: a.labeler for a in answers}
    assert all(by_pair[p] == name for name, mine in got.items() for p, _ in mine)
    assert len(queue.store) == 45  # the 15 skips (pair_id % 4 == 3) write no preference
    assert queue.counts() == {"waiting": 0, "leased": 0, "answered": 60}


# -- refused answers -------------------------------------------------------------------------
def test_refused_answers(queue):
    queue.enqueue([pair(1, 2), pair(3, 4)])
    lease = queue.claim("a")
    with pytest.raises(LeaseConflict, match="not leased to 'b'"):
        queue.answer(lease.pair_id, "b", "left")
    queue.answer(lease.pair_id, "a", "left")
    with pytest.raises(LeaseConflict, match="already answered by you"):
        queue.answer(lease.pair_id, "a", "right")
    with pytest.raises(LeaseConflict, match="already answered by another labeler"):
        queue.answer(lease.pair_id, "b", "right")
    with pytest.raises(UnknownPair, match="no pair 99"):
        queue.answer(99, "a", "left")
    with pytest.raises(UnknownPair, match="no pair -1"):
        queue.answer(-1, "a", "left")
    with pytest.raises(LeaseConflict, match="not leased to 'a'"):
        queue.answer(2, "a", "left")  # waiting, never claimed
    assert issubclass(LeaseConflict, QueueError) and issubclass(UnknownPair, QueueError)
    assert [a.answer for a in queue.answers()] == ["left"] and len(queue.store) == 1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda q: q.claim("a b"), "labeler name"),
        (lambda q: q.claim(""), "labeler name"),
        (lambda q: q.claim("x" * 65), "labeler name"),
        (lambda q: q.claim("a", kind="triple"), "kind must be one of"),
        (lambda q: q.claim("a", lease_s=0), "lease_s must be a positive"),
        (lambda q: q.answer(1, "a", "better"), "answer must be one of"),
        (lambda q: q.answer("1", "a", "left"), "pair_id must be an int"),
        (lambda q: q.answer(True, "a", "left"), "pair_id must be an int"),
        (lambda q: q.answer(1, "a/b", "left"), "labeler name"),
        (lambda q: q.answer(1, "a", "left", lead_time_s=-1), "lead_time_s must be >= 0"),
        (lambda q: q.answer(1, "a", "left", lead_time_s=float("nan")), "finite number"),
        (lambda q: q.answer_rank(1, "a", [0, 1, 2]), "permutation of 0..3"),
        (lambda q: q.answer_rank(1, "a", [0, 1, 1, 2]), "permutation of 0..3"),
        (lambda q: q.answer_rank(1, "a", "0123"), "permutation of 0..3"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_malformed_input_is_a_value_error(call, match):
    with LabelQueue(":memory:") as queue:
        with pytest.raises(ValueError, match=match):
            call(queue)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"items": (item(1),)}, "2 Items"),
        ({"items": (item(1), item(2, n=6))}, "one length"),
        ({"scene": ""}, "scene must be"),
        ({"priority": float("inf")}, "priority must be a finite"),
        ({"overlap": 0}, "overlap must be"),
        ({"observation": make_obs(n_vertices=5)}, "observation must be"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_malformed_requests(kw, match):
    with pytest.raises(ValueError, match=match):
        ComparisonRequest(**{"scene": "s", "items": (item(1), item(2))} | kw)


def test_malformed_items():
    with pytest.raises(ValueError, match="not PNG bytes"):
        Item((0.0,), {"front": b"GIF89a"})
    with pytest.raises(ValueError, match="view name"):
        Item((0.0,), {"../x": png(1)})
    with pytest.raises(ValueError, match="non-empty mapping"):
        Item((0.0,), {})
    with pytest.raises(ValueError, match="finite"):
        Item((float("nan"),), {"front": png(1)})
    with pytest.raises(ValueError, match="tf must be JSON-ready"):
        Item((0.0,), {"front": png(1)}, tf={"opacity": object()})
    with pytest.raises(ValueError, match="key must be a string"):
        Item((0.0,), {"front": png(1)}, key=3)  # type: ignore[arg-type]


def test_expired_lease_is_served_again(queue):
    queue.enqueue([pair(1, 2)])
    lease = queue.claim("a", lease_s=0.05)
    time.sleep(0.1)
    assert queue.counts() == {"waiting": 1, "leased": 0, "answered": 0}
    with pytest.raises(LeaseConflict, match="lease of pair 1 to 'a' expired at"):
        queue.answer(lease.pair_id, "a", "left")
    again = queue.claim("b")
    assert again.pair_id == lease.pair_id  # the pair is served again
    with pytest.raises(LeaseConflict, match="not leased to 'a'"):
        queue.answer(lease.pair_id, "a", "left")
    assert queue.answer(again.pair_id, "b", "right").labeler == "b"
    assert len(queue.answers()) == 1


def test_swapped_sides_map_back(db_url):
    """Answers in display terms: 'left' means the item shown left, whichever it is."""
    with LabelQueue(db_url, seed=3) as queue:
        queue.enqueue([pair(2 * i, 2 * i + 1) for i in range(24)])
        shown_left = []
        for k in range(24):
            lease = queue.claim("a")
            word = ("left", "right")[k % 2]
            shown = lease.items[0 if word == "left" else 1]
            answer = queue.answer(lease.pair_id, "a", word)
            assert answer.mu == (1.0 if shown.index == 0 else 0.0)
            shown_left.append(lease.items[0].index)
        assert 0 < sum(shown_left) < 24  # both orders were shown
        for p in queue.store.records():  # the better action is the one the labeler saw
            first, second = index_of(p.action_a), index_of(p.action_b)
            assert second == first + 1 and p.mu in (0.0, 1.0)


def test_ranking_stores_six_preferences(queue):
    items = tuple(item(i) for i in range(4))
    queue.enqueue([ComparisonRequest("r", items), pair(8, 9)])
    assert queue.claim("a", kind="rank").kind == "rank"
    lease = queue.claim("a", kind="rank")  # the same lease again
    assert sorted(it.index for it in lease.items) == [0, 1, 2, 3]
    assert queue.claim("a").kind == "pair"  # a pair lease is another kind of task
    with pytest.raises(ValueError, match="is a rank task: answer it with an order"):
        queue.answer(lease.pair_id, "a", "left")
    answer = queue.answer_rank(lease.pair_id, "a", [2, 0, 3, 1], lead_time_s=9.0)
    best_to_worst = tuple(lease.items[p].index for p in (2, 0, 3, 1))
    assert answer.order == best_to_worst and answer.answer == "rank" and answer.mu is None
    prefs = queue.store.records(scene="r")
    assert len(prefs) == 6
    rank = {item_index: r for r, item_index in enumerate(best_to_worst)}
    for p in prefs:
        i, j = index_of(p.action_a), index_of(p.action_b)
        assert i < j and p.mu == (1.0 if rank[i] < rank[j] else 0.0)
    assert {(index_of(p.action_a), index_of(p.action_b)) for p in prefs} == {
        (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)
    }  # fmt: skip


def _answer_as(queue: LabelQueue, labeler: str, mu: float | None, lead: float) -> None:
    """Claim the next pair and answer so that the stored mu is ``mu`` (None: skip)."""
    lease = queue.claim(labeler)
    if mu is None:
        word = "skip"
    elif mu == 0.5:
        word = "equal"
    else:  # the better item is items[0] when mu is 1
        word = ("left", "right")[[it.index for it in lease.items].index(0 if mu == 1 else 1)]
    assert queue.answer(lease.pair_id, labeler, word, lead_time_s=lead).mu == mu


def test_stats_and_agreement(queue):
    queue.enqueue([pair(1, 2, overlap=3), pair(3, 4, overlap=3), pair(5, 6, overlap=2)])
    # comparison 1: a=1, b=1, c=0 -> 1 agreeing labeler pair of 3
    # comparison 2: a=0.5, b=0.5, c=skip -> 1 of 1
    # comparison 3: a=skip, b=0 -> left out (one non-skip answer)
    plan = {"a": [1.0, 0.5, None], "b": [1.0, 0.5, 0.0], "c": [0.0, None]}
    leads = {"a": [2.0, 4.0, 9.0], "b": [1.0, 1.0, 1.0], "c": [10.0, 20.0]}
    for name, mus in plan.items():
        for mu, lead in zip(mus, leads[name], strict=True):
            _answer_as(queue, name, mu, lead)
    assert queue.claim("d") is None
    stats = queue.stats()
    assert {k: stats[k] for k in ("waiting", "leased", "answered")} == {
        "waiting": 0,
        "leased": 0,
        "answered": 8,
    }
    assert stats["labelers"] == {
        "a": {"answers": 3, "skips": 1, "median_s": 4.0, "per_hour": 3600 * 3 / 15},
        "b": {"answers": 3, "skips": 0, "median_s": 1.0, "per_hour": 3600.0},
        "c": {"answers": 2, "skips": 1, "median_s": 15.0, "per_hour": 3600 * 2 / 30},
    }
    assert stats["agreement"] == {"pairs": 2, "rate": 2 / 4, "rankings": 0, "rank_rate": None}
    json.dumps(stats)  # JSON-ready (the API returns it)


def test_rank_agreement(queue):
    queue.enqueue([ComparisonRequest("r", tuple(item(i) for i in range(4)), overlap=2)])
    for name, best_to_worst in (("a", (0, 1, 2, 3)), ("b", (1, 0, 2, 3))):
        lease = queue.claim(name, kind="rank")
        position = {it.index: it.position for it in lease.items}
        queue.answer_rank(lease.pair_id, name, [position[i] for i in best_to_worst])
    agreement = queue.stats()["agreement"]
    assert agreement["rankings"] == 1 and agreement["rank_rate"] == 5 / 6
    assert agreement["pairs"] == 0 and agreement["rate"] is None


def test_answers_filters(queue):
    queue.enqueue([pair(1, 2, overlap=2), pair(3, 4)])
    for name in ("a", "b", "a"):
        lease = queue.claim(name)
        queue.answer(lease.pair_id, name, "left")
    everything = queue.answers()
    assert [a.comparison_id for a in everything] == [1, 1, 2]
    assert queue.answers([1]) == everything[:2]
    assert queue.answers([2]) == [everything[2]] and queue.answers([]) == []
    assert queue.answers(since_id=everything[1].answer_id) == [everything[2]]
    assert queue.answers([1], since_id=everything[0].answer_id) == [everything[1]]


def test_export_jsonl_has_every_answer(queue, tmp_path):
    queue.enqueue([pair(1, 2, overlap=2, source="collect"), pair(3, 4)])
    queue.enqueue([ComparisonRequest("r", tuple(item(i) for i in range(4)))])
    for name in ("a", "b"):
        lease = queue.claim(name)
        queue.answer(lease.pair_id, name, "right", lead_time_s=1.5)
    lease = queue.claim("a", kind="rank")
    queue.answer_rank(lease.pair_id, "a", [3, 2, 1, 0])
    out = tmp_path / "sub" / "queue.jsonl"
    assert queue.export_jsonl(out) == 3
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["format"] for d in lines] == ["tfgym.Comparison"] * 3 + ["tfgym.LabelStats"]
    first, second, rank, stats = lines
    assert first["id"] == 1 and first["source"] == "collect" and first["overlap"] == 2
    assert first["items"][0]["key"] == "k1" and set(first["items"][0]["views"]) == {"front", "side"}
    assert [a["labeler"] for a in first["answers"]] == ["a", "b"]
    assert all(a["lead_time_s"] == 1.5 and a["answer"] == "right" for a in first["answers"])
    assert datetime.fromisoformat(first["answers"][0]["created"]).tzinfo is not None
    assert second["answers"] == [] and rank["kind"] == "rank"
    assert rank["answers"][0]["order"] == list(queue.answers([3])[0].order)
    exported = {a["answer_id"] for d in lines[:3] for a in d["answers"]}
    assert exported == {a.answer_id for a in queue.answers()}
    assert stats["answered"] == 3 and set(stats["labelers"]) == {"a", "b"}


# -- databases -------------------------------------------------------------------------------
def test_answers_survive_reopening(db_url):
    with LabelQueue(db_url) as queue:
        queue.enqueue([pair(1, 2), pair(3, 4), pair(5, 6)])
        lease = queue.claim("a")
        answer = queue.answer(lease.pair_id, "a", "left")
        held = queue.claim("b")
    with LabelQueue(db_url) as queue:  # the tables exist: nothing is created again
        assert queue.answers() == [answer] and len(queue.store) == 1
        assert queue.claim("b") == held  # leases live in the database, not in a process
        assert queue.answer(held.pair_id, "b", "right").labeler == "b"
        assert queue.claim("a").comparison_id == 3


def test_leases_do_not_leave_connections_unsynchronised(tmp_path):
    """A lease commits with synchronous=NORMAL; the connection goes back to FULL."""
    with LabelQueue(tmp_path / "q.sqlite") as queue:
        queue.enqueue([pair(1, 2)])
        queue.claim("a")
        for _ in range(3):  # whichever pooled connection comes back
            with queue.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_concurrent_answers_and_conflicts_are_independent(queue):
    """Answers committed together (SQLite group commit): a refused one harms no other."""
    queue.enqueue([pair(i, i + 1) for i in range(8)])
    leases = [queue.claim(f"l{i}") for i in range(8)]
    start = threading.Barrier(16)
    outcome: dict[tuple[int, int], object] = {}

    def answer(k: int, attempt: int) -> None:
        start.wait()
        try:
            outcome[k, attempt] = queue.answer(leases[k].pair_id, f"l{k}", "equal").answer_id
        except LeaseConflict as e:
            outcome[k, attempt] = e

    threads = [threading.Thread(target=answer, args=(k, n)) for k in range(8) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(8):  # per lease: exactly one answer accepted, the other refused
        got = [outcome[k, 0], outcome[k, 1]]
        assert sum(isinstance(g, int) for g in got) == 1, got
        assert sum(isinstance(g, LeaseConflict) for g in got) == 1, got
    assert len(queue.answers()) == 8 and len(queue.store) == 8


def test_queue_shares_an_open_store(db_url):
    with PreferenceStore(db_url) as store:
        queue = LabelQueue(store)
        queue.enqueue([pair(1, 2)])
        lease = queue.claim("a")
        queue.answer(lease.pair_id, "a", "right")
        queue.close()  # the store stays open
        assert len(store) == 1 and queue.store is store


def test_newer_queue_schema_is_refused(db_url):
    LabelQueue(db_url).close()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE meta SET value = '99' WHERE key = 'queue_version'")
    engine.dispose()
    with pytest.raises(ValueError, match="label queue schema version 99; this tfgym reads 1"):
        LabelQueue(db_url)


def test_sqlite_claim_uses_the_index(tmp_path):
    with LabelQueue(tmp_path / "q.sqlite") as queue, queue.engine.connect() as conn:
        plan = conn.execute(
            sa.text("EXPLAIN QUERY PLAN " + str(queue._claim)),
            {"labeler": "a", "kind": "pair", "now": 0.0, "display": "[0, 1]", "expires": 1.0},
        ).all()
    details = " | ".join(str(r[-1]) for r in plan)
    assert "tasks_claim" in details and "tasks_one_per_labeler" in details, details
    assert "SCAN t " not in details + " "


def test_queue_opens_a_version_1_store(tmp_path):
    from tests.test_preferences import _v1_copy

    with LabelQueue(_v1_copy(tmp_path)) as queue:
        assert queue.store.schema_version == 2 and len(queue.store) == 5
        queue.enqueue([pair(1, 2)])
        lease = queue.claim("a")
        queue.answer(lease.pair_id, "a", "equal")
        assert len(queue.store) == 6


def test_answer_count_by_labeler_in_store(queue):
    queue.enqueue([pair(i, i + 1, overlap=2) for i in range(5)])
    for name in ("a", "b"):
        while (lease := queue.claim(name)) is not None:
            queue.answer(lease.pair_id, name, "left")
    assert Counter(p.labeler for p in queue.store.records()) == {"a": 5, "b": 5}
