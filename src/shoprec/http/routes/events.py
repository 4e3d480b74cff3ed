"""``POST /v1/events``: shoppers' views, clicks, carts and purchases, appended durably before
the reply and applied near-line (the next request already sees them)."""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, some of
# them local types built from the settings
from collections.abc import Callable, Sequence

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from shoprec.http.schemas import EventsAccepted, EventsIn, events_in
from shoprec.http.state import AppServices, Guard, dependencies
from shoprec.types import Event


def router(services: AppServices, guards: Sequence[Guard], wall_clock: Callable[[], float]) -> APIRouter:
    routes = APIRouter(tags=["events"])
    Body = events_in(services.settings)

    @routes.post(
        "/v1/events",
        response_model=EventsAccepted,
        responses={413: {"description": "body too large"}},
        dependencies=dependencies(guards),
    )
    async def post_events(body: Body) -> EventsAccepted:  # type: ignore[valid-type]
        """Record a batch of user events (appended durably before the reply)."""
        return await accept(services, body, wall_clock())

    return routes


async def accept(services: AppServices, body: EventsIn, now: float) -> EventsAccepted:
    """Append the batch to the event sink, then apply it to the live version's users and
    recommender; events without a timestamp happened ``now``."""
    batch = [
        Event(
            user_id=e.user_id,
            item_id=e.item_id,
            type=e.type,
            timestamp=e.timestamp if e.timestamp is not None else now,
            query=e.query,
        )
        for e in body.events
    ]
    search = services.search
    unknown: list[str] = []
    if search is not None:
        index_of = search.bundle.catalog.index_of
        unknown = sorted({e.item_id for e in batch if e.item_id not in index_of})
    n = await run_in_threadpool(services.events.append, batch)
    if search is not None:  # near-line: the next request already sees these
        search.users.add(batch)
    recommend = services.recommend
    if recommend is not None:
        recommend.add(batch)
    metrics = services.metrics
    if metrics is not None:
        applied = batch if search is not None else []
        metrics.events(n, len(applied), [now - e.timestamp for e in applied])
    return EventsAccepted(accepted=n, unknown_items=unknown[:100])
