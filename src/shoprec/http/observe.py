"""What each HTTP request leaves behind: its id, its duration and status in the metrics, and,
for a sample of requests and every server error, one log line.

:class:`RequestObserver` is the outermost ASGI middleware, so it sees every request — those
the front door refuses, those the fast path answers, those FastAPI routes — from the first
byte read to the last one sent. Per request it costs a clock read at each end, a look at the
request headers for ``X-Request-Id``, a wrapped ``send``, a route lookup in a dict and one
histogram observation (4-5 µs in all, measured in docs/OPERATIONS.md).

The route label is the route's template (``/v1/products/{product_id}``), never the path,
and ``unmatched`` for a path no route serves; methods outside the standard set are
``other``: every label comes from a bounded set.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shoprec.core.window import RequestWindow
from shoprec.http.logs import REQUEST_ID
from shoprec.http.overload import LEVEL_HEADER
from shoprec.types import Metrics

REQUEST_ID_HEADER = "X-Request-Id"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_ID_HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")
_LEVEL_HEADER = LEVEL_HEADER.lower().encode("latin-1")
# a client's request id is kept when it is short and plain (it goes into logs and headers)
_PLAIN_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")

access_log = logging.getLogger("shoprec.access")


class RouteTemplates:
    """Path → route template, for the app's routes: a dict for the paths without parameters,
    the routes' own patterns for the others."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.static: dict[str, str] = {}
        self.patterns: list[tuple[re.Pattern[str], str]] = []
        for route in routes:
            path = getattr(route, "path", None)
            pattern = getattr(route, "path_regex", None)
            if not isinstance(path, str) or pattern is None:
                continue
            if "{" in path:
                self.patterns.append((pattern, path))
            else:
                self.static.setdefault(path, path)

    def template(self, path: str) -> str:
        found = self.static.get(path)
        if found is not None:
            return found
        for pattern, template in self.patterns:
            if pattern.match(path):
                return template
        return UNMATCHED


class RequestLog:
    """Which requests get a log line (a ``sample_rate`` share, and every server error but a
    deliberate 503), and the line: route, method, status, duration, degradation level, model
    version and request id, as structured fields (``shoprec.access`` logger)."""

    def __init__(
        self,
        sample_rate: float,
        *,
        model_version: Callable[[], str | None] = lambda: None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.sample_rate = sample_rate
        self.model_version = model_version
        self.rng = rng

    def sampled(self) -> bool:
        return self.sample_rate > 0.0 and self.rng() < self.sample_rate

    @staticmethod
    def always(status: int) -> bool:
        """Server errors are always logged; a 503 is a refusal (overload, not ready), sampled."""
        return status >= 500 and status != 503

    def write(
        self, *, request_id: str, route: str, method: str, status: int, duration_s: float, level: str | None
    ) -> None:
        fields: dict[str, Any] = {
            "route": route,
            "method": method,
            "status": status,
            "duration_ms": round(duration_s * 1000.0, 3),
            "degradation_level": level,
            "model_version": self.model_version(),
            "request_id": request_id,
        }
        severity = logging.ERROR if self.always(status) else logging.INFO
        access_log.log(
            severity,
            "%s %s %d %.1f ms",
            method,
            route,
            status,
            duration_s * 1000.0,
            extra={"fields": fields, "request_id": request_id},
        )


class RequestObserver:
    """ASGI middleware (outermost): see the module docstring. ``metrics`` None: no metrics
    are kept, the request id and the log lines still are."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: RouteTemplates,
        metrics: Metrics | None,
        log: RequestLog,
        clock: Callable[[], float] = time.perf_counter,
        new_id: Callable[[], str] = lambda: f"{random.getrandbits(64):016x}",
        window: RequestWindow | None = None,
        counted: Callable[[str], bool] = lambda route: True,
    ) -> None:
        self.app = app
        self.window = window  # the ops page's recent throughput and latency, of the routes ``counted``
        self.counted = counted
        self.routes = routes
        self.metrics = metrics
        self.log = log
        self.clock = clock
        self.new_id = new_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()
        raw_id = None
        for name, value in scope["headers"]:
            if name == _ID_HEADER:
                raw_id = value
                break
        if raw_id is not None and _PLAIN_ID.fullmatch(raw_id):
            request_id = raw_id.decode("latin-1")
            id_header = (_ID_HEADER, raw_id)
        else:
            request_id = self.new_id()
            id_header = (_ID_HEADER, request_id.encode("latin-1"))
        log = self.log
        sampled = log.sampled()
        status = 500  # unless a response starts: the server answers an exception with a 500
        level: bytes | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, level
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", ())
                if sampled or log.always(status):
                    level = next((v for n, v in headers if n == _LEVEL_HEADER), None)
                # a new list: a response object may reuse its own for every request
                message = {**message, "headers": [*headers, id_header]}
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            ended = self.clock()
            duration_s = ended - started
            route = self.routes.template(scope["path"])
            method = scope["method"] if scope["method"] in METHODS else "other"
            if self.metrics is not None:
                self.metrics.request(route, method, status, duration_s)
            if self.window is not None and self.counted(route):
                self.window.add(ended, duration_s)
            if sampled or log.always(status):
                log.write(
                    request_id=request_id,
                    route=route,
                    method=method,
                    status=status,
                    duration_s=duration_s,
                    level=level.decode("latin-1") if level is not None else None,
                )
            REQUEST_ID.reset(token)
