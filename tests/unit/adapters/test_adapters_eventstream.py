"""The event stream, the worker and the near-line state against a real redis-server.

Every consumer failure is driven explicitly (a consumer that reads and never acknowledges, an
entry that cannot be decoded, a key of the wrong type): no test waits on a clock."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.adapters.eventstream import RedisEventStream, StreamKeys, promised_durability
from shoprec.adapters.redis import RedisStore
from shoprec.core.nearline import decode_entry, encode_entry
from shoprec.errors import BacklogFullError, DataError, SharedStateError
from shoprec.models.recommender import CoOccurrenceModel
from support.eventstreams import Pipeline, clean_pass, seeded_events


def test_a_clean_pass_builds_the_batch_models(redis_server) -> None:  # type: ignore[no-untyped-def]
    events = seeded_events(600)
    p = Pipeline(redis_server.url, "t:")
    assert p.sink.append(events) == 600
    worker = p.drain()
    assert worker.totals.applied == 600 and worker.totals.acked == 600
    state = p.state.dump()
    # the batch build's co-occurrence over each user's sequence: the same weights
    sequences: dict[str, list[str]] = {}
    for e in events:
        sequences.setdefault(e.user_id, []).append(e.item_id)
    batch = CoOccurrenceModel.fit(sequences.values())
    for a, row in state["co"].items():
        for b, w in row.items():
            assert w == pytest.approx(batch.weight(a, b), rel=1e-5), (a, b)
    assert sum(len(r) for r in state["co"].values()) == batch.matrix.nnz
    weights = {"view": 0.1, "click": 1.0, "cart": 2.0, "purchase": 4.0}
    for item, score in state["pop"].items():
        assert score == pytest.approx(sum(weights[e.type] for e in events if e.item_id == item))
    assert state["hist"]["u3"] == [e.item_id for e in reversed(events) if e.user_id == "u3"][:50]


def test_an_event_id_applies_once(redis_server) -> None:  # type: ignore[no-untyped-def]
    events = seeded_events(100)
    p = Pipeline(redis_server.url, "t:")
    assert p.state.apply(events).applied == 100
    before = p.state.dump()
    assert p.state.apply(events[:40]).applied == 0 and p.state.apply(events).applied == 0
    assert p.state.dump() == before
    assert p.state.stats() == {"applied": 100, "duplicates": 140}


def test_a_dead_consumers_entries_are_claimed_and_the_state_equals_one_pass(redis_server) -> None:  # type: ignore[no-untyped-def]
    events = seeded_events(400)
    p = Pipeline(redis_server.url, "t:")
    p.sink.append(events)
    p.worker()  # creates the group
    # a consumer takes 120 entries, applies the first 70 and dies before acknowledging any
    taken = p.streams.read_group(p.keys.events, "nearline", "dead", count=120, block_ms=None)
    assert len(taken) == 120
    p.state.apply([decode_entry(f) for _, f in taken[:70]])
    # its replacement claims them first (idle time 0: the test knows it is dead), then reads on
    worker = p.drain(consumer="w2", claim_idle_ms=0)
    assert worker.totals.claimed == 120 and worker.totals.applied == 400 - 70
    assert p.streams.groups(p.keys.events)[0]["pending"] == 0
    assert p.state.dump() == clean_pass(redis_server.url, events)


def test_a_live_consumers_entries_are_not_claimed_before_the_idle_time(redis_server) -> None:  # type: ignore[no-untyped-def]
    p = Pipeline(redis_server.url, "t:")
    p.sink.append(seeded_events(10))
    p.worker()
    p.streams.read_group(p.keys.events, "nearline", "busy", count=10, block_ms=None)
    worker = p.drain(consumer="w2", claim_idle_ms=3_600_000)
    assert worker.totals.claimed == 0 and worker.totals.applied == 0


def test_a_poison_event_goes_to_the_dead_letter_stream_after_n_deliveries(redis_server) -> None:  # type: ignore[no-untyped-def]
    p = Pipeline(redis_server.url, "t:", claim_idle_ms=0, max_deliveries=3)
    good = seeded_events(20)
    p.sink.append(good[:10])
    poison_id = p.streams.add(p.keys.events, {"e": "{not json"})
    p.sink.append(good[10:])
    worker = p.worker()
    reports = [worker.step(block=False) for _ in range(4)]
    assert [r.dead_lettered for r in reports] == [0, 0, 1, 0]  # deliveries 1 and 2 failed and stayed pending
    assert worker.totals.applied == 20 and worker.totals.failed == 3
    dead = p.streams.range(p.keys.dead_letters)
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields["entry_id"] == poison_id and fields["e"] == "{not json" and fields["deliveries"] == "3"
    assert "not JSON" in fields["error"] and fields["group"] == "nearline"
    assert p.store.call(lambda r: r.hget(p.keys.worker_stats, "dead_lettered")) == b"1"
    assert p.streams.groups(p.keys.events)[0]["pending"] == 0


def test_an_event_redis_refuses_to_apply_is_isolated_and_dead_lettered(redis_server) -> None:  # type: ignore[no-untyped-def]
    p = Pipeline(redis_server.url, "t:", claim_idle_ms=0, max_deliveries=2)
    events = seeded_events(30)
    p.store.call(lambda r: r.set("t:nl:hist:u7", "not a list"))  # WRONGTYPE for every event of u7
    p.sink.append(events)
    worker = p.drain()
    bad = [e for e in events if e.user_id == "u7"]
    assert bad and worker.totals.dead_lettered == len(bad)
    assert worker.totals.applied == len(events) - len(bad)
    dead = p.streams.range(p.keys.dead_letters)
    assert sorted(decode_entry(f).event_id or "" for _, f in dead) == sorted(e.event_id or "" for e in bad)
    assert all("WRONGTYPE" in f["error"] for _, f in dead)


def test_an_entry_whose_consumers_keep_dying_is_dead_lettered_unread(redis_server) -> None:  # type: ignore[no-untyped-def]
    p = Pipeline(redis_server.url, "t:", claim_idle_ms=0, max_deliveries=2)
    p.sink.append(seeded_events(3))
    p.worker()
    for name in ("a", "b"):  # two consumers take it and die, a third claims it: 3 deliveries > 2
        p.streams.read_group(p.keys.events, "nearline", name, count=3, block_ms=None) or p.streams.autoclaim(
            p.keys.events, "nearline", name, min_idle_ms=0, count=3
        )
    worker = p.drain(consumer="c")
    assert worker.totals.dead_lettered == 3 and worker.totals.applied == 0
    assert all("consumers died" in f["error"] for _, f in p.streams.range(p.keys.dead_letters))


def test_the_stream_is_trimmed_only_past_what_every_group_acknowledged(redis_server) -> None:  # type: ignore[no-untyped-def]
    p = Pipeline(redis_server.url, "t:")
    events = seeded_events(100)
    p.sink.append(events)
    p.streams.create_group(p.keys.events, "slow", "0")
    slow = p.streams.read_group(p.keys.events, "slow", "s", count=30, block_ms=None)
    p.streams.ack(p.keys.events, "slow", [eid for eid, _ in slow[:20]])  # acknowledged 20, 10 pending
    worker = p.drain()  # its first step trims
    assert worker.totals.trimmed == 20 and worker.maybe_trim(force=True) == 0
    assert p.streams.range(p.keys.events)[0][0] == slow[20][0]
    p.streams.ack(p.keys.events, "slow", [eid for eid, _ in slow[20:]])
    assert worker.maybe_trim(force=True) == 10  # "slow" has read 30 entries, acknowledged them all
    assert p.streams.length(p.keys.events) == 70


def test_the_backlog_bound_refuses_whole_batches(redis_server) -> None:  # type: ignore[no-untyped-def]
    p = Pipeline(redis_server.url, "t:", max_backlog=25)
    events = seeded_events(40)
    assert p.sink.append(events[:20]) == 20 and p.sink.append(events[20:25]) == 5
    with pytest.raises(BacklogFullError) as refused:
        p.sink.append(events[25:26])
    assert refused.value.status_code == 503 and refused.value.retry_after_s == 1.0
    assert p.streams.length(p.keys.events) == 25  # nothing of the refused batch went in
    worker = p.drain()
    worker.maybe_trim(force=True)
    assert p.streams.length(p.keys.events) == 0
    assert p.sink.append(events[25:]) == 15


def test_acknowledging_needs_redis_to_promise_durability(redis_server, durable_redis) -> None:  # type: ignore[no-untyped-def]
    events = seeded_events(2)
    weak = RedisEventStream(RedisStore(redis_server.url), StreamKeys("t:"), max_backlog=10, durability="always")
    with pytest.raises(SharedStateError, match="appendonly=no"):
        weak.append(events)
    strong = RedisEventStream(RedisStore(durable_redis.url), StreamKeys("t:"), max_backlog=10, durability="always")
    assert strong.append(events) == 2
    assert promised_durability("yes", "everysec") == "everysec" and promised_durability("yes", "no") == "unchecked"


def test_stream_entries_round_trip_and_bad_ones_say_why() -> None:
    e = seeded_events(1)[0]
    assert decode_entry(encode_entry(e)) == e
    for fields, why in [
        ({}, "no 'e' field"),
        ({"e": "[1]"}, "not a JSON object"),
        ({"e": '{"id":"x","user_id":"u","item_id":"i","type":"kick","timestamp":1}'}, "type"),
        ({"e": '{"id":"x","user_id":"u","item_id":"i","type":"view","timestamp":"soon"}'}, "timestamp"),
        ({"e": '{"id":"","user_id":"u","item_id":"i","type":"view","timestamp":1}'}, "'id'"),
    ]:
        with pytest.raises(DataError, match=why):
            decode_entry(fields)
    assert np.isfinite(e.timestamp)
