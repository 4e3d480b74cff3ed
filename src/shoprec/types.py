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

    def is_empty(self) -> bool:
        return (
            self.category is None
            and self.brand is None
            and self.min_price is None
            and self.max_price is None
            and self.in_stock is None
        )


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked result. ``stages`` holds per-stage scores for ``explain``."""

    product_id: str
    score: float
    stages: Mapping[str, float] = field(default_factory=dict)


class Clock(Protocol):
    def now(self) -> float: ...


class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> FloatArray: ...


class EventSink(Protocol):
    def append(self, events: Sequence[Event]) -> int: ...
