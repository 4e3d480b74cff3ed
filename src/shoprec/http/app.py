"""The ASGI app factory. Routes are built from the settings so that the OpenAPI spec
documents the real limits (query length, ``k``, batch size)."""

import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shoprec import __version__
from shoprec.adapters.eventlog import JsonlEventLog
from shoprec.catalog.loaders import product_to_json
from shoprec.errors import NotReadyError, RequestError
from shoprec.http import errors as http_errors
from shoprec.http.middleware import BodyLimitMiddleware
from shoprec.models.bundle import load_bundle
from shoprec.serving.recommend import RecommendService
from shoprec.serving.search import SearchService
from shoprec.settings import Settings
from shoprec.types import Event, EventSink, Filters

log = logging.getLogger(__name__)

PipelineName = Literal["bm25", "dense", "hybrid", "full"]


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
    price: float | None
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


class AppState:
    """What the routes share: the search service (None until loaded) and the event sink."""

    def __init__(self, settings: Settings, events: EventSink) -> None:
        self.settings = settings
        self.events = events
        self.search: SearchService | None = None
        self.recommend: RecommendService | None = None
        self.load_error: str | None = None

    def require(self) -> SearchService:
        if self.search is None:
            why = f" ({self.load_error})" if self.load_error else ""
            raise NotReadyError(f"artifacts are not loaded yet{why}")
        return self.search


def _replay_posted_events(events: EventSink, search: SearchService, recommend: RecommendService | None) -> None:
    """Events posted before a restart are reflected after it: feed the stored log back in."""
    read = getattr(events, "read", None)
    if read is None:
        return
    posted = list(read())
    search.users.add(posted)
    if recommend is not None:
        recommend.add(posted)


def _load_in_background(state: AppState) -> None:
    settings = state.settings
    try:
        if settings.artifacts is None:
            raise NotReadyError("no artifacts configured (set SHOPREC_ARTIFACTS or --artifacts)")
        bundle = load_bundle(settings.artifacts, check=settings.verify_artifacts, threads=settings.threads)
        service = SearchService(
            bundle,
            lexical_candidates=settings.lexical_candidates,
            dense_candidates=settings.dense_candidates,
        )
        recommend = RecommendService.load(bundle.folder, bundle.catalog, threads=settings.threads)
        if recommend is not None:
            recommend.add(sorted(bundle.user_events, key=lambda e: e.timestamp), update_models=False)
        _replay_posted_events(state.events, service, recommend)
        state.recommend = recommend
        state.search = service
    except Exception as exc:  # reported by /readyz and every request; the process stays up
        state.load_error = str(exc)
        log.error("could not load artifacts: %s", exc)


