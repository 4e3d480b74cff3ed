"""The ASGI app factory: wires the shared services, the guards, one router per resource
(:mod:`shoprec.http.routes`), the error mapping and the middleware. Routes are built from the
settings so that the OpenAPI spec documents the real limits (query length, ``k``, batch size)."""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from shoprec import __version__
from shoprec.adapters.eventlog import JsonlEventLog
from shoprec.adapters.eventstream import RedisEventStream
from shoprec.adapters.jobs import JobQueue
from shoprec.adapters.nearline import NearlineStore
from shoprec.core.window import RequestWindow
from shoprec.errors import ConfigError
from shoprec.http import errors as http_errors
from shoprec.http.auth import Authenticator, from_loopback
from shoprec.http.fastpath import FastPath, FastPathStats
from shoprec.http.logs import configure_logging
from shoprec.http.middleware import BodyLimitMiddleware, FrontDoorShedder, LeaseMiddleware
from shoprec.http.observe import RequestLog, RequestObserver, RouteTemplates
from shoprec.http.overload import Overload
from shoprec.http.pages import routes as page_routes
from shoprec.http.render import HitRenderer
from shoprec.http.routes import admin as admin_routes
from shoprec.http.routes import catalog as catalog_routes
from shoprec.http.routes import events as events_routes
from shoprec.http.routes import jobs as jobs_routes
from shoprec.http.routes import metrics as metrics_routes
from shoprec.http.routes import ops as ops_routes
from shoprec.http.routes import recommend as recommend_routes
from shoprec.http.routes import registry as registry_routes
from shoprec.http.routes import rules as rules_routes
from shoprec.http.routes import search as search_routes
from shoprec.http.routes import suggest as suggest_routes
from shoprec.http.state import AppServices, Guards
from shoprec.http.telemetry import MetricsFeed
from shoprec.security.apikeys import KeyStore
from shoprec.security.audit import AuditLog
from shoprec.serving.accelerated import AcceleratedSearch, apply_remote_update
from shoprec.serving.cache import SearchCache
from shoprec.serving.looplag import LoopLagMonitor
from shoprec.serving.merchandising import Merchandiser
from shoprec.serving.recommend import RecommendService
from shoprec.serving.rulestore import RuleStore
from shoprec.serving.runtime import Runtime
from shoprec.serving.search import SearchService
from shoprec.serving.services import build_services, replay_posted_events
from shoprec.settings import Settings
from shoprec.types import EventSink, Metrics

log = logging.getLogger(__name__)

