"""A plain-ASGI fast path for ``GET /v1/search``, the request a shop sends most (and for
``GET /healthz``, which load balancers poll).

FastAPI answers a search by solving the route's dependencies, validating a dozen query
parameters through pydantic, then validating and serialising the response model again: on
a 2-core machine that was about half of the event loop's time per search, more than the
search itself. :class:`FastPath` parses the query string with a parser derived from the
route's own contract (:func:`~shoprec.http.routes.search.search_fields`) and, when every
parameter is one the contract knows, given once, in its plain form and within its limits,
runs the *same* guards (authentication, rate limit) and search handler as the route and
writes the JSON directly. Anything else — an unknown, missing, malformed, repeated or
out-of-range parameter, a form pydantic would coerce (``in_stock=yes``, `` 10``) — goes on
to the FastAPI route unchanged, so error responses, the OpenAPI schema and the validation
rules have one owner: the route. ``/healthz`` gets its constant body here too, so the
benchmark's trivial endpoint (the server's ceiling) runs on the same path as the searches it
is compared with.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shoprec.errors import ShoprecError
from shoprec.http.errors import shoprec_error_response, unexpected_error_response
from shoprec.http.render import HitRenderer, dumps
from shoprec.http.routes.search import SEARCH_PATH, SearchField, SearchHandler, SearchParams
from shoprec.http.state import Guard

HEALTH_PATH = "/healthz"

_JSON_TYPE = (b"content-type", b"application/json")
_INT = re.compile(r"[0-9]{1,9}")
_FLOAT = re.compile(r"[0-9]{1,13}(\.[0-9]{1,12})?")
_BOOLS = {"true": True, "false": False, "1": True, "0": False}


class _Unplain(Exception):
    """A value the fast path leaves to the route's validation."""


PlainValue = Callable[[str], object]


def plain_value(f: SearchField) -> PlainValue:
    """The parser of one field's plain form (raises :class:`_Unplain` for anything else)."""
    kind = f.kind
    if isinstance(kind, tuple):
        choices = {c: c for c in kind}
        return lambda value: _known(choices, value)
    if kind is bool:
        return lambda value: _known(_BOOLS, value)
    if kind is str:
        lo, hi = f.min_length or 0, f.max_length if f.max_length is not None else float("inf")

        def text(value: str) -> object:
            if not lo <= len(value) <= hi:
                raise _Unplain
            return value

        return text
    pattern, cast = (_INT, int) if kind is int else (_FLOAT, float)
    ge = f.ge if f.ge is not None else float("-inf")
    le = f.le if f.le is not None else float("inf")

    def number(value: str) -> object:
        if pattern.fullmatch(value) is None or not ge <= (x := cast(value)) <= le:
            raise _Unplain
        return x

    return number


def _known(choices: dict[str, Any], value: str) -> Any:
    found = choices.get(value)
    if found is None:
        raise _Unplain
    return found


class PlainParser:
    """The fast path's reading of a search request, derived from the contract's fields."""

    def __init__(self, fields: Iterable[SearchField]) -> None:
        fields = list(fields)
        self._query = {f.name: plain_value(f) for f in fields if f.header is None}
        self._headers = {f.header.lower().encode("latin-1"): (f.name, plain_value(f)) for f in fields if f.header}
        self._defaults = {f.name: f.default for f in fields if not f.required}
        self._required = frozenset(f.name for f in fields if f.required)

    def parse(self, query_string: bytes, headers: Sequence[tuple[bytes, bytes]]) -> SearchParams | None:
        """The request's parameters when all are plain and within the contract's limits, else
        None (the route then answers, with its own 422 where something is wrong). The query
        string is split as Starlette splits it for the route. Pure: the same bytes give the
        same answer."""
        items = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        given = dict(items)
        if len(items) != len(given) or not self._required <= given.keys():
            return None  # a repeated parameter (the route takes the last one) or a missing one
        values = dict(self._defaults)
        query = self._query
        try:
            for name, raw in given.items():
                value = query.get(name)
                if value is None:
                    return None  # a parameter the contract does not know: the route decides
                values[name] = value(raw)
            seen: set[str] = set()
            for header, raw_header in headers:
                entry = self._headers.get(header)
                if entry is not None:
                    name, value = entry
                    if name in seen:
                        return None  # repeated
                    seen.add(name)
                    values[name] = value(raw_header.decode("latin-1"))
        except _Unplain:
            return None
        return SearchParams(**values)


@dataclass
class FastPathStats:
    """How many searches the fast path answered and how many it left to the route."""

    served: int = 0
    passed_on: int = 0


class FastPath:
    """ASGI middleware: answers plain ``GET /v1/search`` requests with ``handler`` after the
    same ``guards`` (authentication, rate limit) the route runs, and ``GET /healthz`` with
    ``health`` (the route's JSON body); passes everything else on.

    ``handler`` returns the response body (as the route's response model would serialise it,
    ``None`` fields left out) and the extra headers; a :class:`ShoprecError` from a guard or
    the handler becomes the same JSON error the route would send."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        fields: Sequence[SearchField],
        guards: Sequence[Guard],
        handler: SearchHandler,
        renderer: HitRenderer,
        health: dict[str, Any],
        stats: FastPathStats | None = None,
    ) -> None:
        self.app = app
        self.health = JSONResponse(health)
        self.parser = PlainParser(fields)
        self.guards = tuple(guards)
        self.handler = handler
        self.render = renderer.fragment  # the hits as one pre-serialised JSON fragment
        self.stats = stats or FastPathStats()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" and scope["method"] == "GET" else None
        if path == HEALTH_PATH:
            await self.health(scope, receive, send)
            return
        params = self.parser.parse(scope["query_string"], scope["headers"]) if path == SEARCH_PATH else None
        if params is None:
            if path == SEARCH_PATH:
                self.stats.passed_on += 1
            await self.app(scope, receive, send)
            return
        self.stats.served += 1
        await self.answer(scope, receive, send, params)

    async def answer(self, scope: Scope, receive: Receive, send: Send, params: SearchParams) -> None:
        request = Request(scope, receive)
        response: Response
        try:
            for guard in self.guards:
                await guard(request)
            body, headers = await self.handler(request, params, self.render)
            content = dumps(body)
        except ShoprecError as exc:
            response = shoprec_error_response(exc)
        except Exception:  # a bug: the same JSON 500 the route's handler would give
            response = unexpected_error_response()
        else:  # the headers Starlette's Response would send, without building one
            raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
            raw += [(b"content-length", str(len(content)).encode()), _JSON_TYPE]
            await send({"type": "http.response.start", "status": 200, "headers": raw})
            await send({"type": "http.response.body", "body": content})
            return
        await response(scope, receive, send)
