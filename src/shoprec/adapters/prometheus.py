"""Prometheus metrics: the one module that imports prometheus_client.

:class:`PrometheusMetrics` implements :class:`~shoprec.types.Metrics` in Prometheus's own
conventions: base units (seconds, not milliseconds), ``_total`` counters, histograms (so a
p99 can be aggregated across replicas), and labels drawn only from bounded sets (route
templates, methods, status classes, stage and level names, cache tiers, refusal reasons,
error codes), never a query, a user or a product id.

Two ways in:

- the hot path (:meth:`~PrometheusMetrics.request`, :meth:`~PrometheusMetrics.search`,
  :meth:`~PrometheusMetrics.batch`, :meth:`~PrometheusMetrics.events`) observes into labelled
  children made once and kept in a dict: a lookup and an ``observe`` (about 1 µs) per call;
- what the serving objects already count as plain numbers (refusals, cache lookups, queue
  depth, the model runtime's loads) is copied in by :meth:`~PrometheusMetrics.sync` from a
  :class:`~shoprec.types.MetricsSnapshot`: counters by their increase since the last sync,
  gauges by value. That costs the requests nothing; the app syncs before each scrape and, with
  several workers, every ``metrics_sync_s`` in each worker.

With several worker processes (``shoprec serve --workers N``) prometheus_client's
multiprocess mode keeps every value in memory-mapped files under one directory, named by the
``PROMETHEUS_MULTIPROC_DIR`` environment variable, which must be set before this module is
first imported (``shoprec serve`` sets it and wipes the directory); any worker's ``/metrics``
then adds up every worker's. The client's process collectors describe one process only, so
in that mode each worker also publishes its own CPU, memory and open file descriptors as
``shoprec_worker_*`` gauges labelled by pid (live workers only).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from shoprec import __version__
from shoprec.errors import ConfigError
from shoprec.types import MetricsSnapshot

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# HTTP requests: resolves 1-100 ms finely (the latency SLO's 50 ms is a bound), then the tail
REQUEST_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.025,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# one search stage: from tens of microseconds (a lookup) to the whole request
STAGE_BUCKETS_S = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.5)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 256)
BATCH_WAIT_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1)
# from an event's own timestamp to its application: sub-second near-line, hours for a backfill
EVENT_LAG_BUCKETS_S = (0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)

# each label's values come from code (stage keys, ladder level names), but a bound is kept anyway
MAX_STAGES = 16
MAX_LEVELS = 16
OTHER = "other"
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")

C = TypeVar("C")


def _child(cache: dict[str, C], key: str, make: Callable[[str], C], limit: int) -> C:
    """The labelled child for ``key``, made once; beyond ``limit`` distinct keys, ``other``'s."""
    child = cache.get(key)
    if child is None:
        if len(cache) >= limit and key != OTHER:
            return _child(cache, OTHER, make, limit + 1)
        child = cache[key] = make(key)
    return child


