"""``GET /v1/search``: the search contract, the handler, and the route.

The contract is declared once, as :class:`SearchParams`: each field's type, default and
limits (some read from :class:`~shoprec.settings.Settings`), and where it comes from (the
query string, or a header). :func:`search_fields` resolves it against the settings; the
route's query parameters (and so the OpenAPI spec and FastAPI's validation) and the fast
path's parser (:mod:`shoprec.http.fastpath`) are both derived from those fields.
:class:`SearchHandler` is the search itself, which the route and the fast path both call
after the same guards.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from fastapi import APIRouter, Header, Query, Request, Response

from shoprec.core.facets import FACETS, PRICE_RANGES, parse_facets, price_range_indices
from shoprec.core.ladder import levels_from_manifest
from shoprec.errors import RequestError
from shoprec.http.overload import DEADLINE_HEADER, LEVEL_HEADER, Overload
from shoprec.http.render import HitRenderer, dumps
from shoprec.http.schemas import FILTER_MAX_CHARS, MAX_PRICE, SearchOut
from shoprec.http.state import AppServices, Guard, dependencies
from shoprec.models.bundle import CatalogArrays
from shoprec.serving.accelerated import AcceleratedSearch
from shoprec.serving.admission import Deadline
from shoprec.serving.browse import Browse, Sort
from shoprec.serving.cache import CachedResult
from shoprec.serving.search import Pipeline, SearchQuery, SearchService
from shoprec.settings import Settings
from shoprec.types import Filters, Hit

SEARCH_PATH = "/v1/search"
MAX_PAGE = 10_000

# --- the contract --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FromSettings:
    """A limit or default that is the value of a setting."""

    name: str


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
Bound = float | FromSettings | None


@dataclass(frozen=True, slots=True)
class Param:
    """How one search parameter is given: what it means, its default, its limits (lengths for
    text, a range for numbers), and the header it is read from instead of the query string."""

    description: str
    default: object = REQUIRED
    min_length: int | None = None
    max_length: int | FromSettings | None = None
    ge: Bound = None
    le: Bound = None
    header: str | None = None


@dataclass(frozen=True, slots=True)
class SearchParams:
    """One search request's parameters, the contract of ``GET /v1/search`` (see the module
    docstring); an instance holds values validated by the route or the fast path."""

    q: Annotated[str, Param("the query", min_length=1, max_length=FromSettings("max_query_chars"))]
    k: Annotated[int, Param("how many results", default=FromSettings("default_k"), ge=1, le=FromSettings("max_k"))]
    user_id: Annotated[
        str | None,
        Param(
            "the shopper searching (personal ranking features)",
            default=None,
            min_length=1,
            max_length=FromSettings("max_id_chars"),
        ),
    ]
    category: Annotated[
        str | None,
        Param("only this category and below (`A > B`)", default=None, min_length=1, max_length=FILTER_MAX_CHARS),
    ]
    brand: Annotated[str | None, Param("only this brand", default=None, min_length=1, max_length=FILTER_MAX_CHARS)]
    min_price: Annotated[float | None, Param("the lowest price", default=None, ge=0, le=MAX_PRICE)]
    max_price: Annotated[float | None, Param("the highest price", default=None, ge=0, le=MAX_PRICE)]
    in_stock: Annotated[bool | None, Param("only products in (true) or out of (false) stock", default=None)]
    price_range: Annotated[
        str | None,
        Param(f"only these price ranges, `|`-separated: {', '.join(PRICE_RANGES)}", default=None, max_length=100),
    ]
    facets: Annotated[
        str | None, Param(f"count these facets, comma-separated: {', '.join(FACETS)}", default=None, max_length=100)
    ]
    sort: Annotated[Sort, Param("the order: the ranking, by price or by popularity", default="relevance")]
    page: Annotated[int, Param("which page of per_page results (1 is the first)", default=1, ge=1, le=MAX_PAGE)]
    per_page: Annotated[int | None, Param("results per page (default k)", default=None, ge=1, le=FromSettings("max_k"))]
    explain: Annotated[bool, Param("per-stage scores for each hit", default=False)]
    correct: Annotated[
        bool,
        Param(
            "search with typos corrected against the catalog's words (`correction` says which)",
            default=FromSettings("correct_typos"),
        ),
    ]
    highlight: Annotated[
        bool,
        Param("each hit's title HTML-escaped with the query's words in `<mark>` (`title_highlighted`)", default=False),
    ]
    pipeline: Annotated[
        Pipeline, Param("how to search; `full` steps down the degradation ladder under load", default="full")
    ]
    deadline_ms: Annotated[
        int | None,
        Param(
            "answer within this many ms, or get a 503",
            default=None,
            ge=FromSettings("deadline_min_ms"),
            le=FromSettings("deadline_max_ms"),
        ),
    ]
    header_deadline_ms: Annotated[
        int | None,
        Param(
            "the deadline as a header (the query parameter wins)",
            default=None,
            ge=FromSettings("deadline_min_ms"),
            le=FromSettings("deadline_max_ms"),
            header=DEADLINE_HEADER,
        ),
    ]

    def filters(self) -> Filters:
        return Filters(
            category=self.category,
            brand=self.brand,
            min_price=self.min_price,
            max_price=self.max_price,
            in_stock=self.in_stock,
            price_range=self.price_range,
        )

    def browse(self) -> Browse | None:
        """The page, order and facets asked for; None for a plain search (the first k hits).
        Bad facet names or price ranges are a :class:`RequestError`."""
        try:
            if self.price_range is not None:
                price_range_indices(self.price_range)
            if self.facets is None and self.sort == "relevance" and self.page == 1 and self.per_page is None:
                return None
            facets = parse_facets(self.facets) if self.facets is not None else ()
        except ValueError as exc:
            raise RequestError(str(exc)) from None
        limit = self.per_page or self.k
        return Browse(offset=(self.page - 1) * limit, limit=limit, sort=self.sort, facets=facets)


@dataclass(frozen=True, slots=True)
class SearchField:
    """One :class:`SearchParams` field resolved against the settings."""

    name: str
    annotation: Any  # as declared, e.g. ``int | None``
    kind: type | tuple[str, ...]  # str, int, float or bool; or a Literal's choices
    required: bool
    default: Any
    description: str
    min_length: int | None
    max_length: int | None
    ge: float | None
    le: float | None
    header: str | None

    def fastapi_parameter(self) -> inspect.Parameter:
        """The route's parameter for this field: a query parameter, or a header."""
        limits: dict[str, Any] = {
            name: value
            for name, value in (
                ("min_length", self.min_length),
                ("max_length", self.max_length),
                ("ge", self.ge),
                ("le", self.le),
            )
            if value is not None
        }
        if self.kind is float:
            limits["allow_inf_nan"] = False
        if self.header is not None:
            marker: Any = Header(alias=self.header, description=self.description, **limits)
        else:
            marker = Query(description=self.description, **limits)
        default = inspect.Parameter.empty if self.required else self.default
        return inspect.Parameter(
            self.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[self.annotation, marker]
        )


