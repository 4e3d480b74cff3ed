"""``GET /metrics``: the Prometheus text exposition (every worker's, with several)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from shoprec.http.state import Guard, dependencies

METRICS_PATH = "/metrics"


def router(sync: Callable[[], None], render: Callable[[], tuple[bytes, str]], guards: Sequence[Guard]) -> APIRouter:
    """``sync`` brings the counters up to date; ``render`` gives the exposition and its type."""
    routes = APIRouter(tags=["ops"])

    @routes.get(
        METRICS_PATH,
        response_class=Response,
        dependencies=dependencies(guards),
        responses={
            200: {"content": {"text/plain": {}}, "description": "the metrics, in Prometheus's text format"},
            401: {"description": "no API key, from a client not allowed to read anonymously"},
            403: {"description": "the key lacks the metrics (or admin) role"},
        },
    )
    async def metrics() -> Response:
        """Request durations per route, search stages, degradation levels, refusals, batches,
        caches, the model version and its loads, events, and the process. Anonymous from
        loopback clients by default (``metrics_anonymous``), else a key with the ``metrics``
        or ``admin`` role."""
        sync()
        body, content_type = await run_in_threadpool(render)  # with workers: reads their files
        return Response(body, media_type=content_type)

    return routes
