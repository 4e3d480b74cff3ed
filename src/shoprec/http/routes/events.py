"""``POST /v1/events``: shoppers' views, clicks, carts and purchases, appended durably before
the reply. With the embedded event log (``events_backend=log``) they are applied at once in this
process (200: the next request already sees them); with the Redis event stream
(``events_backend=redis``) they are appended to the stream and ``shoprec worker`` applies them to
the shared near-line state (202: accepted, visible once applied; docs/EVENTS.md)."""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, some of
# them local types built from the settings
import uuid
from collections.abc import Callable, Sequence

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from shoprec.adapters.eventstream import RedisEventStream
from shoprec.adapters.nearline import NearlineStore
from shoprec.http.schemas import EventsAccepted, EventsIn, events_in
from shoprec.http.state import AppServices, Guard, dependencies
from shoprec.types import Event


def router(services: AppServices, guards: Sequence[Guard], wall_clock: Callable[[], float]) -> APIRouter:
    routes = APIRouter(tags=["events"])
    Body = events_in(services.settings)

    @routes.post(
        "/v1/events",
        response_model=EventsAccepted,
        responses={
            202: {"model": EventsAccepted, "description": "appended to the event stream; applied near-line"},
            413: {"description": "body too large"},
            503: {"description": "the event stream's backlog is at its bound, or Redis is away (Retry-After)"},
        },
        dependencies=dependencies(guards),
    )
    async def post_events(body: Body) -> EventsAccepted | JSONResponse:  # type: ignore[valid-type]
        """Record a batch of user events (appended durably before the reply)."""
        accepted = await accept(services, body, wall_clock())
        if services.settings.events_backend == "redis":
            return JSONResponse(accepted.model_dump(), status_code=202)
        return accepted

    return routes


async def accept(services: AppServices, body: EventsIn, now: float) -> EventsAccepted:
    """Append the batch to the event sink, then (embedded log) apply it to the live version's
    users and recommender (with the event stream, its worker applies it to the shared state).
    Events without a timestamp happened ``now``; events without an id get a random one (a client
    that retries a batch should send ids: each id applies once)."""
    batch = [
        Event(
            user_id=e.user_id,
            item_id=e.item_id,
            type=e.type,
            timestamp=e.timestamp if e.timestamp is not None else now,
            query=e.query,
            event_id=e.id if e.id is not None else uuid.uuid4().hex,
        )
        for e in body.events
    ]
    search = services.search
    unknown: list[str] = []
    if search is not None:
        index_of = search.bundle.catalog.index_of
        unknown = sorted({e.item_id for e in batch if e.item_id not in index_of})
    n = await run_in_threadpool(services.events.append, batch)
    if services.settings.events_backend == "log":  # near-line, in process
        if search is not None:
            search.users.add(batch)
            search.queries.add(batch)  # what shoppers searched, for suggestions
        recommend = services.recommend
        if recommend is not None:
            recommend.add(batch)
    metrics = services.metrics
    if metrics is not None:
        applied = batch if search is not None and services.settings.events_backend == "log" else []
        metrics.events(n, len(applied), [now - e.timestamp for e in applied])
    return EventsAccepted(accepted=n, unknown_items=unknown[:100])


class GroupOut(BaseModel):
    name: str
    consumers: int
    pending: int
    last_delivered_id: str
    lag: int | None


class StreamStatus(BaseModel):
    backlog: int
    max_backlog: int
    groups: list[GroupOut]
    dead_letters: int
    dead_lettered: int
    applied: int
    duplicates: int


def admin_router(stream: RedisEventStream, nearline: NearlineStore, guards: Sequence[Guard]) -> APIRouter:
    """``GET /v1/admin/events``: the event stream's state (admin role; ``events_backend=redis`` only)."""
    routes = APIRouter(tags=["admin"], dependencies=dependencies(guards))

    @routes.get("/v1/admin/events", response_model=StreamStatus)
    async def stream_status() -> StreamStatus:
        """Backlog (and its bound), each consumer group's pending entries and lag, dead letters,
        and how many events the workers applied and found already applied."""

        def read() -> StreamStatus:
            stats = nearline.stats()
            return StreamStatus(
                **stream.status(), applied=stats.get("applied", 0), duplicates=stats.get("duplicates", 0)
            )

        return await run_in_threadpool(read)

    return routes
