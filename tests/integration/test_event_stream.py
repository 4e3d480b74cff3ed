"""The event stream end to end: real servers on loopback, a real (durable) redis-server, and
``shoprec worker`` in processes of their own, killed with SIGKILL.

Nothing here depends on timing: failures are driven explicitly (a kill, a Redis restart, a
backlog filled with no worker running) and every wait polls for a state with a generous
deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprec.http.app import create_app
from shoprec.types import Event
from support.apikeyhelp import unsigned_settings
from support.eventstreams import Pipeline, as_json, clean_pass, seeded_events
from support.live import FULL_QUALITY, LiveServer, wait_ready
from support.tinyshop import tiny_products

PREFIX = "it:"
ITEMS = [p.id for p in tiny_products()]


def shop_events(n: int, seed: int = 0) -> list[Event]:
    """Seeded events over the tiny shop's products."""
    return [
        Event(e.user_id, ITEMS[int(e.item_id[1:]) % len(ITEMS)], e.type, e.timestamp, event_id=e.event_id)
        for e in seeded_events(n, items=len(ITEMS), seed=seed)
    ]


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling a state, with a deadline


class WorkerProcess:
    """``shoprec worker`` in a process of its own, configured by SHOPREC_* variables."""

    def __init__(self, redis_url: str, consumer: str, **settings: Any) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPREC_")}
        env |= {"SHOPREC_REDIS_URL": redis_url, "SHOPREC_REDIS_PREFIX": PREFIX, "SHOPREC_LOG_LEVEL": "warning"}
        env |= {f"SHOPREC_{k.upper()}": str(v) for k, v in settings.items()}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shoprec.cli", "worker", "--consumer", consumer],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers() -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(redis_url: str, consumer: str, **settings: Any) -> WorkerProcess:
        started.append(WorkerProcess(redis_url, consumer, **settings))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


def stream_settings(
    tmp_path: Path, artifacts: Path, redis_url: str, roles: tuple[Any, ...] = ("search", "events"), **overrides: Any
) -> tuple[Any, dict[str, str]]:
    return unsigned_settings(
        tmp_path,
        roles,
        artifacts=artifacts,
        events_backend="redis",
        redis_url=redis_url,
        redis_prefix=PREFIX,
        **{**FULL_QUALITY, **overrides},
    )


def stream_app(
    tmp_path: Path, artifacts: Path, redis_url: str, roles: tuple[Any, ...] = ("search", "events"), **overrides: Any
) -> tuple[Any, dict[str, str]]:
    settings, headers = stream_settings(tmp_path, artifacts, redis_url, roles, **overrides)
    return create_app(settings), headers


