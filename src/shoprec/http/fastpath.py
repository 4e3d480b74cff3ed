"""A plain-ASGI fast path for ``GET /v1/search``, the request a shop sends most (and for
``GET /healthz``, which load balancers poll).

FastAPI answers a search by solving the route's dependencies, validating a dozen query
parameters through pydantic, then validating and serialising the response model again: on
a 2-core machine that was about half of the event loop's time per search, more than the
search itself. :class:`FastPath` parses the query string itself and, when every
parameter is present in its plain form and within the route's limits, runs the *same*
authentication, rate limit and search handler as the FastAPI route and writes the JSON
directly. Anything else — a missing, malformed, repeated or out-of-range parameter, a form
pydantic would coerce (``in_stock=yes``, `` 10``) — goes on to the FastAPI route unchanged,
so error responses, the OpenAPI schema and the validation rules have one owner: the route.
``/healthz`` gets its constant body here too, so the benchmark's trivial endpoint (the
server's ceiling) runs on the same path as the searches it is compared with.

Bodies are serialised with orjson (1 µs for a ten-hit body against 22 µs for Starlette's
``JSONResponse``, which calls the standard library's ``json.dumps``); the JSON is the same
up to how floats are spelled (``1e16`` for ``1e+16``). The fast path is the only user of
orjson.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shoprec.errors import ShoprecError
from shoprec.http.errors import shoprec_error_response, unexpected_error_response
from shoprec.http.overload import DEADLINE_HEADER
from shoprec.models.bundle import CatalogArrays
from shoprec.serving.search import Pipeline
from shoprec.settings import Settings
from shoprec.types import Hit, Product

PRODUCT_FIELDS_ENTRIES = 500_000  # products whose hit fields are kept rendered (a catalog holds fewer)
SEARCH_PATH = "/v1/search"
HEALTH_PATH = "/healthz"
_DEADLINE_HEADER = DEADLINE_HEADER.lower().encode("latin-1")  # ASGI header names are lower-case bytes
PIPELINES: dict[str, Pipeline] = {"bm25": "bm25", "dense": "dense", "hybrid": "hybrid", "full": "full"}
FILTER_MAX_CHARS = 200
MAX_PRICE = 1e12

_JSON_TYPE = (b"content-type", b"application/json")
_INT = re.compile(r"[0-9]{1,9}")
_FLOAT = re.compile(r"[0-9]{1,13}(\.[0-9]{1,12})?")
_BOOLS = {"true": True, "false": False, "1": True, "0": False}


@dataclass(frozen=True, slots=True)
class SearchParams:
    """One search request's parameters after validation (by the FastAPI route or the fast path)."""

    q: str
    k: int
    user_id: str | None = None
    category: str | None = None
    brand: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool | None = None
    explain: bool = False
    pipeline: Pipeline = "full"
    deadline_ms: int | None = None
    header_deadline_ms: int | None = None


@dataclass
class FastPathStats:
    """How many searches the fast path answered and how many it left to the route."""

    served: int = 0
    passed_on: int = 0


class _Unplain(Exception):
    """A parameter the fast path leaves to the route's validation."""


def _text(value: str, max_chars: int) -> str:
    if not 1 <= len(value) <= max_chars:
        raise _Unplain
    return value


def _int(value: str, lo: int, hi: int) -> int:
    if _INT.fullmatch(value) is None or not lo <= (n := int(value)) <= hi:
        raise _Unplain
    return n


def _price(value: str) -> float:
    if _FLOAT.fullmatch(value) is None or (x := float(value)) > MAX_PRICE:
        raise _Unplain
    return x


def _bool(value: str) -> bool:
    b = _BOOLS.get(value)
    if b is None:
        raise _Unplain
    return b