MODEL_BACKED_PATHS = ("/v1/search", "/v1/recommend", "/v1/similar")
# who may go without a key where a setting allows it (metrics_anonymous, storefront_anonymous)
ANONYMOUS: dict[str, Callable[[Request], bool] | None] = {
    "loopback": from_loopback,
    "any": lambda _: True,
    "none": None,
}


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
    metrics: Metrics | None = None,
) -> FastAPI:
    """Build the app. Without ``search`` the artifacts in ``settings`` (or the registry's
    current version) load in the background at start-up; ``/readyz`` says when they are in.
    ``keys`` and ``audit`` default to the files named by the settings, ``metrics`` to
    Prometheus metrics when the ``metrics`` setting is on."""
    nearline = stream = None
    if events is None and settings.events_backend == "redis":
        stream, nearline = event_stream(settings)
        events = stream
    sink = events or JsonlEventLog(settings.data_dir / "events.jsonl")
    if keys is None and settings.keys_file is not None:
        keys = KeyStore(settings.keys_file, wall_clock)
    if audit is None and settings.audit_log is not None:
        audit = AuditLog(settings.audit_log, wall_clock, sample_rate=settings.audit_search_sample_rate)
    if metrics is None and settings.metrics:
        metrics = prometheus_metrics(settings)
    accelerated = accelerated_search(settings, on_batch=metrics.batch if metrics is not None else None)
    runtime = Runtime(
        settings,
        lambda bundle: build_services(settings, sink, bundle, nearline),
        audit=audit,
        clock=wall_clock,
        on_retired=lambda old: accelerated.retire_from_thread(old.search),
    )
    if search is not None:
        replay_posted_events(sink, search, recommend)
        runtime.install(search, recommend)
    loop_lag = LoopLagMonitor(settings.shed_loop_lag_ms)
    overload = Overload.from_settings(settings)
    overload.gate.chooser.shedding_upstream = lambda: loop_lag.overloaded  # the front door refuses: step down
    renderer = HitRenderer()
    merchandiser = Merchandiser(RuleStore(settings.data_dir / "rules", check_every_s=settings.rules_check_s))
    services = AppServices(settings, runtime, sink, accelerated, overload, renderer, audit, metrics, merchandiser)
    accelerated.cache.on_catalog_update(lambda update: apply_remote_update(services.search, update))

    authenticator = Authenticator(keys, anonymous_read=settings.anonymous_read)
    storefront = ANONYMOUS[settings.storefront_anonymous]  # keyless searches and events, as the storefront sends
    guards = Guards(  # the rate limit after authentication: it reads the key
        search=(authenticator.guard("search", storefront), overload.rate_limit),
        events=(authenticator.guard("events", storefront), overload.rate_limit),
        admin=(authenticator.guard("admin"), admin_routes.audit_guard(services)),
    )
    rng = audit_rng or random.Random()
    handler = search_routes.SearchHandler(
        services,
        accelerated=accelerated,
        overload=overload,
        inline_search_max_ms=settings.inline_search_max_ms,
        relevance_window=settings.max_k,
        sample_audit=lambda: audit is not None and audit.should_sample(rng),
    )
    fields = search_routes.search_fields(settings)

    app = FastAPI(
        title="shoprec",
        version=__version__,
        description="Product search and recommendations for online shops.",
        lifespan=_lifespan(services, loop_lag, lambda: app.state.metrics_feed),
    )
    app.state.services = services
    app.state.overload = overload
    app.state.loop_lag = loop_lag
    app.state.guards = guards
    app.state.search_fast_path = FastPathStats()
    feed = MetricsFeed(metrics, services, loop_lag, app.state.search_fast_path) if metrics is not None else None
    app.state.metrics_feed = feed
    http_errors.install(app)
    metrics_router = []
    metrics_guards = (authenticator.guard("metrics", ANONYMOUS[settings.metrics_anonymous]),)
    if feed is not None:
        metrics_router.append(metrics_routes.router(feed.sync, feed.metrics.render, metrics_guards))
    observer_clock = time.perf_counter
    window = RequestWindow(settings.ops_window_s, started_s=observer_clock())
    jobs = job_queue(settings)
    for resource in (
        ops_routes.router(services),
        ops_routes.summary_router(services, window, observer_clock, metrics_guards),
        *metrics_router,
        search_routes.router(fields, handler, renderer, guards.search),
        suggest_routes.router(services, guards.search),
        catalog_routes.router(services, read=guards.search, write=guards.admin),
        recommend_routes.router(services, guards.search),
        events_routes.router(services, guards.events, wall_clock),
        admin_routes.router(services, guards.admin),
        rules_routes.router(services, merchandiser, guards.admin),
        registry_routes.router(services, guards.admin),
        *([jobs_routes.router(services, jobs, guards.admin)] if jobs is not None else []),
        *([events_routes.admin_router(stream, nearline, guards.admin)] if stream and nearline else []),
    ):
        # The resource's routes (tags, dependencies and responses already resolved by its
        # router) go straight into the app's router: FastAPI's include_router keeps an
        # included router as one route that every request is matched through, about 30 µs
        # more per routed request on this machine (measured with a bare FastAPI app).
        app.router.routes.extend(resource.routes)
    app.router.routes.extend(page_routes())  # the storefront at / and the ops page at /ops
    # innermost first: each add_middleware wraps what was added before
    app.add_middleware(
        FastPath,
        fields=fields,
        guards=guards.search,
        handler=handler,
        renderer=renderer,
        health=ops_routes.ALIVE.model_dump(),
        stats=app.state.search_fast_path,
    )
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(LeaseMiddleware, runtime=runtime)
    # refuses model-backed requests before anything else runs while the loop lags
    app.add_middleware(FrontDoorShedder, monitor=loop_lag, paths=MODEL_BACKED_PATHS)
    # outermost: every request's id, duration and status, the front door's refusals included
    request_log = RequestLog(
        settings.request_log_sample_rate,
        model_version=lambda: runtime.current.version if runtime.current is not None else None,
    )
    app.add_middleware(
        RequestObserver,
        routes=RouteTemplates(app.router.routes),
        metrics=metrics,
        log=request_log,
        clock=observer_clock,
        window=window,
        counted=ops_routes.counted,
    )
    return app


