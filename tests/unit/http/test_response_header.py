"""``ResponseHeader``: the header Ray replicas use to name themselves, on every HTTP answer."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from shoprec.http.middleware import ResponseHeader


def _app() -> Starlette:
    async def ok(_: object) -> JSONResponse:
        return JSONResponse({"ok": True}, headers={"X-Other": "1"})

    async def fail(_: object) -> JSONResponse:
        return JSONResponse({"error": "nope"}, status_code=422)

    app = Starlette(routes=[Route("/ok", ok), Route("/bad", fail)])
    app.add_middleware(ResponseHeader, name="X-Shoprec-Replica", value="r-1")
    return app


def test_every_answer_names_the_replica_and_keeps_its_own_headers() -> None:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [await client.get(p) for p in ("/ok", "/bad", "/missing")]

    ok, bad, missing = asyncio.run(run())
    assert [r.status_code for r in (ok, bad, missing)] == [200, 422, 404]
    assert all(r.headers["x-shoprec-replica"] == "r-1" for r in (ok, bad, missing))
    assert ok.headers["x-other"] == "1" and ok.json() == {"ok": True}
