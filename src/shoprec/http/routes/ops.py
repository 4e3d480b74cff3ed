"""``/healthz`` and ``/readyz``: what a load balancer and an orchestrator poll; and
``/v1/ops/summary``: what the ops page at ``/ops`` shows live (throughput and p50/p99 over the
last ``ops_window_s`` seconds, the degradation level, the caches' hit ratios, the model)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import APIRouter
from pydantic import BaseModel

from shoprec import __version__
from shoprec.core.window import RequestWindow
from shoprec.http.schemas import Health, ModelOut, Ready
from shoprec.http.state import AppServices, Guard, dependencies

ALIVE = Health(status="ok", version=__version__)
SUMMARY_PATH = "/v1/ops/summary"


def router(services: AppServices) -> APIRouter:
    routes = APIRouter(tags=["ops"])

    @routes.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """Alive (the process answers), whether or not artifacts are loaded."""
        return ALIVE

    @routes.get("/readyz", response_model=Ready, responses={503: {"description": "not ready"}})
    async def readyz() -> Ready:
        """Ready: artifacts loaded and verified."""
        b = services.require().bundle
        return Ready(status="ready", model_version=b.version, model_id=b.model_id, products=len(b.catalog))

    return routes


class WindowOut(BaseModel):
    window_s: int
    span_s: float
    requests: int
    requests_per_s: float
    p50_ms: float | None
    p99_ms: float | None


class DegradationOut(BaseModel):
    level: str
    levels: list[str]
    in_flight: int
    queued: int
    max_in_flight: int
    pressure: float


class CacheOut(BaseModel):
    lookups: int
    hits: int
    hit_ratio: float | None


class SummaryOut(BaseModel):
    requests: WindowOut
    degradation: DegradationOut
    caches: dict[str, CacheOut]
    refusals: dict[str, int]
    model: ModelOut | None


def counted(route: str) -> bool:
    """Whether a request to ``route`` counts in the window: the API's, not the ops page's polls."""
    return route.startswith("/v1/") and route != SUMMARY_PATH


def summary_router(
    services: AppServices, window: RequestWindow, clock: Callable[[], float], guards: Sequence[Guard]
) -> APIRouter:
    """``GET /v1/ops/summary``, read from ``window`` (fed by the request observer on ``clock``)
    and the serving objects' own counters; this process's numbers (one worker's with several)."""
    routes = APIRouter(tags=["ops"], dependencies=dependencies(guards))

    @routes.get(SUMMARY_PATH, response_model=SummaryOut)
    async def summary() -> SummaryOut:
        """Throughput and p50/p99 over the last ``ops_window_s`` seconds of API requests, the
        degradation level of the last search admitted (and the gate's pressure), the caches'
        hit ratios since the start, refusals, and the version being served (null before one is
        loaded). Same access as ``/metrics``."""
        gate, cache, overload = services.overload.gate, services.accelerated.cache, services.overload
        w = window.summary(clock())
        caches = {
            name: CacheOut(
                lookups=(lookups := counts.hits + counts.misses),
                hits=counts.hits,
                hit_ratio=counts.hits / lookups if lookups else None,
            )
            for name, counts in (("result", cache.results), ("embedding", cache.embeddings))
        }
        current = services.runtime.current
        return SummaryOut(
            requests=WindowOut(
                window_s=w.window_s,
                span_s=round(w.span_s, 3),
                requests=w.requests,
                requests_per_s=round(w.requests_per_s, 3),
                p50_ms=w.p50_ms,
                p99_ms=w.p99_ms,
            ),
            degradation=DegradationOut(
                level=gate.chooser.last_chosen.name,
                levels=[level.name for level in gate.chooser.policy.levels],
                in_flight=gate.slots.running,
                queued=gate.slots.queued,
                max_in_flight=gate.slots.max_in_flight,
                pressure=round(gate.slots.pressure, 3),
            ),
            caches=caches,
            refusals={
                "rate_limit": overload.rate_limited_total,
                "queue_full": gate.shed_total,
                "deadline": gate.expired_total,
            },
            model=ModelOut(**current.describe()) if current is not None else None,
        )

    return routes