def create_app(
    settings: Settings,
    *,
    search: SearchService | None = None,
    recommend: RecommendService | None = None,
    events: EventSink | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Build the app. Without ``search`` the artifacts in ``settings`` load in the background
    at start-up; ``/readyz`` says when they are in."""
    sink = events or JsonlEventLog(settings.data_dir / "events.jsonl")
    state = AppState(settings, sink)
    state.search = search
    state.recommend = recommend
    if search is not None:
        _replay_posted_events(sink, search, recommend)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if state.search is None:
            threading.Thread(target=_load_in_background, args=(state,), daemon=True).start()
        yield

    app = FastAPI(
        title="shoprec",
        version=__version__,
        description="Product search and recommendations for online shops.",
        lifespan=lifespan,
    )
    app.state.shoprec = state
    http_errors.install(app)
    s = settings
    IdStr = Annotated[str, Path(min_length=1, max_length=s.max_id_chars)]
    Price = Annotated[float | None, Query(ge=0, le=1e12, allow_inf_nan=False)]
    Filter = Annotated[str | None, Query(min_length=1, max_length=200)]

    def hit_out(service: SearchService, pid: str, score: float, stages: dict[str, float] | None) -> HitOut:
        p = service.product(pid)
        return HitOut(
            id=p.id,
            title=p.title,
            brand=p.brand,
            category=p.category,
            price=p.price,
            in_stock=p.in_stock,
            score=score if math.isfinite(score) else 0.0,
            stages=stages,
        )

    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz() -> Health:
        """Alive (the process answers), whether or not artifacts are loaded."""
        return Health(status="ok", version=__version__)

    @app.get("/readyz", response_model=Ready, tags=["ops"], responses={503: {"description": "not ready"}})
    def readyz() -> Ready:
        """Ready: artifacts loaded and verified."""
        service = state.require()
        b = service.bundle
        return Ready(status="ready", model_version=b.version, model_id=b.model_id, products=len(b.catalog))

    @app.get("/v1/search", response_model=SearchOut, response_model_exclude_none=True, tags=["search"])
    async def search_route(
        q: Annotated[str, Query(min_length=1, max_length=s.max_query_chars, description="the query")],
        k: Annotated[int, Query(ge=1, le=s.max_k)] = s.default_k,
        user_id: Annotated[str | None, Query(min_length=1, max_length=s.max_id_chars)] = None,
        category: Filter = None,
        brand: Filter = None,
        min_price: Price = None,
        max_price: Price = None,
        in_stock: bool | None = None,
        explain: bool = False,
        pipeline: PipelineName = "full",
    ) -> SearchOut:
        """Ranked products for a query, with filters; per-stage scores when ``explain``."""
        if not q.strip():
            raise RequestError("q must contain a non-space character")
        if min_price is not None and max_price is not None and min_price > max_price:
            raise RequestError(f"min_price ({min_price}) is greater than max_price ({max_price})")
        service = state.require()
        filters = Filters(
            category=category,
            brand=brand,
            min_price=min_price,
            max_price=max_price,
            in_stock=in_stock,
        )
        result = await run_in_threadpool(
            service.search, q, k=k, filters=filters, pipeline=pipeline, explain=explain, user_id=user_id
        )
        return SearchOut(
            query=q,
            k=k,
            pipeline=result.pipeline,
            ranker=result.ranker,
            personalized=result.personalized,
            model_version=service.bundle.version,
            results=[hit_out(service, h.product_id, h.score, dict(h.stages) if explain else None) for h in result.hits],
            timings_ms={key: round(v, 3) for key, v in result.timings_ms.items()},
        )

    @app.get(
        "/v1/products/{product_id}",
        response_model=ProductOut,
        tags=["catalog"],
        responses={404: {"description": "no such product"}},
    )
    def product_route(product_id: IdStr) -> ProductOut:
        """One product by id."""
        return ProductOut(**product_to_json(state.require().product(product_id)))

    @app.get(
        "/v1/similar/{product_id}",
        response_model=SimilarOut,
        tags=["search"],
        responses={404: {"description": "no such product"}},
    )
    async def similar_route(product_id: IdStr, k: Annotated[int, Query(ge=1, le=s.max_k)] = s.default_k) -> SimilarOut:
        """Products similar to one product (content similarity of their embeddings)."""
        service = state.require()
        hits = await run_in_threadpool(service.similar, product_id, k)
        return SimilarOut(
            id=product_id,
            k=k,
            strategy="content",
            results=[hit_out(service, h.product_id, h.score, None) for h in hits],
        )

    @app.get("/v1/recommend", response_model=RecommendOut, response_model_exclude_none=True, tags=["recommend"])
    async def recommend_route(
        user_id: Annotated[str | None, Query(min_length=1, max_length=s.max_id_chars)] = None,
        k: Annotated[int, Query(ge=1, le=s.max_k)] = s.default_k,
        exclude_seen: bool = True,
        category: Filter = None,
    ) -> RecommendOut:
        """Recommended for you: the sequential model over the user's history; unknown users
        get the popularity fallback. ``strategy`` says which served."""
        service = state.require()
        if state.recommend is None:
            raise NotReadyError("these artifacts hold no recommender (build with --events)")
        rec = await run_in_threadpool(
            state.recommend.recommend,
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
            results=[hit_out(service, pid, score, None) for pid, score in rec.items],
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

    app.add_middleware(BodyLimitMiddleware, max_body_bytes=s.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and ``shoprec serve --workers N``: settings from env."""
    settings = Settings.load()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(settings)
