"""Small frozen value objects and the Protocols the layers talk through."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

EventType = Literal["view", "click", "cart", "purchase"]
EVENT_TYPES: tuple[EventType, ...] = ("view", "click", "cart", "purchase")

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Product:
    """One catalog item. ``category`` is a path such as ``Tools > Hand Tools``."""

    id: str
    title: str
    description: str = ""
    category: str = ""
    brand: str = ""
    price: float | None = None
    in_stock: bool = True
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def category_path(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.category.split(">") if p.strip())


@dataclass(frozen=True, slots=True)
class Event:
    """One user interaction. ``timestamp`` is Unix seconds. ``event_id`` names it for
    idempotency (the event stream applies an id once); None where nothing needs it."""

    user_id: str
    item_id: str
    type: EventType
    timestamp: float
    query: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Judgment:
    query: str
    product_id: str
    relevance: float


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a loader did: rows read, kept, skipped and duplicated (never silently dropped)."""

    path: str
    rows: int
    kept: int
    duplicates: int
    skipped: int
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Filters:
    category: str | None = None
    brand: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool | None = None
    price_range: str | None = None  # labels of shoprec.core.facets.PRICE_RANGES, `|`-separated

    def is_empty(self) -> bool:
        return (
            self.price_range is None
            and self.category is None
            and self.brand is None
            and self.min_price is None
            and self.max_price is None
            and self.in_stock is None
        )


@dataclass(frozen=True, slots=True)
class Effort:
    """How hard to look: candidates per retriever and the HNSW search breadth. ``None`` keeps
    the service's own setting. The degradation ladder serves its cheaper levels with these."""

    lexical_candidates: int | None = None
    dense_candidates: int | None = None
    ef_search: int | None = None


# The service's own effort (settings lexical_candidates, dense_candidates, ef_search): chosen by
# bench/candidates.py on Home Depot as about the cheapest whose NDCG@10 stays within 0.002 of
# 100 candidates from each retriever at efSearch 256 (docs/BENCHMARKS.md).
DEFAULT_LEXICAL_CANDIDATES = 30
DEFAULT_DENSE_CANDIDATES = 30
DEFAULT_EF_SEARCH = 48


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked result. ``stages`` holds per-stage scores for ``explain``; ``rules`` the
    merchandising rules that moved it."""

    product_id: str
    score: float
    stages: Mapping[str, float] = field(default_factory=dict)
    rules: tuple[str, ...] = ()  # the merchandising rules that placed it (``pin:<id>``, ...)


class Clock(Protocol):
    def now(self) -> float: ...


class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> FloatArray: ...


class EventSink(Protocol):
    def append(self, events: Sequence[Event]) -> int: ...


@dataclass(frozen=True, slots=True)
class CacheCounts:
    """Lookups in one cache tier and how many of them hit."""

    lookups: int
    hits: int


@dataclass(frozen=True, slots=True)
class ModelCounts:
    """The model version serving (None before the first load) and the runtime's counts:
    versions loaded, swaps of one serving version for another, loads refused by reason (an
    error code), signature checks by result (``verified``, ``rejected``)."""

    version: str | None
    model_id: str | None
    loads: int
    swaps: int
    refused: Mapping[str, int]
    signature_checks: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """The counters and gauges the serving objects keep as plain numbers, read at once (a
    :class:`Metrics` turns them into its own series). Counters only grow."""

    refusals: Mapping[str, int]  # deliberate refusals by reason, since start
    in_flight: int
    queued: int
    level: str  # the degradation level the next request would get
    levels: Sequence[str]  # the ladder's levels, best first
    caches: Mapping[tuple[str, str], CacheCounts]  # (cache, tier) -> counts
    model: ModelCounts
    loop_lag_s: float
    shed_probability: float
    fast_path: Mapping[str, int]  # searches by who answered: "fast_path", "route"


class Metrics(Protocol):
    """What the service reports (implemented over prometheus_client in
    :mod:`shoprec.adapters.prometheus`). The per-request methods are on the hot path: they
    must cost about a microsecond."""

    def request(self, route: str, method: str, status: int, duration_s: float) -> None:
        """One HTTP request answered: its route template, method, status and duration."""

    def search(self, level: str, timings_ms: Mapping[str, float], cached: bool) -> None:
        """One search served at ``level``, with its stage timings (``*_ms``) when computed."""

    def batch(self, size: int, wait_s: float) -> None:
        """One encoder batch ran: its size, and how long its oldest item waited."""

    def events(self, accepted: int, applied: int, lags_s: Sequence[float]) -> None:
        """A batch of events stored (``accepted``), applied to the live version (``applied``),
        and for each applied event the time from its timestamp to its application."""

    def sync(self, snapshot: MetricsSnapshot) -> None:
        """Bring the series kept from :class:`MetricsSnapshot` up to date."""

    def render(self) -> tuple[bytes, str]:
        """The exposition (every worker's, in multiprocess mode) and its content type."""
