"""The ASGI app factory. Routes are built from the settings so that the OpenAPI spec
documents the real limits (query length, ``k``, batch size)."""

import asyncio
import logging
import math
import random
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path as PathLib
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shoprec import __version__
from shoprec.adapters.eventlog import JsonlEventLog
from shoprec.catalog.loaders import product_to_json
from shoprec.core.ladder import levels_from_manifest
from shoprec.errors import NotReadyError, RequestError
from shoprec.http import errors as http_errors
from shoprec.http.auth import Authenticator, actor, require_role
from shoprec.http.fastpath import (
    FILTER_MAX_CHARS,
    MAX_PRICE,
    FastPath,
    FastPathStats,
    HitRenderer,
    SearchParams,
    scored,
)
from shoprec.http.middleware import LEASED, BodyLimitMiddleware, FrontDoorShedder, LeaseMiddleware
from shoprec.http.overload import DEADLINE_HEADER, LEVEL_HEADER, Overload
from shoprec.models.bundle import Bundle, CatalogArrays
from shoprec.security.apikeys import KeyStore
from shoprec.security.audit import AuditLog
from shoprec.serving.accelerated import AcceleratedSearch, apply_remote_update
from shoprec.serving.cache import SearchCache
from shoprec.serving.looplag import LoopLagMonitor
from shoprec.serving.recommend import RecommendService
from shoprec.serving.runtime import Live, Runtime
from shoprec.serving.search import Effort, Pipeline, SearchService
from shoprec.settings import Settings
from shoprec.types import Event, EventSink, Filters, Hit, Product

log = logging.getLogger(__name__)


class ProductOut(BaseModel):
    id: str
    title: str
    description: str = ""
    category: str = ""
    brand: str = ""
    price: float | None = None
    in_stock: bool = True
    attributes: dict[str, str] = Field(default_factory=dict)


class HitOut(BaseModel):
    id: str
    title: str
    brand: str
    category: str
    price: float | None = None
    in_stock: bool
    score: float
    stages: dict[str, float] | None = None


class SearchOut(BaseModel):
    query: str
    k: int
    pipeline: str
    ranker: str
    personalized: bool
    model_version: str
    degradation_level: str = Field(description="the degradation ladder level that served this response")
    cached: bool = Field(default=False, description="served from the result cache")
    results: list[HitOut]
    timings_ms: dict[str, float]


class SimilarOut(BaseModel):
    id: str
    k: int
    strategy: str
    results: list[HitOut]
    also_bought: list[HitOut] = Field(default_factory=list)


class RecommendOut(BaseModel):
    user_id: str | None
    k: int
    strategy: str
    history_length: int
    model_version: str
    results: list[HitOut]


class EventsAccepted(BaseModel):
    accepted: int
    unknown_items: list[str]


class Health(BaseModel):
    status: str
    version: str


class Ready(BaseModel):
    status: str
    model_version: str
    model_id: str
    products: int


class ModelOut(BaseModel):
    version: str
    model_id: str
    folder: str
    source: str
    registry_version: str | None
    loaded_at: float
    signed_by: str | None
    encrypted: bool
    products: int
    inflight: int


class ProductUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False)
    in_stock: bool | None = None


class ProductUpdateOut(BaseModel):
    id: str
    removed: bool
    product: ProductOut | None = None
    invalidated_results: int = Field(description="cached results on this replica that showed the product")


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    artifacts: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="artifacts folder to load; default: the registry's current version, else the configured one",
    )


class AppState:
    """What the routes share: the runtime holding the live version, and the event sink."""

    def __init__(self, settings: Settings, events: EventSink, runtime: Runtime | None = None) -> None:
        self.settings = settings
        self.events = events
        self.runtime = runtime or Runtime(settings, lambda b: _build_services(settings, events, b))

    def live(self) -> Live | None:
        return LEASED.get() or self.runtime.current

    @property
    def search(self) -> SearchService | None:
        live = self.live()
        return live.search if live is not None else None

    @property
    def recommend(self) -> RecommendService | None:
        live = self.live()
        return live.recommend if live is not None else None

    @property
    def load_error(self) -> str | None:
        return self.runtime.load_error

    def require(self) -> SearchService:
        live = self.live()
        if live is None:
            return self.runtime.require().search  # raises NotReadyError with the reason
        return live.search


