"""The search fast path against the FastAPI route, over a real server on loopback with real
artifacts: the same answers, the same refusals, and everything not plain left to the route.

A repeated ``q`` (the route takes the last value; the fast path leaves repeats to the route)
sends the same search through the route, so each pair below differs only in who answered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprec import __version__
from shoprec.http.app import create_app
from shoprec.http.fastpath import FastPathStats
from shoprec.http.overload import LEVEL_HEADER
from support.apikeyhelp import unsigned_settings
from support.live import FULL_QUALITY, LiveServer, wait_ready

Params = list[tuple[str, str]]


@pytest.fixture
def served(live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path) -> Iterator[Any]:
    # no result cache: both paths compute every answer (``cached`` would differ otherwise)
    settings, headers = unsigned_settings(
        tmp_path, artifacts=tiny_static_artifacts, result_cache_entries=0, max_k=20, deadline_min_ms=10, **FULL_QUALITY
    )
    server = live_server(create_app(settings))
    with server.client(headers=headers) as client:
        wait_ready(client)
        yield server, client


def _by_route(params: Params) -> Params:
    q = dict(params)["q"]
    return [("q", "a decoy the route overwrites"), *[(k, v) for k, v in params if k != "q"], ("q", q)]


def _both(server: LiveServer, api: httpx.Client, params: Params, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
    stats: FastPathStats = server.app.state.search_fast_path
    before = (stats.served, stats.passed_on)
    fast = api.get("/v1/search", params=params, **kw)
    route = api.get("/v1/search", params=_by_route(params), **kw)
    assert (stats.served, stats.passed_on) == (before[0] + 1, before[1] + 1)
    return fast, route


def _comparable(r: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()
    body.pop("timings_ms", None)  # measured per request
    return body


@pytest.mark.parametrize(
    "params",
    [
        [("q", "cordless drill")],
        [("q", "cordless drill"), ("k", "3"), ("explain", "true")],
        [("q", "garden hose"), ("pipeline", "bm25"), ("k", "20")],
        [("q", "garden hose"), ("pipeline", "dense"), ("in_stock", "false")],
        [("q", "sofa"), ("min_price", "10"), ("max_price", "900.5"), ("explain", "1")],
        [("q", "drill"), ("category", "Tools"), ("brand", "Nope"), ("user_id", "u-1")],
        [("q", "电钻"), ("deadline_ms", "5000")],
    ],
)
def test_plain_searches_are_answered_as_the_route_answers(served: Any, params: Params) -> None:
    server, api = served
    fast, route = _both(server, api, params, headers={"X-Deadline-Ms": "2000"})
    assert fast.status_code == route.status_code == 200, (fast.text, route.text)
    assert _comparable(fast) == _comparable(route)
    assert fast.headers["content-type"] == route.headers["content-type"] == "application/json"
    assert fast.headers[LEVEL_HEADER] == route.headers[LEVEL_HEADER] == fast.json()["degradation_level"]
    assert fast.json()["timings_ms"]["total_ms"] > 0


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ([("q", "   ")], 400, "bad_request"),
        ([("q", "drill"), ("min_price", "20"), ("max_price", "10")], 400, "bad_request"),
    ],
)
def test_refusals_after_validation_are_the_routes(served: Any, params: Params, status: int, error: str) -> None:
    server, api = served
    fast, route = _both(server, api, params)
    assert fast.status_code == route.status_code == status
    assert fast.json() == route.json() and fast.json()["error"] == error


def test_authentication_and_rate_limits_hold_on_the_fast_path(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    limits = {"rate_limit_key_default_per_s": 0.01, "rate_limit_burst_factor": 1, **FULL_QUALITY}
    settings, headers = unsigned_settings(tmp_path, artifacts=tiny_static_artifacts, **limits)
    server = live_server(create_app(settings))
    stats: FastPathStats = server.app.state.search_fast_path
    with server.client() as anonymous, server.client(headers={"X-API-Key": "sr_nope_nope"}) as wrong:
        wait_ready(anonymous)
        no_key, bad_key = anonymous.get("/v1/search?q=drill"), wrong.get("/v1/search?q=drill")
        route_no_key = anonymous.get("/v1/search?q=x&q=drill")
        assert no_key.status_code == bad_key.status_code == route_no_key.status_code == 401
        assert no_key.json() == route_no_key.json()
        assert no_key.headers["www-authenticate"] == route_no_key.headers["www-authenticate"]
        assert stats.served == 2
    with server.client(headers=headers) as api:
        assert api.get("/v1/search?q=drill").status_code == 200
        limited = api.get("/v1/search?q=drill")
        assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
        assert 90 <= int(limited.headers["retry-after"]) <= 100
        route_limited = api.get("/v1/search?q=x&q=drill")  # the route shares the same bucket
        assert route_limited.status_code == 429 and route_limited.json()["error"] == "rate_limited"


def test_a_parameter_the_contract_does_not_know_gets_the_routes_answer(served: Any) -> None:
    """The fast path answers only what it fully understands: an extra parameter sends the
    request to the route, which ignores it and answers as it answers without it."""
    server, api = served
    stats: FastPathStats = server.app.state.search_fast_path
    before = (stats.served, stats.passed_on)
    extra = api.get("/v1/search", params=[("q", "cordless drill"), ("k", "3"), ("utm_source", "newsletter")])
    assert (stats.served, stats.passed_on) == (before[0], before[1] + 1)  # the route answered
    plain = api.get("/v1/search", params=[("q", "cordless drill"), ("k", "3")])
    assert (stats.served, stats.passed_on) == (before[0] + 1, before[1] + 1)
    assert extra.status_code == plain.status_code == 200
    assert _comparable(extra) == _comparable(plain)


def test_what_is_not_plain_reaches_the_routes_validation(served: Any) -> None:
    server, api = served
    stats: FastPathStats = server.app.state.search_fast_path
    before = stats.passed_on
    invalid = api.get("/v1/search", params={"q": "drill", "k": "0"})
    assert invalid.status_code == 422 and invalid.json()["error"] == "validation_error"
    assert api.get("/v1/search", params={"k": "3"}).status_code == 422
    assert api.get("/v1/search", params={"q": "drill"}, headers={"X-Deadline-Ms": "1"}).status_code == 422
    coerced = api.get("/v1/search", params={"q": "drill", "in_stock": "yes"})  # pydantic's lax bool
    assert coerced.status_code == 200 and all(r["in_stock"] for r in coerced.json()["results"])
    assert stats.passed_on == before + 4
    assert api.post("/v1/search", params={"q": "drill"}).status_code == 405  # only GET is a search
    assert {"/v1/search", "/healthz"} <= set(api.get("/openapi.json").json()["paths"])


def test_health_is_answered_on_the_fast_path_with_the_routes_body(served: Any) -> None:
    _, api = served
    r = api.get("/healthz")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {"status": "ok", "version": __version__}
    assert api.post("/healthz").status_code == 405  # anything but GET still goes to the router