def _resolve(value: Any, settings: Settings) -> Any:
    return getattr(settings, value.name) if isinstance(value, FromSettings) else value


def _kind(annotation: Any) -> type | tuple[str, ...]:
    args = [a for a in get_args(annotation) if a is not type(None)]
    base = args[0] if get_origin(annotation) in (typing.Union, types.UnionType) else annotation
    if get_origin(base) is Literal:
        return tuple(str(a) for a in get_args(base))
    if base not in (str, int, float, bool):
        raise TypeError(f"search parameter type {annotation!r} has no plain form")
    return typing.cast(type, base)


def search_fields(settings: Settings) -> tuple[SearchField, ...]:
    """The contract resolved against ``settings``, in declaration order."""
    hints = typing.get_type_hints(SearchParams, include_extras=True)
    out = []
    for f in dataclasses.fields(SearchParams):
        annotation, param = get_args(hints[f.name])
        kind = _kind(annotation)
        ge, le = _resolve(param.ge, settings), _resolve(param.le, settings)
        if kind is int:  # an integer's bounds are integers in the schema too
            ge, le = (None if v is None else int(v) for v in (ge, le))
        out.append(
            SearchField(
                name=f.name,
                annotation=annotation,
                kind=kind,
                required=param.default is REQUIRED,
                default=_resolve(param.default, settings),
                description=param.description,
                min_length=param.min_length,
                max_length=_resolve(param.max_length, settings),
                ge=ge,
                le=le,
                header=param.header,
            )
        )
    return tuple(out)


# --- the handler ---------------------------------------------------------------------------

Render = Callable[[CatalogArrays, Sequence[Hit], bool], object]
SearchBody = tuple[dict[str, Any], dict[str, str]]


