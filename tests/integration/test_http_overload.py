"""Rate limits, shedding, deadlines and the degradation ladder over a real server on loopback.

Nothing here waits for the machine to be busy: the gate is saturated and the ladder stepped
by setting the gate's count of running requests, and every other test runs with time-based
shedding and the ladder off (``FULL_QUALITY``). The server runs in a thread of the test
process because the tests reach into its state; none of them loads it."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from shoprec.http.app import create_app
from shoprec.http.overload import LEVEL_HEADER, Overload
from support.apikeyhelp import unsigned_settings
from support.live import FULL_QUALITY, LiveServer, wait_ready


@contextmanager
def _serve(
    live_server: Callable[[Any], LiveServer], artifacts: Path, tmp_path: Path, **overrides: Any
) -> Iterator[tuple[LiveServer, httpx.Client]]:
    settings, headers = unsigned_settings(tmp_path, artifacts=artifacts, **overrides)
    server = live_server(create_app(settings))
    with server.client(headers=headers) as client:
        wait_ready(client)
        yield server, client


def test_built_artifacts_carry_the_measured_ladder(tiny_static_artifacts: Path) -> None:
    manifest = json.loads((tiny_static_artifacts / "manifest.json").read_text())
    ladder = manifest["ladder"]
    assert ladder["queries"] > 0
    assert [lv["name"] for lv in ladder["levels"]] == ["full", "hybrid", "hybrid_lite", "bm25"]
    for lv in ladder["levels"]:
        assert 0 < lv["p50_ms"] <= lv["p99_ms"] and math.isfinite(lv["p99_ms"])
        assert 0 <= lv["ndcg@10"] <= 1
    assert ladder["levels"][0]["params"] == {"pipeline": "full"}


def test_every_search_says_which_level_served_it(live_server: Any, tiny_static_artifacts: Path, tmp_path: Path) -> None:
    with _serve(live_server, tiny_static_artifacts, tmp_path, **FULL_QUALITY) as (_, api):
        r = api.get("/v1/search", params={"q": "cordless drill"})
        assert r.status_code == 200, r.text
        assert r.json()["degradation_level"] == "full" == r.headers[LEVEL_HEADER]
        r = api.get("/v1/search", params={"q": "cordless drill", "pipeline": "bm25"})
        assert r.json()["degradation_level"] == "bm25" == r.headers[LEVEL_HEADER]


def test_over_the_rate_limit_is_429_with_retry_after(
    live_server: Any, tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    limits = {"rate_limit_key_default_per_s": 0.01, "rate_limit_burst_factor": 1}
    with _serve(live_server, tiny_static_artifacts, tmp_path, **limits, **FULL_QUALITY) as (_, api):
        assert api.get("/v1/search", params={"q": "drill"}).status_code == 200
        r = api.get("/v1/search", params={"q": "drill"})
        assert r.status_code == 429
        assert r.json()["error"] == "rate_limited"
        assert 90 <= int(r.headers["Retry-After"]) <= 100  # one token at 0.01/s
        assert api.get("/healthz").status_code == 200  # ops routes are not limited


def test_a_saturated_gate_sheds_with_a_fast_503_and_retry_after(
    live_server: Any, tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    # the gate still sheds when it is full; the ladder and the loop-lag shedder stay out of it
    limits = {"max_in_flight": 2, "max_queued": 0, **FULL_QUALITY}
    with _serve(live_server, tiny_static_artifacts, tmp_path, **limits) as (server, api):
        overload: Overload = server.app.state.overload
        overload.gate.slots.running = 2  # both slots taken, no queue
        try:
            r = api.get("/v1/search", params={"q": "drill"})
        finally:
            overload.gate.slots.running = 0
        assert r.status_code == 503
        assert r.json()["error"] == "overloaded"
        assert int(r.headers["Retry-After"]) >= 1
        assert overload.gate.shed_total == 1
        assert api.get("/v1/search", params={"q": "drill"}).status_code == 200


def test_deadlines_out_of_bounds_are_a_clear_4xx(live_server: Any, tiny_static_artifacts: Path, tmp_path: Path) -> None:
    bounds = {"deadline_min_ms": 20, "deadline_max_ms": 5000, **FULL_QUALITY}
    with _serve(live_server, tiny_static_artifacts, tmp_path, **bounds) as (_, api):
        assert api.get("/v1/search", params={"q": "drill", "deadline_ms": 5}).status_code == 422
        assert api.get("/v1/search", params={"q": "drill"}, headers={"X-Deadline-Ms": "99999"}).status_code == 422
        assert api.get("/v1/search", params={"q": "drill"}, headers={"X-Deadline-Ms": "soon"}).status_code == 422
        assert api.get("/v1/search", params={"q": "drill", "deadline_ms": 4000}).status_code == 200
        assert api.get("/v1/search", params={"q": "drill"}, headers={"X-Deadline-Ms": "4000"}).status_code == 200


def test_pressure_steps_down_to_the_budgeted_level_and_back_up(
    live_server: Any, tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    ladder = {
        "max_in_flight": 4,
        "quality_loss_budget": 1.0,
        "ladder_step_down_pressure": 0.6,
        "ladder_step_up_pressure": 0.1,
        "ladder_step_up_hold_s": 0.0,
        "ladder_utilization_target": 0.0,  # the pressure rule alone (back-to-back requests are a real rate)
        "shed_loop_lag_ms": 0,  # a lagging loop would step down too: only the pressure set below may
    }
    with _serve(live_server, tiny_static_artifacts, tmp_path, **ladder) as (server, api):
        gate = server.app.state.overload.gate

        def level(query: str) -> str:  # distinct queries: a cached answer would skip admission
            r = api.get("/v1/search", params={"q": query})
            assert r.status_code == 200, r.text
            assert r.json()["degradation_level"] == r.headers[LEVEL_HEADER]
            return str(r.json()["degradation_level"])

        assert level("drill") == "full"
        cheapest = gate.chooser.policy.levels[-1].name
        assert len(gate.chooser.policy.levels) > 1 and cheapest != "full"
        gate.slots.running = 3  # pressure 0.75: three requests busy out of four slots
        try:
            assert level("cordless drill") == cheapest
        finally:
            gate.slots.running = 0
        seen = [level(f"drill {i}") for i in range(6)]
        assert seen[-1] == "full"
        climbed = [name for i, name in enumerate(seen) if i == 0 or name != seen[i - 1]]
        assert climbed == [lv.name for lv in reversed(gate.chooser.policy.levels)][1:]  # one level per calm request


def test_replicas_share_rate_limits_through_redis(
    live_server: Any, tiny_static_artifacts: Path, tmp_path: Path, redis_server: Any
) -> None:
    settings, headers = unsigned_settings(
        tmp_path,
        artifacts=tiny_static_artifacts,
        redis_url=redis_server.url,
        rate_limit_key_default_per_s=0.01,
        rate_limit_burst_factor=300,  # a bucket of 3 that does not refill during the test
        **FULL_QUALITY,  # two replicas in one process share a GIL (see test_http_cache.py)
    )
    a, b = live_server(create_app(settings)), live_server(create_app(settings))
    with a.client(headers=headers) as api_a, b.client(headers=headers) as api_b:
        wait_ready(api_a)
        wait_ready(api_b)
        codes = [api.get("/v1/search", params={"q": "drill"}).status_code for api in (api_a, api_b, api_a, api_b)]
        assert codes == [200, 200, 200, 429]
        assert not a.app.state.overload.limiter.degraded