def query_items(query: str) -> list[tuple[str, str]]:
    """``parse_qsl(query, keep_blank_values=True)``, Starlette's parsing of a query string (the
    route's), written out for ``str`` with ``&`` as the only separator: the same pairs at about
    half the cost (``parse_qsl`` coerces its arguments and unquotes every part)."""
    return [(_unquote(name), _unquote(value)) for name, _, value in (p.partition("=") for p in query.split("&") if p)]


def _unquote(part: str) -> str:
    if "+" in part:
        part = part.replace("+", " ")
    return unquote(part, errors="replace") if "%" in part else part


def parse_search(query_string: bytes, deadline_header: bytes | None, settings: Settings) -> SearchParams | None:
    """The request's parameters when all are plain and within the route's limits, else None
    (the route then answers, with its own 422 where something is wrong). Unknown parameters
    are ignored, as the route ignores them. Pure: the same bytes give the same answer."""
    s = settings
    items = query_items(query_string.decode("latin-1"))
    params = dict(items)
    if len(items) != len(params) or "q" not in params:
        return None  # a repeated parameter (the route takes the last one): leave it to the route
    get = params.get
    try:
        pipeline = PIPELINES.get(get("pipeline", "full"))
        if pipeline is None:
            raise _Unplain
        k, user_id, category, brand = get("k"), get("user_id"), get("category"), get("brand")
        min_price, max_price, in_stock, explain = get("min_price"), get("max_price"), get("in_stock"), get("explain")
        deadline_ms = get("deadline_ms")
        return SearchParams(
            q=_text(params["q"], s.max_query_chars),
            k=s.default_k if k is None else _int(k, 1, s.max_k),
            user_id=None if user_id is None else _text(user_id, s.max_id_chars),
            category=None if category is None else _text(category, FILTER_MAX_CHARS),
            brand=None if brand is None else _text(brand, FILTER_MAX_CHARS),
            min_price=None if min_price is None else _price(min_price),
            max_price=None if max_price is None else _price(max_price),
            in_stock=None if in_stock is None else _bool(in_stock),
            explain=False if explain is None else _bool(explain),
            pipeline=pipeline,
            deadline_ms=None if deadline_ms is None else _int(deadline_ms, s.deadline_min_ms, s.deadline_max_ms),
            header_deadline_ms=(
                None
                if deadline_header is None
                else _int(deadline_header.decode("latin-1"), s.deadline_min_ms, s.deadline_max_ms)
            ),
        )
    except _Unplain:
        return None


