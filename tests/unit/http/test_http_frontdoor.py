"""The front-door shedder: JSON 503 + Retry-After for model-backed paths while the loop lags,
each refused with the monitor's shed probability."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shoprec.http.middleware import FrontDoorShedder
from shoprec.serving.looplag import LoopLagMonitor


def _app(monitor: LoopLagMonitor) -> FrontDoorShedder:
    async def ok(_: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/v1/search", ok), Route("/healthz", ok)])
    return FrontDoorShedder(inner, monitor, paths=("/v1/search",), retry_after_s=2)


@pytest.mark.anyio
async def test_sheds_search_but_not_health_while_the_loop_lags() -> None:
    monitor = LoopLagMonitor(20.0, window_s=0.1, rng=lambda: 0.0)  # every draw under any probability
    transport = httpx.ASGITransport(app=_app(monitor))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/v1/search?q=drill")).status_code == 200
        for i in range(12):
            monitor.record(80.0, i * 0.01)
        r = await client.get("/v1/search?q=drill")
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        assert r.json()["error"] == "overloaded" and "80 ms behind" in r.json()["detail"]
        assert (await client.get("/healthz")).status_code == 200
        assert monitor.shed_total == 1


@pytest.mark.anyio
async def test_refuses_only_the_share_the_probability_says() -> None:
    draws = iter([0.5, 0.1, 0.7, 0.2])
    monitor = LoopLagMonitor(20.0, rng=lambda: next(draws))
    monitor.shed_probability = 0.4
    transport = httpx.ASGITransport(app=_app(monitor))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        codes = [(await client.get("/v1/search?q=drill")).status_code for _ in range(4)]
    assert codes == [200, 503, 200, 503] and monitor.shed_total == 2