def _lifespan(
    services: AppServices, loop_lag: LoopLagMonitor, metrics_feed: Callable[[], MetricsFeed | None]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start: load the version (in the background), follow the registry, listen for catalog
    updates from other replicas, probe the loop's lag, and with several workers copy this
    one's counters into the shared metrics every ``metrics_sync_s``. Stop: all of it, and the
    batchers."""
    settings, runtime, accelerated = services.settings, services.runtime, services.accelerated

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop_polling = threading.Event()
        if runtime.current is None:
            threading.Thread(target=runtime.load_at_start, name="shoprec-load", daemon=True).start()
        if settings.registry is not None:
            threading.Thread(
                target=runtime.run_registry_poller, args=(stop_polling,), name="shoprec-registry", daemon=True
            ).start()
        await run_in_threadpool(accelerated.cache.start_listening)
        tasks = []
        if settings.shed_loop_lag_ms > 0:
            tasks.append(asyncio.create_task(loop_lag.run()))
        feed = metrics_feed()
        if feed is not None and settings.workers > 1:
            tasks.append(asyncio.create_task(feed.run(settings.metrics_sync_s)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            stop_polling.set()
            await accelerated.aclose()
            await run_in_threadpool(accelerated.cache.close)

    return lifespan


def prometheus_metrics(settings: Settings) -> Metrics:
    """Prometheus metrics: of this process, or with ``workers`` > 1 of every worker, through
    the files in ``metrics_dir`` (which ``shoprec serve`` prepares)."""
    from shoprec.adapters.prometheus import PrometheusMetrics  # the one module that imports prometheus_client

    return PrometheusMetrics(multiprocess_dir=metrics_dir(settings) if settings.workers > 1 else None)


def metrics_dir(settings: Settings) -> Path:
    """Where the workers' metric files live: ``metrics_dir``, else ``<data_dir>/metrics``."""
    return settings.metrics_dir if settings.metrics_dir is not None else settings.data_dir / "metrics"


def event_stream(settings: Settings) -> tuple[RedisEventStream, NearlineStore]:
    """The Redis event stream ``POST /v1/events`` appends to, and the near-line state
    ``/v1/recommend`` reads (``events_backend=redis``)."""
    from shoprec.adapters.eventstream import StreamKeys
    from shoprec.adapters.redis import RedisStore

    if settings.redis_url is None:
        raise ConfigError('setting events_backend "redis" needs redis_url')
    store = RedisStore(settings.redis_url)
    sink = RedisEventStream(
        store,
        StreamKeys(settings.redis_prefix),
        max_backlog=settings.events_max_backlog,
        durability=settings.events_durability,
        retry_after_s=settings.events_retry_after_s,
    )
    return sink, NearlineStore(
        store,
        prefix=settings.redis_prefix,
        max_history=settings.nearline_history_items,
        row_items=settings.nearline_row_items,
        popular_items=settings.nearline_popular_items,
    )


def job_queue(settings: Settings) -> JobQueue | None:
    """The background job queue (None without Redis: then there are no job routes)."""
    if settings.redis_url is None:
        return None
    from shoprec.adapters.redis import RedisStore

    return JobQueue(RedisStore(settings.redis_url), settings.redis_prefix)


def accelerated_search(settings: Settings, on_batch: Callable[[int, float], None] | None = None) -> AcceleratedSearch:
    """The caches (shared through Redis when ``redis_url`` is set) and the encoder batcher
    (``on_batch`` told each batch's size and wait)."""
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
        on_batch=on_batch,
    )


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and ``shoprec serve --workers N``: settings from env."""
    settings = Settings.load()
    configure_logging(settings.log_level, settings.log_format)
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000.0)  # this serving process only
    return create_app(settings)