class HitRenderer:
    """Search hits as the API shows them (``HitOut`` with ``None`` fields left out), from each
    product's fields rendered once per product object: as dicts for the FastAPI routes and as
    one pre-serialised JSON fragment for the fast path's body. A catalog update or a new
    version replaces the product object, which the identity checks see; each entry also holds
    the product's catalog row, so a hit costs one dict lookup."""

    def __init__(self, max_entries: int = PRODUCT_FIELDS_ENTRIES) -> None:
        self.max_entries = max_entries
        # product id -> (product, its row or -1, its fields, its JSON up to the score's value)
        self._entries: dict[str, tuple[Product, int, dict[str, Any], bytes]] = {}

    def fields(self, p: Product, row: int = -1) -> dict[str, Any]:
        """The product's fields as a hit shows them (without the score)."""
        return self._entry(p, row)[2]

    def _entry(self, p: Product, row: int) -> tuple[Product, int, dict[str, Any], bytes]:
        entry = self._entries.get(p.id)
        if entry is not None and entry[0] is p:
            if row >= 0 and entry[1] != row:  # rendered before its row was known
                entry = self._entries[p.id] = (p, row, entry[2], entry[3])
            return entry
        fields: dict[str, Any] = {"id": p.id, "title": p.title, "brand": p.brand, "category": p.category}
        if p.price is not None:
            fields["price"] = float(p.price)
        fields["in_stock"] = p.in_stock
        if len(self._entries) >= self.max_entries:  # old versions' products: start afresh
            self._entries.clear()
        entry = self._entries[p.id] = (p, row, fields, orjson.dumps(fields)[:-1] + b',"score":')
        return entry

    def _on_sale(
        self, catalog: CatalogArrays, hits: Sequence[Hit]
    ) -> list[tuple[Hit, tuple[Product, int, dict[str, Any], bytes]]]:
        """Each hit still on sale with its product's entry, in order: the search's hot path."""
        index_of, products, removed = catalog.index_of, catalog.products, catalog.removed
        n = len(products)
        out = []
        for h in hits:
            entry = self._entries.get(h.product_id)
            if entry is None or not (0 <= (i := entry[1]) < n and products[i] is entry[0]):
                found = index_of.get(h.product_id)
                if found is None:
                    continue
                i = found
                entry = self._entry(products[i], i)  # this catalog's product at that row
            if removed is not None and removed[i]:
                continue  # taken off sale since the result was computed (or cached)
            out.append((h, entry))
        return out

    def dicts(self, catalog: CatalogArrays, hits: Sequence[Hit], explain: bool) -> list[dict[str, Any]]:
        """The hits still on sale as JSON-ready dicts."""
        return [scored(e[2], h.score, dict(h.stages) if explain else None) for h, e in self._on_sale(catalog, hits)]

    def fragment(self, catalog: CatalogArrays, hits: Sequence[Hit], explain: bool) -> orjson.Fragment:
        """The same list as :meth:`dicts`, already serialised (for an orjson body)."""
        dumps = orjson.dumps
        parts = []
        for h, e in self._on_sale(catalog, hits):
            score = dumps(h.score if math.isfinite(h.score) else 0.0)
            parts.append(e[3] + score + (b',"stages":' + dumps(dict(h.stages)) + b"}" if explain else b"}"))
        return orjson.Fragment(b"[" + b",".join(parts) + b"]")


def scored(fields: dict[str, Any], score: float, stages: dict[str, float] | None) -> dict[str, Any]:
    """A product's hit fields with its score (0 where not finite) and, for explain, its stages."""
    hit = {**fields, "score": float(score) if math.isfinite(score) else 0.0}
    if stages is not None:
        hit["stages"] = stages
    return hit


SearchHandler = Callable[[Request, SearchParams], Awaitable[tuple[dict[str, Any], dict[str, str]]]]
Guard = Callable[[Request], Awaitable[object]]


class FastPath:
    """ASGI middleware: answers plain ``GET /v1/search`` requests with ``handler`` after the
    same ``guards`` (authentication, rate limit) the route declares, and ``GET /healthz`` with
    ``health`` (the route's JSON body); passes everything else on.

    ``handler`` returns the response body (as the route's response model would serialise it,
    ``None`` fields left out) and the extra headers; a :class:`ShoprecError` from a guard or
    the handler becomes the same JSON error the route would send."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        guards: tuple[Guard, ...],
        handler: SearchHandler,
        health: dict[str, Any],
        stats: FastPathStats | None = None,
    ) -> None:
        self.app = app
        self.health = JSONResponse(health)
        self.settings = settings
        self.guards = guards
        self.handler = handler
        self.stats = stats or FastPathStats()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" and scope["method"] == "GET" else None
        if path == HEALTH_PATH:
            await self.health(scope, receive, send)
            return
        if path != SEARCH_PATH:
            await self.app(scope, receive, send)
            return
        deadline_header = None
        for name, value in scope["headers"]:
            if name == _DEADLINE_HEADER:
                if deadline_header is not None:  # repeated: the route decides
                    params = None
                    break
                deadline_header = value
        else:
            params = parse_search(scope["query_string"], deadline_header, self.settings)
        if params is None:
            self.stats.passed_on += 1
            await self.app(scope, receive, send)
            return
        self.stats.served += 1
        request = Request(scope, receive)
        response: Response
        try:
            for guard in self.guards:
                await guard(request)
            body, headers = await self.handler(request, params)
            content = orjson.dumps(body)
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