class SearchHandler:
    """The search for the route and the fast path alike: validation across parameters, the
    result cache, admission and the ladder level, the accelerated search, the audit sample,
    and the body (its results rendered by the caller's ``render``) with its headers."""

    def __init__(
        self,
        services: AppServices,
        *,
        accelerated: AcceleratedSearch,
        overload: Overload,
        inline_search_max_ms: float,
        relevance_window: int = 100,
        sample_audit: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.services = services
        self.accelerated = accelerated
        self.overload = overload
        self.inline_search_max_ms = inline_search_max_ms
        self.relevance_window = relevance_window  # the ranked results a browse's relevance order starts with
        self.sample_audit = sample_audit
        self.clock = clock

    async def __call__(self, request: Request, p: SearchParams, render: Render) -> SearchBody:
        deadline = self.overload.deadline(p.deadline_ms, p.header_deadline_ms)
        if not p.q.strip():
            raise RequestError("q must contain a non-space character")
        if p.min_price is not None and p.max_price is not None and p.min_price > p.max_price:
            raise RequestError(f"min_price ({p.min_price}) is greater than max_price ({p.max_price})")
        browse = p.browse()
        service = self.services.require()
        correction = service.correction(p.q) if p.correct else None
        text = p.q if correction is None else correction.corrected  # what is searched, cached and encoded
        k = p.k if browse is None else self.relevance_window  # a browse ranks one fixed window
        query = SearchQuery(text, k=k, filters=p.filters(), pipeline=p.pipeline, explain=p.explain, user_id=p.user_id)
        started = self.clock()
        result = self.accelerated.cached(service, query)  # at the requested quality: costs nothing
        if result is not None:
            self.overload.gate.note_cached()
            cached, timings = True, {"total_ms": (self.clock() - started) * 1000}
        else:
            result, cached, timings = await self._admitted(service, query, deadline)
        level = (result.level or "full") if p.pipeline == "full" else p.pipeline
        metrics = self.services.metrics
        if metrics is not None:
            metrics.search(level, timings, cached)
        if self.sample_audit():
            results = [h.product_id for h in result.hits]
            details = {"q": p.q, "k": p.k, "pipeline": result.pipeline, "model_version": service.bundle.version}
            await self.services.record("search", request, {**details, "results": results})
        hits, extra = result.hits, dict[str, Any]()
        if browse is not None:
            page = await self.accelerated.browse(service, query, result, browse)
            hits = tuple(page.hits)
            extra = {"total": page.total, "page": p.page, "per_page": browse.limit, "sort": browse.sort}
            if browse.facets:
                extra["facets"] = page.facets
        body = {
            "query": p.q,
            "k": p.k if browse is None else browse.limit,
            "pipeline": result.pipeline,
            "ranker": result.ranker,
            "personalized": result.personalized,
            "model_version": service.bundle.version,
            "degradation_level": level,
            "cached": cached,
            "results": self._highlighted(service, text, hits, p.explain)
            if p.highlight
            else render(service.bundle.catalog, hits, p.explain),
            "timings_ms": {key: math.floor(v * 1000.0 + 0.5) / 1000.0 for key, v in timings.items()},  # to the µs
            **extra,
            "correction": None if correction is None else correction.as_dict(),
        }
        return body, {LEVEL_HEADER: level}

    def _highlighted(
        self, service: SearchService, text: str, hits: Sequence[Hit], explain: bool
    ) -> list[dict[str, Any]]:
        """The hits as dicts, each with its title highlighted for ``text`` (as searched: corrected,
        with its synonyms)."""
        mark = service.highlighter(text)
        out = self.services.renderer.dicts(service.bundle.catalog, hits, explain)
        for hit in out:
            hit["title_highlighted"] = mark(hit["title"])
        return out

    async def _admitted(
        self, service: SearchService, query: SearchQuery, deadline: Deadline
    ) -> tuple[CachedResult, bool, dict[str, float]]:
        """The search once admitted, at the level the gate picked (``full`` requests) or as
        asked (an explicit pipeline), on the event loop when that level is measured cheap."""
        gate = self.overload.gate
        gate.chooser.use_ladder(service.bundle.version, lambda: levels_from_manifest(service.bundle.manifest))
        async with gate.admit(deadline) as level:
            if query.pipeline == "full":
                plan = gate.chooser.plan(level, self.inline_search_max_ms)
                query, inline = dataclasses.replace(query, pipeline=plan.pipeline, effort=plan.effort), plan.inline
            else:
                inline = gate.chooser.pipeline_runs_inline(query.pipeline, self.inline_search_max_ms)
            result, cached, timings = await self.accelerated.search(service, query, level=level.name, inline=inline)
            if inline:  # it held the loop's thread all along: its wall time is that thread's CPU
                gate.overhead.inline_search(timings["total_ms"] / 1000.0)
        return result, cached, timings


# --- the route -----------------------------------------------------------------------------


def router(
    fields: Sequence[SearchField], handler: SearchHandler, renderer: HitRenderer, guards: Sequence[Guard]
) -> APIRouter:
    """``GET /v1/search`` with its query parameters derived from ``fields``."""

    async def search(request: Request, **values: Any) -> Response:
        """Ranked products for a query, with filters; per-stage scores when ``explain``.

        Under load the default ``full`` pipeline steps down the degradation ladder;
        ``degradation_level`` (and the ``X-Degradation-Level`` header) says which level
        served. A request that cannot be served within its deadline (``deadline_ms`` or
        ``X-Deadline-Ms``) or finds the queue full gets a fast 503 with ``Retry-After``.

        Plain requests are answered by :class:`~shoprec.http.fastpath.FastPath` with
        this same handler; this route validates (and refuses) the rest."""
        body, headers = await handler(request, SearchParams(**values), renderer.dicts)
        # the body as the fast path writes it (``correction: null`` kept): the response model documents it
        return Response(dumps(body), media_type="application/json", headers=headers)

    search.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
            *(f.fastapi_parameter() for f in fields),
        ]
    )
    routes = APIRouter(tags=["search"])
    routes.add_api_route(
        SEARCH_PATH,
        search,
        methods=["GET"],
        response_model=SearchOut,
        response_model_exclude_none=True,
        dependencies=dependencies(guards),
    )
    return routes