def post_until_accepted(api: httpx.Client, events: list[Event], timeout_s: float = 120.0) -> int:
    """POST one batch, again (same ids) while the answer is a 503 or the connection fails."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            r = api.post("/v1/events", json={"events": [as_json(e) for e in events]})
            if r.status_code == 202:
                return int(r.json()["accepted"])
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"]
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the batch was never accepted")
        time.sleep(0.05)  # a client honouring Retry-After, shortened for the test


def applied(pipeline: Pipeline) -> int:
    try:
        return pipeline.state.stats().get("applied", 0)
    except Exception:  # Redis restarting
        return -1


def test_events_reach_every_replica_through_the_worker(
    live_server: Callable[[Any], LiveServer],
    durable_redis: Any,
    tiny_static_artifacts: Path,
    tmp_path: Path,
    workers: Callable[..., WorkerProcess],
) -> None:
    settings, headers = stream_settings(tmp_path, tiny_static_artifacts, durable_redis.url)
    a = live_server(create_app(settings)).client(headers=headers)
    b = live_server(create_app(settings)).client(headers=headers)
    with a, b:
        wait_ready(a)
        wait_ready(b)
        item = ITEMS[5]
        known_before = b.get("/v1/recommend", params={"user_id": "U0"}).json()["history_length"]
        assert known_before > 0  # U0's events are in the artifacts
        r = a.post("/v1/events", json={"events": [{"user_id": "shopper", "item_id": item, "type": "purchase"}]})
        assert r.status_code == 202 and r.json() == {"accepted": 1, "unknown_items": []}
        assert (
            a.post("/v1/events", json={"events": [{"user_id": "U0", "item_id": item, "type": "view"}]}).status_code
            == 202
        )
        # accepted, not applied: no worker yet
        assert b.get("/v1/recommend", params={"user_id": "shopper"}).json()["history_length"] == 0
        query = {"q": "drill", "user_id": "shopper"}
        assert a.get("/v1/search", params=query).json()["personalized"] is False
        workers(durable_redis.url, "w1")
        wait_for(lambda: b.get("/v1/recommend", params={"user_id": "shopper"}).json()["history_length"] == 1, "b")
        wait_for(lambda: b.get("/v1/recommend", params={"user_id": "U0"}).json()["history_length"] > known_before, "U0")
        assert b.get("/v1/recommend", params={"user_id": "U0"}).json()["history_length"] == known_before + 1
        # the profile for personalised search is shared too (read at most once a second per user)
        wait_for(lambda: b.get("/v1/search", params=query).json()["personalized"] is True, "a shared profile")
        seen_by_a = a.get("/v1/recommend", params={"user_id": "shopper", "k": 20}).json()
        assert seen_by_a["history_length"] == 1 and item not in {x["id"] for x in seen_by_a["results"]}
        bad = a.post("/v1/events", json={"events": [{"user_id": "u", "item_id": item, "type": "kick"}]})
        assert bad.status_code == 422 and bad.json()["error"] == "validation_error"


def test_the_backlog_bound_answers_503_until_a_worker_drains_it(
    live_server: Callable[[Any], LiveServer],
    redis_server: Any,
    tiny_static_artifacts: Path,
    tmp_path: Path,
    workers: Callable[..., WorkerProcess],
) -> None:
    app, headers = stream_app(
        tmp_path,
        tiny_static_artifacts,
        redis_server.url,
        roles=("events", "search", "admin"),
        events_max_backlog=30,
        events_durability="unchecked",
    )
    events = shop_events(45)
    with live_server(app).client(headers=headers) as api:
        wait_ready(api)
        for start in (0, 10, 20):
            assert (
                api.post("/v1/events", json={"events": [as_json(e) for e in events[start : start + 10]]}).status_code
                == 202
            )
        full = api.post("/v1/events", json={"events": [as_json(e) for e in events[30:40]]})
        assert full.status_code == 503 and full.json()["error"] == "backlog_full"
        assert full.headers["Retry-After"] == "1"
        status = api.get("/v1/admin/events").json()
        assert status["backlog"] == 30 and status["max_backlog"] == 30 and status["groups"] == []
        workers(redis_server.url, "w1", worker_trim_interval_s=0)
        assert post_until_accepted(api, events[30:45]) == 15
        p = Pipeline(redis_server.url, PREFIX)
        wait_for(lambda: applied(p) == 45, "all 45 applied")
        status = api.get("/v1/admin/events").json()
        assert status["applied"] == 45 and status["duplicates"] == 0 and status["dead_letters"] == 0
        assert [g["name"] for g in status["groups"]] == ["nearline"]


def test_a_worker_killed_mid_replay_leaves_the_state_of_one_clean_pass(
    live_server: Callable[[Any], LiveServer],
    durable_redis: Any,
    tiny_static_artifacts: Path,
    tmp_path: Path,
    workers: Callable[..., WorkerProcess],
) -> None:
    events = shop_events(3000, seed=1)
    half = len(events) // 2
    app, headers = stream_app(tmp_path, tiny_static_artifacts, durable_redis.url)
    p = Pipeline(durable_redis.url, PREFIX)
    with live_server(app).client(headers=headers) as api:
        wait_ready(api)
        for start in range(0, half, 50):
            assert post_until_accepted(api, events[start : start + 50]) == 50
        first = workers(durable_redis.url, "first", worker_batch=20)
        wait_for(lambda: applied(p) >= 200, "the first worker to apply some events")
        first.kill()  # SIGKILL: no cleanup, whatever it held stays pending
        killed_at = applied(p)
        for start in range(half, len(events), 50):  # the replay goes on after the kill
            assert post_until_accepted(api, events[start : start + 50]) == 50
    # a different consumer takes over; it claims the dead one's entries at once (the test knows it is dead)
    workers(durable_redis.url, "second", worker_claim_idle_ms=0)
    wait_for(lambda: applied(p) == len(events), f"all events applied (killed at {killed_at})")
    wait_for(lambda: p.streams.groups(p.keys.events)[0]["pending"] == 0, "nothing pending")
    assert killed_at < len(events)
    assert p.state.dump() == clean_pass(durable_redis.url, events)
    assert p.state.stats()["applied"] == len(events)


def test_a_redis_restart_mid_replay_loses_no_acknowledged_event(
    live_server: Callable[[Any], LiveServer],
    durable_redis: Any,
    tiny_static_artifacts: Path,
    tmp_path: Path,
    workers: Callable[..., WorkerProcess],
) -> None:
    events = shop_events(2000, seed=2)
    app, headers = stream_app(tmp_path, tiny_static_artifacts, durable_redis.url)
    p = Pipeline(durable_redis.url, PREFIX)
    workers(durable_redis.url, "w1")
    acknowledged = 0
    with live_server(app).client(headers=headers) as api:
        wait_ready(api)
        for start in range(0, len(events), 50):
            if start == 1000:
                durable_redis.restart()  # SIGKILL, then a fresh process on the same port and AOF
            acknowledged += post_until_accepted(api, events[start : start + 50])
    assert acknowledged == len(events)
    wait_for(lambda: applied(p) == len(events), "every acknowledged event applied")
    wait_for(lambda: p.streams.groups(p.keys.events)[0]["pending"] == 0, "nothing pending")
    assert p.state.dump() == clean_pass(durable_redis.url, events)