def _replay_posted_events(events: EventSink, search: SearchService, recommend: RecommendService | None) -> None:
    """Events posted before a restart are reflected after it: feed the stored log back in."""
    read = getattr(events, "read", None)
    if read is None:
        return
    posted = list(read())
    search.users.add(posted)
    if recommend is not None:
        recommend.add(posted)


def _build_services(
    settings: Settings, events: EventSink, bundle: Bundle
) -> tuple[SearchService, RecommendService | None]:
    """The services over one loaded (verified) bundle, with posted events replayed."""
    service = SearchService(
        bundle,
        lexical_candidates=settings.lexical_candidates,
        dense_candidates=settings.dense_candidates,
    )
    recommend = RecommendService.load(bundle.files_root, bundle.catalog, threads=settings.threads)
    if recommend is not None:
        recommend.add(sorted(bundle.user_events, key=lambda e: e.timestamp), update_models=False)
    _replay_posted_events(events, service, recommend)
    # One query through every stage before the version takes traffic, so the first shoppers do
    # not pay for lazy initialisation and page faults; a version that cannot answer fails here.
    if bundle.catalog.products:
        query = " ".join(bundle.catalog.products[0].title.split()[:3]) or "a"
        service.search(query, k=10)
        service.search(query, k=10, pipeline="bm25")  # the ladder's cheapest level has its own path
    return service, recommend


def _load_in_background(state: AppState) -> None:
    runtime = state.runtime
    try:
        if state.settings.registry is not None:
            runtime.poll_registry()
            if runtime.current is not None or state.settings.artifacts is None:
                return
        runtime.load(actor="system", source="settings")
    except Exception as exc:  # reported by /readyz and every request; the process stays up
        runtime.load_error = runtime.load_error or str(exc)
        log.error("could not load artifacts: %s", exc)


