"""The request observer alone, over a small Starlette app: request ids in and out, route
templates as labels, the durations it reports on an injected clock, and the log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Mapping, Sequence

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from shoprec.core.window import RequestWindow
from shoprec.http.logs import REQUEST_ID, JsonFormatter, TextFormatter, configure_logging, use_json
from shoprec.http.observe import RequestLog, RequestObserver, RouteTemplates
from shoprec.types import MetricsSnapshot

log = logging.getLogger("shoprec.tests.observe")


class Recorded:
    """A Metrics that keeps what it is told."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, int, float]] = []

    def request(self, route: str, method: str, status: int, duration_s: float) -> None:
        self.requests.append((route, method, status, duration_s))

    def search(self, level: str, timings_ms: Mapping[str, float], cached: bool) -> None: ...

    def batch(self, size: int, wait_s: float) -> None: ...

    def events(self, accepted: int, applied: int, lags_s: Sequence[float]) -> None: ...

    def sync(self, snapshot: MetricsSnapshot) -> None: ...

    def render(self) -> tuple[bytes, str]:
        return b"", "text/plain"


class Ticks:
    def __init__(self, step_s: float) -> None:
        self.now, self.step_s = 0.0, step_s

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


async def _product(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["product_id"]}, headers={"X-Degradation-Level": "hybrid"})


async def _boom(_: Request) -> PlainTextResponse:
    log.error("the handler failed")  # carries the request id, as any line logged meanwhile
    return PlainTextResponse("no", status_code=500)


HEALTH = PlainTextResponse("ok")  # one response object answering every request, as the fast path's


async def _health(_: Request) -> PlainTextResponse:
    return HEALTH


ROUTES = [Route("/v1/products/{product_id}", _product), Route("/boom", _boom), Route("/healthz", _health)]


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging("info", "json", stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def _client(metrics: Recorded, sample_rate: float = 0.0, ids: Iterator[str] | None = None) -> httpx.AsyncClient:
    ids = ids or iter(f"id{i}" for i in range(100))
    app = RequestObserver(
        Starlette(routes=ROUTES),
        routes=RouteTemplates(ROUTES),
        metrics=metrics,
        log=RequestLog(sample_rate, model_version=lambda: "v7", rng=lambda: 0.5),
        clock=Ticks(0.004),
        new_id=lambda: next(ids),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def test_route_templates() -> None:
    routes = RouteTemplates(ROUTES)
    assert routes.template("/v1/products/abc") == "/v1/products/{product_id}"
    assert routes.template("/healthz") == "/healthz"
    assert routes.template("/v1/products/") == "unmatched"
    assert routes.template("/etc/passwd") == "unmatched"


@pytest.mark.anyio
async def test_ids_are_taken_when_plain_else_made_and_always_returned() -> None:
    metrics = Recorded()
    async with _client(metrics) as client:
        r = await client.get("/healthz", headers={"X-Request-Id": "shop-42.a:b"})
        assert r.headers["x-request-id"] == "shop-42.a:b"
        r = await client.get("/healthz", headers={"X-Request-Id": "no spaces or <tags>"})
        assert r.headers["x-request-id"] == "id0"
        r = await client.get("/healthz", headers={"X-Request-Id": "x" * 129})
        assert r.headers["x-request-id"] == "id1"
        r = await client.get("/healthz")
        assert r.headers["x-request-id"] == "id2"
        assert r.headers.get_list("x-request-id") == ["id2"]  # the shared response is not changed
    assert REQUEST_ID.get() is None


@pytest.mark.anyio
async def test_metrics_get_the_template_the_method_the_status_and_the_duration() -> None:
    metrics = Recorded()
    async with _client(metrics) as client:
        await client.get("/v1/products/p1")
        await client.get("/nowhere")
        await client.request("BREW", "/healthz")
    assert metrics.requests == [
        ("/v1/products/{product_id}", "GET", 200, pytest.approx(0.004)),
        ("unmatched", "GET", 404, pytest.approx(0.004)),
        ("/healthz", "other", 405, pytest.approx(0.004)),
    ]


@pytest.mark.anyio
async def test_sampled_requests_and_every_server_error_get_a_json_line(lines: io.StringIO) -> None:
    async with _client(Recorded(), sample_rate=0.0) as client:
        await client.get("/v1/products/p1")  # not sampled
        r = await client.get("/boom", headers={"X-Request-Id": "abc"})
        assert r.status_code == 500
    records = _ours(lines)
    assert [rec["message"] for rec in records] == ["the handler failed", "GET /boom 500 4.0 ms"]
    assert all(rec["request_id"] == "abc" for rec in records)
    access = records[1]
    assert access["severity"] == "error" and access["logger"] == "shoprec.access"
    assert (access["route"], access["status"], access["duration_ms"], access["model_version"]) == (
        "/boom",
        500,
        4.0,
        "v7",
    )

    lines.seek(0)
    lines.truncate()
    async with _client(Recorded(), sample_rate=0.6) as client:  # the rng's 0.5 is under 0.6: sampled
        await client.get("/v1/products/p1", headers={"X-Request-Id": "r1"})
    (access,) = _ours(lines)
    assert access["severity"] == "info"
    assert {k: access[k] for k in ("route", "method", "status", "degradation_level", "request_id")} == {
        "route": "/v1/products/{product_id}",
        "method": "GET",
        "status": 200,
        "degradation_level": "hybrid",
        "request_id": "r1",
    }


def _ours(lines: io.StringIO) -> list[dict[str, object]]:
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    return [r for r in records if str(r["logger"]).startswith("shoprec.")]  # not the test client's


def test_text_on_a_terminal_json_elsewhere() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not use_json("auto", Tty()) and use_json("auto", io.StringIO())
    assert use_json("json", Tty()) and not use_json("text", io.StringIO())
    record = logging.LogRecord("shoprec.x", logging.ERROR, __file__, 1, "failed %s", ("here",), None)
    record.request_id = "r9"
    assert TextFormatter().format(record).endswith("ERROR shoprec.x: failed here [request_id=r9]")
    assert json.loads(JsonFormatter().format(record))["request_id"] == "r9"


@pytest.mark.anyio
async def test_the_ops_window_gets_the_counted_routes_on_the_same_clock() -> None:
    window = RequestWindow(60, started_s=0.0)
    app = RequestObserver(
        Starlette(routes=ROUTES),
        routes=RouteTemplates(ROUTES),
        metrics=None,
        log=RequestLog(0.0),
        clock=Ticks(0.004),  # each request starts and ends one tick apart: 4 ms
        window=window,
        counted=lambda route: route.startswith("/v1/"),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for path in ("/v1/products/a", "/healthz", "/v1/products/b", "/nowhere"):
            await client.get(path)
    s = window.summary(1.0)
    assert s.requests == 2  # the products, not the health check or the unmatched path
    assert s.p50_ms is not None and 4.0 <= s.p50_ms <= 4.0 * 10 ** (1 / 40)
