"""``/v1/admin``: the version being served, and loading another one beside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from shoprec.errors import RequestError
from shoprec.http.auth import actor
from shoprec.http.schemas import ModelOut, ReloadIn
from shoprec.http.state import AppServices, Guard, dependencies


def audit_guard(services: AppServices) -> Guard:
    """A guard (after authentication, which names the key) that records every admin request."""

    async def record_admin_request(request: Request) -> None:
        details = {"method": request.method, "path": request.url.path, "query": request.url.query or None}
        await services.record("admin.request", request, details)

    return record_admin_request


def router(services: AppServices, guards: Sequence[Guard]) -> APIRouter:
    routes = APIRouter(tags=["admin"], dependencies=dependencies(guards))
    runtime, settings = services.runtime, services.settings

    @routes.get("/v1/admin/model", response_model=ModelOut)
    async def model() -> ModelOut:
        """The version being served: where it came from, who signed it, requests in flight."""
        return ModelOut(**runtime.require().describe())

    @routes.post(
        "/v1/admin/reload",
        response_model=ModelOut,
        responses={422: {"description": "the artifacts failed a check; the current version keeps serving"}},
    )
    async def reload(request: Request, body: ReloadIn | None = None) -> ModelOut:
        """Load a version beside the current one, verify it, switch atomically, drain the old.
        A refused version leaves the current one serving."""
        who = actor(request)
        target = body.artifacts if body is not None else None
        if target is None and settings.registry is None and settings.artifacts is None:
            raise RequestError('nothing to reload: give {"artifacts": DIR} (no artifacts or registry configured)')
        if target is None and settings.registry is not None:
            live = await run_in_threadpool(runtime.poll_registry) or runtime.require()
        else:
            folder = None if target is None else Path(target)
            live = await run_in_threadpool(lambda: runtime.load(folder, actor=who))
        return ModelOut(**live.describe())

    return routes
