"""What the routes share: the runtime holding the live version, the event sink, the search
accelerator, overload control, the audit log, the hit renderer and the metrics (:class:`AppServices`),
and the guards each role's routes run (:class:`Guards`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request, Security
from fastapi.params import Depends as DependsParam
from starlette.concurrency import run_in_threadpool

from shoprec.http.auth import API_KEY_SCHEMES, actor
from shoprec.http.middleware import LEASED
from shoprec.http.overload import Overload
from shoprec.http.render import HitRenderer
from shoprec.security.audit import AuditLog
from shoprec.serving.accelerated import AcceleratedSearch
from shoprec.serving.merchandising import Merchandiser
from shoprec.serving.recommend import RecommendService
from shoprec.serving.runtime import Live, Runtime
from shoprec.serving.search import SearchService
from shoprec.settings import Settings
from shoprec.types import EventSink, Metrics

log = logging.getLogger(__name__)

# A check a route runs before its handler (authentication, rate limit, audit): it raises a
# ShoprecError to refuse. The same callables run as FastAPI dependencies and on the fast path.
Guard = Callable[[Request], Awaitable[object]]


@dataclass(frozen=True)
class AppServices:
    settings: Settings
    runtime: Runtime
    events: EventSink
    accelerated: AcceleratedSearch
    overload: Overload
    renderer: HitRenderer
    audit: AuditLog | None = None
    metrics: Metrics | None = None  # None: metrics off
    merchandiser: Merchandiser | None = None  # None: no merchandising rules

    def live(self) -> Live | None:
        """The version this request leased (see ``LeaseMiddleware``), else the current one."""
        return LEASED.get() or self.runtime.current

    @property
    def search(self) -> SearchService | None:
        live = self.live()
        return live.search if live is not None else None

    @property
    def recommend(self) -> RecommendService | None:
        live = self.live()
        return live.recommend if live is not None else None

    def require(self) -> SearchService:
        """The search service of the leased version; NotReadyError (503) when none is loaded."""
        live = self.live()
        return (live or self.runtime.require()).search

    async def record(self, action: str, request: Request, details: dict[str, Any]) -> None:
        """Append to the audit log (when there is one), off the event loop. A broken log must
        not take the request down: the failure is loud in the log instead."""
        audit = self.audit
        if audit is None:
            return
        try:
            await run_in_threadpool(audit.append, action, actor(request), details)
        except Exception:
            log.exception("could not append %s to the audit log", action)


@dataclass(frozen=True)
class Guards:
    """The guards of each role's routes, in the order they run."""

    search: tuple[Guard, ...]
    events: tuple[Guard, ...]
    admin: tuple[Guard, ...]


def dependencies(guards: Sequence[Guard]) -> list[DependsParam]:
    """A route's ``dependencies=``: the guards, after the API-key schemes the OpenAPI spec
    documents (declared so clients and fuzzers learn both ways to send a key; the guards read
    the headers themselves)."""
    return [*(Security(scheme) for scheme in API_KEY_SCHEMES), *(Depends(guard) for guard in guards)]