class PrometheusMetrics:
    """Every series shoprec exports (see the module docstring). ``multiprocess_dir``: the
    directory of prometheus_client's multiprocess mode (it must equal ``PROMETHEUS_MULTIPROC_DIR``,
    set before this module was imported); None: this process only, in a registry of its own."""

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        registry: CollectorRegistry | None
        self._registry: CollectorRegistry | None = None
        if multiprocess_dir is None:
            registry = self._registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        else:
            _check_multiprocess(multiprocess_dir)
            registry = None  # values live in the files; render reads them all
            _forget_dead_workers(multiprocess_dir)
        self._lock = threading.Lock()
        self._last: dict[tuple[str, ...], int] = {}

        self.request_duration = Histogram(
            "shoprec_http_request_duration_seconds",
            "HTTP requests by route template, method and status class, from the first byte read to the last sent",
            ["route", "method", "status"],
            buckets=REQUEST_BUCKETS_S,
            registry=registry,
        )
        self.stage_duration = Histogram(
            "shoprec_search_stage_duration_seconds",
            "Search stages (the search's *_ms timings; total is the whole search after admission)",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=registry,
        )
        self.level_served = Counter(
            "shoprec_search_level_served",
            "Searches answered, by the degradation level (or explicit pipeline) that served them",
            ["level"],
            registry=registry,
        )
        self.level_current = Gauge(
            "shoprec_degradation_level",
            "1 for the degradation level the next search would get (with several workers: how many are at it)",
            ["level"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.level_index = Gauge(
            "shoprec_degradation_level_index",
            "The current degradation level's rank on the ladder: 0 is full quality (the worst worker's)",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.refusals = Counter(
            "shoprec_refusals",
            "Requests refused on purpose: rate_limit (429), queue_full, deadline, front_door (503)",
            ["reason"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "shoprec_admission_in_flight",
            "Searches admitted and running",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.queued = Gauge(
            "shoprec_admission_queued",
            "Searches waiting for a slot",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.answered = Counter(
            "shoprec_search_answered",
            "Searches by who parsed them: fast_path (plain requests) or route (FastAPI validation)",
            ["path"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "shoprec_encoder_batch_size",
            "Queries per encoder batch",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.batch_wait = Histogram(
            "shoprec_encoder_batch_wait_seconds",
            "How long the oldest query of an encoder batch waited for the batch to close",
            buckets=BATCH_WAIT_BUCKETS_S,
            registry=registry,
        )
        self.cache_lookups = Counter(
            "shoprec_cache_lookups",
            "Cache lookups by cache (embedding, result) and tier (local, redis: asked after a local miss)",
            ["cache", "tier"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "shoprec_cache_hits",
            "Cache lookups that found an entry, by cache and tier",
            ["cache", "tier"],
            registry=registry,
        )
        self.model_info = Gauge(
            "shoprec_model_info",
            "1 for the model version serving (its version and model id)",
            ["version", "model_id"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.model_ready = Gauge(
            "shoprec_model_ready",
            "1 when a verified model version is loaded and serving (the least ready worker's)",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.model_loads = Counter("shoprec_model_loads", "Model versions loaded and switched in", registry=registry)
        self.model_swaps = Counter("shoprec_model_swaps", "Loads that replaced a serving version", registry=registry)
        self.model_refused = Counter(
            "shoprec_model_refused",
            "Model loads refused or failed, by reason (the error's code, e.g. bad_signature, integrity_error)",
            ["reason"],
            registry=registry,
        )
        self.signature_checks = Counter(
            "shoprec_model_signature_checks",
            "Artifact signature checks by result (verified, rejected)",
            ["result"],
            registry=registry,
        )
        self.events_accepted = Counter(
            "shoprec_events_accepted", "Events appended durably to the event log", registry=registry
        )
        self.events_applied = Counter(
            "shoprec_events_applied",
            "Events applied near-line to the live version (user profiles, recommender)",
            registry=registry,
        )
        self.event_lag = Histogram(
            "shoprec_event_apply_lag_seconds",
            "From an event's own timestamp to its application to the live version",
            buckets=EVENT_LAG_BUCKETS_S,
            registry=registry,
        )
        self.loop_lag = Gauge(
            "shoprec_event_loop_lag_seconds",
            "The event loop's standing lag, as the front-door shedder sees it (the worst worker's)",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.shed_probability = Gauge(
            "shoprec_front_door_shed_probability",
            "The share of model-backed requests the front door refuses now (the worst worker's)",
            registry=registry,
            multiprocess_mode="livemax",
        )
        build = Gauge(
            "shoprec_build_info",
            "1, labelled with the shoprec version",
            ["version"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        build.labels(__version__).set(1)
        self._worker: _WorkerProcess | None = _WorkerProcess(registry) if multiprocess_dir is not None else None

        self._requests: dict[tuple[str, str, int], Histogram] = {}
        self._stages: dict[str, Histogram] = {}
        self._levels: dict[str, Counter] = {}
        self._model_version: tuple[str, str] | None = None
        self._level_names: tuple[str, ...] = ()

    # --- the hot path ---------------------------------------------------------------------

    def request(self, route: str, method: str, status: int, duration_s: float) -> None:
        key = (route, method, status)
        child = self._requests.get(key)
        if child is None:  # route and method come bounded from the middleware; the status by class
            child = self.request_duration.labels(route, method, _STATUS_CLASSES.get(status // 100, OTHER))
            self._requests[key] = child
        child.observe(duration_s)

    def search(self, level: str, timings_ms: Mapping[str, float], cached: bool) -> None:
        _child(self._levels, level, self.level_served.labels, MAX_LEVELS).inc()
        if cached:
            return  # a cached answer ran no stage
        stages = self._stages
        for key, ms in timings_ms.items():
            child = stages.get(key)
            if child is None:
                if not key.endswith("_ms") or len(stages) >= MAX_STAGES:
                    continue
                child = stages[key] = self.stage_duration.labels(key[:-3])
            child.observe(ms / 1000.0)

    def batch(self, size: int, wait_s: float) -> None:
        self.batch_size.observe(size)
        self.batch_wait.observe(max(0.0, wait_s))

    def events(self, accepted: int, applied: int, lags_s: Sequence[float]) -> None:
        self.events_accepted.inc(accepted)
        self.events_applied.inc(applied)
        for lag in lags_s:
            self.event_lag.observe(max(0.0, lag))

    # --- what the serving objects count -------------------------------------------------------

    def sync(self, snapshot: MetricsSnapshot) -> None:
        with self._lock:
            for reason, n in snapshot.refusals.items():
                self._grow(self.refusals.labels(reason), ("refusals", reason), n)
            for path, n in snapshot.fast_path.items():
                self._grow(self.answered.labels(path), ("answered", path), n)
            for (cache, tier), counts in snapshot.caches.items():
                self._grow(self.cache_lookups.labels(cache, tier), ("lookups", cache, tier), counts.lookups)
                self._grow(self.cache_hits.labels(cache, tier), ("hits", cache, tier), counts.hits)
            self.in_flight.set(snapshot.in_flight)
            self.queued.set(snapshot.queued)
            self.loop_lag.set(snapshot.loop_lag_s)
            self.shed_probability.set(snapshot.shed_probability)
            self._sync_levels(snapshot.levels, snapshot.level)
            self._sync_model(snapshot)
            if self._worker is not None:
                self._worker.sync()

    def _grow(self, counter: Counter, key: tuple[str, ...], total: int) -> None:
        """Add what ``total`` (a count since start) grew by since the last sync."""
        last = self._last.get(key, 0)
        if total != last:
            self._last[key] = total
            counter.inc(total - last if total > last else total)  # smaller: its owner started over

    def _sync_levels(self, levels: Sequence[str], current: str) -> None:
        names = tuple(levels[:MAX_LEVELS])
        if names != self._level_names:
            for gone in set(self._level_names) - set(names):
                self.level_current.labels(gone).set(0)
            self._level_names = names
        for name in names:
            self.level_current.labels(name).set(1 if name == current else 0)
        self.level_index.set(names.index(current) if current in names else 0)

    def _sync_model(self, snapshot: MetricsSnapshot) -> None:
        model = snapshot.model
        self.model_ready.set(1 if model.version is not None else 0)
        serving = (model.version, model.model_id or "") if model.version is not None else None
        if serving != self._model_version:
            if self._model_version is not None:
                self.model_info.labels(*self._model_version).set(0)
            if serving is not None:
                self.model_info.labels(*serving).set(1)
            self._model_version = serving
        self._grow(self.model_loads, ("loads",), model.loads)
        self._grow(self.model_swaps, ("swaps",), model.swaps)
        for reason, n in model.refused.items():
            code = reason if _ERROR_CODE.fullmatch(reason) else OTHER
            self._grow(self.model_refused.labels(code), ("refused", code), n)
        for result, n in model.signature_checks.items():
            self._grow(self.signature_checks.labels(result), ("signature", result), n)

    # --- the exposition -------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        registry = self._registry
        if registry is None:  # multiprocess: every worker's files, read now
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _WorkerProcess:
    """In multiprocess mode: this worker's process metrics as ``shoprec_worker_*`` gauges
    labelled by pid (the client's process collector reads one process only)."""

    _NAMES = {
        "process_cpu_seconds": ("shoprec_worker_cpu_seconds", "CPU time of each worker process (user + system)"),
        "process_resident_memory_bytes": ("shoprec_worker_resident_memory_bytes", "Resident memory of each worker"),
        "process_open_fds": ("shoprec_worker_open_fds", "Open file descriptors (sockets included) of each worker"),
    }

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self._process = ProcessCollector(registry=None)
        self._gauges = {
            source: Gauge(name, doc, registry=registry, multiprocess_mode="liveall")
            for source, (name, doc) in self._NAMES.items()
        }

    def sync(self) -> None:
        for family in self._process.collect():
            gauge = self._gauges.get(family.name)
            if gauge is not None and family.samples:
                gauge.set(family.samples[0].value)


def _check_multiprocess(directory: Path) -> None:
    named = os.environ.get(MULTIPROC_ENV)
    if named is None or Path(named).resolve() != directory.resolve() or values.ValueClass is values.MutexValue:
        raise ConfigError(
            f"metrics from several workers need {MULTIPROC_ENV}={directory} set before the workers start "
            "(`shoprec serve --workers N` sets it)"
        )
    if not directory.is_dir():
        raise ConfigError(f"the metrics directory {directory} does not exist (`shoprec serve` creates it)")


def _forget_dead_workers(directory: Path) -> None:
    """Drop the live gauges of workers that are gone (a restarted worker's predecessor)."""
    pids = {int(m.group(1)) for f in directory.glob("gauge_live*_*.db") if (m := re.search(r"_(\d+)\.db$", f.name))}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, another user's


def prepare_multiprocess_dir(directory: Path) -> Path:
    """Empty ``directory`` (a previous run's files would be added in) and name it in
    ``PROMETHEUS_MULTIPROC_DIR`` for the worker processes about to start."""
    directory.mkdir(parents=True, exist_ok=True)
    for f in directory.glob("*.db"):
        f.unlink()
    os.environ[MULTIPROC_ENV] = str(directory.resolve())
    return directory
