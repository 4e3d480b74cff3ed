"""The floor: the least a search request can cost in Python on shoprec's server stack.

    python bench/serve_peers/floor.py --artifacts DIR --port 8002

A bare ASGI callable on the same uvicorn (uvloop, httptools) serving ``/healthz`` and the
cheapest ladder level's search with nothing else: the query string split as Starlette splits it, BM25 top-k
kernel, hit renderer and orjson, and none of what a served search also does (authentication,
rate limits, deadlines, admission, the degradation ladder, the version lease, the middleware
stack, timings). Not a server anyone should run: it answers the question "what fraction of a
trivial endpoint's throughput could a Python search request reach at best?", measured in
the same run as shoprec against its own ``/healthz``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

from shoprec.http.render import HitRenderer
from shoprec.models.bundle import load_bundle
from shoprec.types import Hit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import serve_on_loopback  # noqa: E402

_JSON = (b"content-type", b"application/json")


def create_app(artifacts: Path) -> Any:
    bundle = load_bundle(artifacts)
    lexical, catalog = bundle.lexical, bundle.catalog
    renderer = HitRenderer()
    lexical.top("warm up the kernel", 10)  # compiled (or loaded from numba's cache) before traffic
    health = orjson.dumps({"status": "ok"})

    def search(query_string: bytes) -> tuple[int, bytes]:
        params = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
        q, k = params.get("q", ""), params.get("k", "10")
        if not q.strip() or not k.isdigit() or not 1 <= int(k) <= 100:
            return 400, orjson.dumps({"error": "bad_request", "detail": "q and k (1..100) please"})
        t0 = time.perf_counter()
        rows, scores = lexical.top(q, int(k))
        products = catalog.products
        hits = [Hit(products[row].id, score) for row, score in zip(rows.tolist(), scores.tolist(), strict=True)]
        body = {
            "query": q,
            "k": int(k),
            "pipeline": "bm25",
            "degradation_level": "bm25",
            "cached": False,
            "results": renderer.fragment(catalog, hits, False),
            "timings_ms": {"total_ms": (time.perf_counter() - t0) * 1000},
        }
        return 200, orjson.dumps(body)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]  # lifespan.startup, then lifespan.shutdown
                await send({"type": f"{kind}.complete"})
                if kind == "lifespan.shutdown":
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path in ("/healthz", "/readyz"):
            status, body = 200, health
        elif path == "/v1/search":
            status, body = search(scope["query_string"])
        else:
            status, body = 404, orjson.dumps({"error": "not_found", "detail": path})
        headers = [_JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


if __name__ == "__main__":
    serve_on_loopback(create_app)
