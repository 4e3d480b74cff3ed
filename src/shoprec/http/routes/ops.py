"""``/healthz`` and ``/readyz``: what a load balancer and an orchestrator poll."""

from __future__ import annotations

from fastapi import APIRouter

from shoprec import __version__
from shoprec.http.schemas import Health, Ready
from shoprec.http.state import AppServices

ALIVE = Health(status="ok", version=__version__)


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
