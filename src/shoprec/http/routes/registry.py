"""``/v1/admin/registry``: the registry's versions and history, as the ops page shows them, and
the two moves that need no offline work: rolling back to the previous version, and promoting
again a version that already served as current (it passed the gates then). A version that
never served goes through the gates: ``shoprec registry promote ID`` or a ``promote`` job.
The serving version follows at once (the registry poller would within ``registry_poll_s``)."""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from shoprec.errors import PromotionRefusedError, RequestError
from shoprec.http.auth import actor
from shoprec.http.state import AppServices, Guard, dependencies
from shoprec.registry.store import Registry
from shoprec.registry_pointer import VERSION_ID

HISTORY_ROWS = 50
SERVED_ACTIONS = frozenset({"promote", "rollback"})


class VersionOut(BaseModel):
    id: str
    pushed_at: str | None
    model_id: str | None
    signed: bool
    evaluations: int
    served_before: bool  # was current once: it may be promoted again without the gates


class RegistryOut(BaseModel):
    configured: bool  # false: no ``registry`` setting; the rest is empty
    current: str | None
    previous: list[str]
    serving: str | None  # the registry version this process serves
    versions: list[VersionOut]
    history: list[dict[str, Any]]  # most recent first, at most 50 rows


class PromoteIn(BaseModel):
    version: str = Field(min_length=1, max_length=80, pattern=VERSION_ID.pattern)


def served_versions(history: Sequence[dict[str, Any]]) -> set[str]:
    """The versions the registry's pointer has named (promoted or rolled back to)."""
    return {str(row["version"]) for row in history if row.get("action") in SERVED_ACTIONS and "version" in row}


def router(services: AppServices, guards: Sequence[Guard]) -> APIRouter:
    routes = APIRouter(tags=["admin"], dependencies=dependencies(guards))
    runtime, settings = services.runtime, services.settings

    def registry() -> Registry:
        if settings.registry is None:
            raise RequestError("no registry is configured (setting registry)")
        return Registry(settings.registry)

    def describe() -> RegistryOut:
        current = runtime.current
        serving = current.registry_version if current is not None else None
        if settings.registry is None:
            return RegistryOut(configured=False, current=None, previous=[], serving=serving, versions=[], history=[])
        reg = registry()
        pointer, history = reg.pointer(), reg.history()
        served = served_versions(history)
        return RegistryOut(
            configured=True,
            current=pointer.version if pointer is not None else None,
            previous=list(pointer.previous) if pointer is not None else [],
            serving=serving,
            versions=[
                VersionOut(
                    id=str(v["id"]),
                    pushed_at=v.get("pushed_at"),
                    model_id=v.get("model_id"),
                    signed=bool(v.get("signed", False)),
                    evaluations=len(v.get("evaluations", [])),
                    served_before=str(v["id"]) in served,
                )
                for v in reversed(reg.versions())
            ],
            history=history[::-1][:HISTORY_ROWS],
        )

    @routes.get("/v1/admin/registry", response_model=RegistryOut)
    async def show() -> RegistryOut:
        """The current version and the ones before it, every version (newest push first) and
        the registry's history (pushes, promotions, rollbacks, refusals)."""
        return await run_in_threadpool(describe)

    @routes.post(
        "/v1/admin/registry/rollback",
        response_model=RegistryOut,
        responses={400: {"description": "no registry, or no previous version"}},
    )
    async def rollback(request: Request) -> RegistryOut:
        """Point the registry back at the previous version and serve it."""
        who = actor(request)
        pointer, left = await run_in_threadpool(lambda: registry().rollback(actor=who))
        await services.record("registry.rollback", request, {"version": pointer.version, "from": left})
        await run_in_threadpool(runtime.poll_registry)
        return await run_in_threadpool(describe)

    @routes.post(
        "/v1/admin/registry/promote",
        response_model=RegistryOut,
        responses={
            404: {"description": "no such version"},
            409: {"description": "the version never served: it must pass the gates first"},
        },
    )
    async def promote(request: Request, body: PromoteIn) -> RegistryOut:
        """Make a version that served before current again (e.g. after a rollback) and serve it."""
        who = actor(request)

        def move() -> str | None:
            reg = registry()
            reg.read_version(body.version)  # NotFoundError for an unknown id
            pointer = reg.pointer()
            if pointer is not None and pointer.version == body.version:
                raise RequestError(f"{body.version} is already the current version")
            if body.version not in served_versions(reg.history()):
                raise PromotionRefusedError(
                    f"{body.version} never served as current, so it has not passed the promotion gates: "
                    f"run `shoprec registry promote {body.version}` (or queue a promote job)"
                )
            new = reg.set_current(body.version, action="promote", gates="passed before: served as current", actor=who)
            return new.previous[0] if new.previous else None

        previous = await run_in_threadpool(move)
        await services.record("registry.promote", request, {"version": body.version, "previous": previous})
        await run_in_threadpool(runtime.poll_registry)
        return await run_in_threadpool(describe)

    return routes