def create_app(
    settings: Settings,
    *,
    search: SearchService | None = None,
    recommend: RecommendService | None = None,
    events: EventSink | None = None,
    wall_clock: Callable[[], float] = time.time,
    keys: KeyStore | None = None,
    audit: AuditLog | None = None,
    audit_rng: random.Random | None = None,
) -> FastAPI:
    """Build the app. Without ``search`` the artifacts in ``settings`` (or the registry's
    current version) load in the background at start-up; ``/readyz`` says when they are in.
    ``keys`` and ``audit`` default to the files named by the settings."""
    sink = events or JsonlEventLog(settings.data_dir / "events.jsonl")
    if keys is None and settings.keys_file is not None:
        keys = KeyStore(settings.keys_file, wall_clock)
    if audit is None and settings.audit_log is not None:
        audit = AuditLog(settings.audit_log, wall_clock, sample_rate=settings.audit_search_sample_rate)
    rng = audit_rng or random.Random()
    runtime = Runtime(settings, lambda b: _build_services(settings, sink, b), audit=audit, clock=wall_clock)
    state = AppState(settings, sink, runtime)
    if search is not None:
        _replay_posted_events(sink, search, recommend)
        runtime.install(search, recommend)
    stop_polling = threading.Event()
    fast = _accelerated_search(settings)
    fast.cache.on_catalog_update(lambda update: apply_remote_update(state.search, update))

    loop_lag = LoopLagMonitor(settings.shed_loop_lag_ms)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if runtime.current is None:
            threading.Thread(target=_load_in_background, args=(state,), daemon=True).start()
        if settings.registry is not None:
            threading.Thread(
                target=runtime.run_registry_poller, args=(stop_polling,), name="shoprec-registry", daemon=True
            ).start()
        await run_in_threadpool(fast.cache.start_listening)
        probe = asyncio.create_task(loop_lag.run()) if settings.shed_loop_lag_ms > 0 else None
        yield
        if probe is not None:
            probe.cancel()
        stop_polling.set()
        await run_in_threadpool(fast.cache.close)

    app = FastAPI(
        title="shoprec",
        version=__version__,
        description="Product search and recommendations for online shops.",
        lifespan=lifespan,
    )
    app.state.shoprec = state
    app.state.loop_lag = loop_lag
    app.state.authenticator = Authenticator(keys, anonymous_read=settings.anonymous_read)
    overload = Overload.from_settings(settings)
    overload.gate.shedding_upstream = lambda: loop_lag.overloaded  # the front door refuses: step down
    app.state.overload = overload
    # after authentication, which leaves the caller's key on request.state
    search_role = [Depends(require_role("search")), Depends(overload.rate_limit)]
    events_role = [Depends(require_role("events")), Depends(overload.rate_limit)]

    async def audit_admin(request: Request) -> None:
        """Every admin request is recorded, after authentication, with the key that made it."""
        if audit is not None:
            details = {"method": request.method, "path": request.url.path, "query": request.url.query or None}
            await run_in_threadpool(_audit, audit, "admin.request", actor(request), details)

    admin_role = [Depends(require_role("admin")), Depends(audit_admin)]
    http_errors.install(app)
    s = settings
    IdStr = Annotated[str, Path(min_length=1, max_length=s.max_id_chars)]
    # the same limits the fast path checks (one definition, in http/fastpath.py)
    Price = Annotated[float | None, Query(ge=0, le=MAX_PRICE, allow_inf_nan=False)]
    Filter = Annotated[str | None, Query(min_length=1, max_length=FILTER_MAX_CHARS)]

    alive = Health(status="ok", version=__version__)

    @app.get("/healthz", response_model=Health, tags=["ops"])
    async def healthz() -> Health:
        """Alive (the process answers), whether or not artifacts are loaded."""
        return alive

    @app.get("/readyz", response_model=Ready, tags=["ops"], responses={503: {"description": "not ready"}})
    async def readyz() -> Ready:
        """Ready: artifacts loaded and verified."""
        service = state.require()
        b = service.bundle
        return Ready(status="ready", model_version=b.version, model_id=b.model_id, products=len(b.catalog))

    renderer = HitRenderer()

    def hit_json(
        service: SearchService, pid: str, score: float, stages: dict[str, float] | None, product: Product | None = None
    ) -> dict[str, Any]:
        """A hit as ``HitOut`` serialises with ``None`` fields left out."""
        return scored(renderer.fields(product or service.product(pid)), score, stages)

    async def search_payload(request: Request, p: SearchParams) -> tuple[dict[str, Any], dict[str, str]]:
        """The route's ``SearchOut`` body (``None`` fields left out) and response headers."""
        return await search_body(request, p, renderer.dicts)

    async def search_payload_fast(request: Request, p: SearchParams) -> tuple[dict[str, Any], dict[str, str]]:
        """The same for the fast path, its results already serialised (an orjson fragment)."""
        return await search_body(request, p, renderer.fragment)

    async def search_body(
        request: Request, p: SearchParams, render: Callable[[CatalogArrays, Sequence[Hit], bool], object]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The search itself, for the route and the fast path alike: the body, its results
        rendered by ``render``, and the response headers."""
        deadline = overload.deadline(p.deadline_ms, p.header_deadline_ms)
        if not p.q.strip():
            raise RequestError("q must contain a non-space character")
        if p.min_price is not None and p.max_price is not None and p.min_price > p.max_price:
            raise RequestError(f"min_price ({p.min_price}) is greater than max_price ({p.max_price})")
        service = state.require()
        filters = Filters(
            category=p.category,
            brand=p.brand,
            min_price=p.min_price,
            max_price=p.max_price,
            in_stock=p.in_stock,
        )
        # a cached answer at the requested quality costs nothing: served before admission
        started = time.perf_counter()
        result = fast.cached(
            service,
            p.q,
            k=p.k,
            filters=filters,
            pipeline=p.pipeline,
            effort=None,
            explain=p.explain,
            user_id=p.user_id,
        )
        cached = result is not None
        if cached:
            overload.gate.note_cached()
        timings: dict[str, float] = {"total_ms": (time.perf_counter() - started) * 1000}
        if result is None:
            overload.gate.use_ladder(service.bundle.version, lambda: levels_from_manifest(service.bundle.manifest))
            async with overload.gate.admit(deadline) as level:
                effort: Effort | None
                if p.pipeline == "full":
                    served, effort, inline = overload.gate.plan(level, settings.inline_search_max_ms)
                else:
                    served, effort = p.pipeline, None
                    inline = overload.gate.pipeline_runs_inline(p.pipeline, settings.inline_search_max_ms)
                result, cached, timings = await fast.search(
                    service,
                    p.q,
                    k=p.k,
                    filters=filters,
                    pipeline=served,
                    effort=effort,
                    explain=p.explain,
                    user_id=p.user_id,
                    level=level.name,
                    inline=inline,
                )
                if inline:  # it held the loop's thread all along: its wall time is that thread's CPU
                    overload.gate.note_inline_cpu(timings["total_ms"] / 1000.0)
        degradation_level = (result.level or "full") if p.pipeline == "full" else p.pipeline
        if audit is not None and audit.should_sample(rng):
            await run_in_threadpool(
                _audit,
                audit,
                "search",
                actor(request),
                {
                    "q": p.q,
                    "k": p.k,
                    "pipeline": result.pipeline,
                    "model_version": service.bundle.version,
                    "results": [h.product_id for h in result.hits],
                },
            )
        body = {
            "query": p.q,
            "k": p.k,
            "pipeline": result.pipeline,
            "ranker": result.ranker,
            "personalized": result.personalized,
            "model_version": service.bundle.version,
            "degradation_level": degradation_level,
            "cached": cached,
            "results": render(service.bundle.catalog, result.hits, p.explain),
            "timings_ms": {key: math.floor(v * 1000.0 + 0.5) / 1000.0 for key, v in timings.items()},  # to the µs
        }
        return body, {LEVEL_HEADER: degradation_level}

    @app.get(
        "/v1/search",
        response_model=SearchOut,
        response_model_exclude_none=True,
        tags=["search"],
        dependencies=search_role,
    )
    async def search_route(
        request: Request,
        response: Response,
        q: Annotated[str, Query(min_length=1, max_length=s.max_query_chars, description="the query")],
        k: Annotated[int, Query(ge=1, le=s.max_k)] = s.default_k,
        user_id: Annotated[str | None, Query(min_length=1, max_length=s.max_id_chars)] = None,
        category: Filter = None,
        brand: Filter = None,
        min_price: Price = None,
        max_price: Price = None,
        in_stock: bool | None = None,
        explain: bool = False,
        pipeline: Pipeline = "full",
        deadline_ms: Annotated[int | None, Query(ge=s.deadline_min_ms, le=s.deadline_max_ms)] = None,
        header_deadline_ms: Annotated[
            int | None, Header(alias=DEADLINE_HEADER, ge=s.deadline_min_ms, le=s.deadline_max_ms)
        ] = None,
    ) -> dict[str, Any]:
        """Ranked products for a query, with filters; per-stage scores when ``explain``.

        Under load the default ``full`` pipeline steps down the degradation ladder;
        ``degradation_level`` (and the ``X-Degradation-Level`` header) says which level
        served. A request that cannot be served within its deadline (``deadline_ms`` or
        ``X-Deadline-Ms``) or finds the queue full gets a fast 503 with ``Retry-After``.

        Plain requests are answered by :class:`~shoprec.http.fastpath.FastPath` with
        this same handler; this route validates (and refuses) the rest."""
        params = SearchParams(
            q=q,
            k=k,
            user_id=user_id,
            category=category,
            brand=brand,
            min_price=min_price,
            max_price=max_price,
            in_stock=in_stock,
            explain=explain,
            pipeline=pipeline,
            deadline_ms=deadline_ms,
            header_deadline_ms=header_deadline_ms,
        )
        body, headers = await search_payload(request, params)
        response.headers.update(headers)
        return body

    @app.get(
        "/v1/products/{product_id}",
        response_model=ProductOut,
        tags=["catalog"],
        responses={404: {"description": "no such product"}},
        dependencies=search_role,
    )
    async def product_route(product_id: IdStr) -> ProductOut:
        """One product by id."""
        return ProductOut(**product_to_json(state.require().product(product_id)))

    @app.patch(
        "/v1/products/{product_id}",
        response_model=ProductUpdateOut,
        response_model_exclude_none=True,
        tags=["catalog"],
        responses={404: {"description": "no such product"}},
        dependencies=admin_role,
    )
    async def update_product_route(product_id: IdStr, body: ProductUpdateIn) -> ProductUpdateOut:
        """Change a product's price or stock. Filters see it at once; cached results that show
        the product are dropped here and, with Redis, on every replica."""
        service = state.require()
        dropped, _ = await fast.update_product(service, product_id, price=body.price, in_stock=body.in_stock)
        product = ProductOut(**product_to_json(service.product(product_id)))
        return ProductUpdateOut(id=product_id, removed=False, product=product, invalidated_results=dropped)

    @app.delete(
        "/v1/products/{product_id}",
        response_model=ProductUpdateOut,
        response_model_exclude_none=True,
        tags=["catalog"],
        responses={404: {"description": "no such product"}},
        dependencies=admin_role,
    )
    async def remove_product_route(product_id: IdStr) -> ProductUpdateOut:
        """Take a product off sale: it leaves search, similar and recommendations, and the cached
        results that showed it are dropped."""
        dropped, _ = await fast.update_product(state.require(), product_id, remove=True)
        return ProductUpdateOut(id=product_id, removed=True, invalidated_results=dropped)

    @app.get(
        "/v1/similar/{product_id}",
        response_model=SimilarOut,
        tags=["search"],
        responses={404: {"description": "no such product"}},
        dependencies=search_role,
    )
    async def similar_route(product_id: IdStr, k: Annotated[int, Query(ge=1, le=s.max_k)] = s.default_k) -> SimilarOut:
        """Products similar to one product (content similarity of their embeddings)."""
        service = state.require()
        hits = await run_in_threadpool(service.similar, product_id, k)
        return SimilarOut(
            id=product_id,
            k=k,
            strategy="content",
            results=[HitOut(**hit_json(service, h.product_id, h.score, None)) for h in hits],
        )

    @app.get(
        "/v1/recommend",
        response_model=RecommendOut,
        response_model_exclude_none=True,
        tags=["recommend"],
        dependencies=search_role,
    )
    async def recommend_route(
        user_id: Annotated[str | None, Query(min_length=1, max_length=s.max_id_chars)] = None,
        k: Annotated[int, Query(ge=1, le=s.max_k)] = s.default_k,
        exclude_seen: bool = True,
        category: Filter = None,
    ) -> RecommendOut:
        """Recommended for you: the sequential model over the user's history; unknown users
        get the popularity fallback. ``strategy`` says which served."""
        service = state.require()
        recommender = state.recommend
        if recommender is None:
            raise NotReadyError("these artifacts hold no recommender (build with --events)")
        rec = await run_in_threadpool(
            recommender.recommend,
            user_id,
            k,
            exclude_seen=exclude_seen,
            filters=Filters(category=category) if category else None,
        )
        return RecommendOut(
            user_id=user_id,
            k=k,
            strategy=rec.strategy,
            history_length=rec.history_length,
            model_version=service.bundle.version,
            results=[HitOut(**hit_json(service, pid, score, None)) for pid, score in rec.items if service.on_sale(pid)],
        )

    class EventIn(BaseModel):
        model_config = ConfigDict(extra="forbid")
        user_id: str = Field(min_length=1, max_length=s.max_id_chars)
        item_id: str = Field(min_length=1, max_length=s.max_id_chars)
        type: Literal["view", "click", "cart", "purchase"]
        timestamp: float | None = Field(default=None, ge=0, le=1e11, allow_inf_nan=False)
        query: str | None = Field(default=None, max_length=s.max_query_chars)

    class EventsIn(BaseModel):
        model_config = ConfigDict(extra="forbid")
        events: list[EventIn] = Field(min_length=1, max_length=s.max_events_per_batch)

    @app.post(
        "/v1/events",
        response_model=EventsAccepted,
        tags=["events"],
        responses={413: {"description": "body too large"}},
        dependencies=events_role,
    )
    async def events_route(body: EventsIn) -> EventsAccepted:
        """Record a batch of user events (appended durably before the reply)."""
        now = wall_clock()
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
        unknown: list[str] = []
        if state.search is not None:
            index_of = state.search.bundle.catalog.index_of
            unknown = sorted({e.item_id for e in batch if e.item_id not in index_of})
        n = await run_in_threadpool(state.events.append, batch)
        if state.search is not None:  # near-line: the next request already sees these
            state.search.users.add(batch)
        if state.recommend is not None:
            state.recommend.add(batch)
        return EventsAccepted(accepted=n, unknown_items=unknown[:100])

    @app.get("/v1/admin/model", response_model=ModelOut, tags=["admin"], dependencies=admin_role)
    async def admin_model() -> ModelOut:
        """The version being served: where it came from, who signed it, requests in flight."""
        return ModelOut(**runtime.require().describe())

    @app.post(
        "/v1/admin/reload",
        response_model=ModelOut,
        tags=["admin"],
        dependencies=admin_role,
        responses={422: {"description": "the artifacts failed a check; the current version keeps serving"}},
    )
    async def admin_reload(request: Request, body: ReloadIn | None = None) -> ModelOut:
        """Load a version beside the current one, verify it, switch atomically, drain the old.
        A refused version leaves the current one serving."""
        who = actor(request)
        target = body.artifacts if body is not None else None
        if target is None and settings.registry is None and settings.artifacts is None:
            raise RequestError('nothing to reload: give {"artifacts": DIR} (no artifacts or registry configured)')
        if target is None and settings.registry is not None:
            live = await run_in_threadpool(runtime.poll_registry)
            if live is None:
                live = runtime.require()
        else:
            live = await run_in_threadpool(lambda: runtime.load(None if target is None else PathLib(target), actor=who))
        return ModelOut(**live.describe())

    authenticator: Authenticator = app.state.authenticator

    async def search_guard(request: Request) -> None:  # the route's search_role, for the fast path
        await authenticator.resolve(request, "search")
        await overload.rate_limit(request)

    app.state.search_fast_path = FastPathStats()
    app.add_middleware(
        FastPath,
        settings=s,
        guards=(search_guard,),
        handler=search_payload_fast,
        health=alive.model_dump(),
        stats=app.state.search_fast_path,
    )
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=s.max_body_bytes)
    app.add_middleware(LeaseMiddleware, runtime=runtime)
    # outermost: refuses model-backed requests before anything else runs while the loop lags
    app.add_middleware(FrontDoorShedder, monitor=loop_lag, paths=("/v1/search", "/v1/recommend", "/v1/similar"))
    return app


def _accelerated_search(settings: Settings) -> AcceleratedSearch:
    """The caches (shared through Redis when ``redis_url`` is set) and the encoder batcher."""
    shared = None
    if settings.redis_url is not None:
        from shoprec.adapters.redis import RedisStore

        shared = RedisStore(settings.redis_url)
    elif settings.workers > 1:
        log.warning("workers=%d and no redis_url: a catalog update reaches only the worker it hits", settings.workers)
    cache = SearchCache(
        embedding_entries=settings.embedding_cache_entries,
        embedding_ttl_s=settings.embedding_cache_ttl_s,
        result_entries=settings.result_cache_entries,
        result_ttl_s=settings.result_cache_ttl_s,
        shared=shared,
    )
    return AcceleratedSearch(
        cache,
        batch_max_size=settings.batch_max_size,
        batch_wait_s=settings.batch_wait_s,
        batch_target_s=settings.batch_target_s,
        run_sync=run_in_threadpool,
    )


def _audit(audit: AuditLog, action: str, who: str, details: dict[str, Any]) -> None:
    try:
        audit.append(action, who, details)
    except Exception:  # a broken log must not take the request down; it is loud in the log
        log.exception("could not append %s to the audit log", action)


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and ``shoprec serve --workers N``: settings from env."""
    settings = Settings.load()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000.0)  # this serving process only
    return create_app(settings)
