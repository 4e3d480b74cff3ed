"""Per-user profiles from event history, updated as events arrive (near-line).

A profile holds weighted affinities to brands, leaf categories and departments, a
content vector (the weighted mean of the embeddings of products the user touched) and
the user's typical price. They feed the personal features of the search ranker.
Thread-safe: one lock around updates; readers get immutable snapshots.

With a shared source (the event stream's near-line state, ``events_backend=redis``) a profile
is this process's accumulation plus the user's items and weights the stream has added since:
a profile is a weighted sum over items, so folding the shared per-item weights gives what
folding the events one by one would. The shared part is read at most once per ``shared_ttl_s``
per user (injected clock); while it cannot be read, the local profile serves.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from shoprec.core.nearline import PROFILE_WEIGHTS
from shoprec.errors import ShoprecError
from shoprec.types import Event

log = logging.getLogger(__name__)

EVENT_WEIGHT = PROFILE_WEIGHTS
SHARED_CACHE_USERS = 10_000


class SharedProfiles(Protocol):
    """Per-item profile weights and purchases a user's streamed events added (``adapters.nearline``)."""

    def profile_items(self, user_id: str) -> tuple[Mapping[str, float], frozenset[str]]: ...


@dataclass(frozen=True, slots=True)
class UserProfile:
    user_id: str
    weight: float
    brands: dict[str, float]
    leaves: dict[str, float]
    departments: dict[str, float]
    vector: npt.NDArray[np.float32] | None
    mean_log_price: float
    purchased: frozenset[int]
    recent_rows: tuple[int, ...]


class _Acc:
    __slots__ = ("weight", "brands", "leaves", "departments", "vec", "price_sum", "price_w", "purchased", "recent")

    def __init__(self, dim: int, max_recent: int) -> None:
        self.weight = 0.0
        self.brands: dict[str, float] = defaultdict(float)
        self.leaves: dict[str, float] = defaultdict(float)
        self.departments: dict[str, float] = defaultdict(float)
        self.vec = np.zeros(dim, dtype=np.float32)
        self.price_sum = 0.0
        self.price_w = 0.0
        self.purchased: set[int] = set()
        self.recent: deque[int] = deque(maxlen=max_recent)


class UserProfiles:
    """Accumulates events per user over a fixed catalog (rows of the bundle)."""

    def __init__(
        self,
        index_of: dict[str, int],
        brands_norm: list[str],
        category_norm: npt.NDArray[np.str_],
        price: npt.NDArray[np.float32],
        embeddings: npt.NDArray[np.float32],
        *,
        max_recent: int = 50,
        shared: SharedProfiles | None = None,
        shared_ttl_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._shared_ttl_s = shared_ttl_s
        self._clock = clock
        self._shared_cache: OrderedDict[str, tuple[float, Mapping[str, float], frozenset[str]]] = OrderedDict()
        self._index_of = index_of
        self._brands = brands_norm
        self._leaves = [str(c) for c in category_norm]
        self._departments = [c.split(" > ")[0] if c else "" for c in self._leaves]
        self._price = price
        self._emb = embeddings
        self._max_recent = max_recent
        self._acc: dict[str, _Acc] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._acc)

    def add(self, events: Iterable[Event]) -> int:
        """Fold events in; unknown items are ignored. Returns how many were used."""
        used = 0
        with self._lock:
            for e in events:
                row = self._index_of.get(e.item_id)
                if row is None:
                    continue
                acc = self._acc.get(e.user_id)
                if acc is None:
                    acc = self._acc[e.user_id] = _Acc(self._emb.shape[1], self._max_recent)
                self._fold(acc, row, EVENT_WEIGHT[e.type], purchase=e.type == "purchase")
                acc.recent.append(row)
                used += 1
        return used

    def _fold(self, acc: _Acc, row: int, w: float, *, purchase: bool) -> None:
        acc.weight += w
        if self._brands[row]:
            acc.brands[self._brands[row]] += w
        if self._leaves[row]:
            acc.leaves[self._leaves[row]] += w
            acc.departments[self._departments[row]] += w
        acc.vec += w * np.asarray(self._emb[row], dtype=np.float32)
        p = float(self._price[row])
        if math.isfinite(p):
            acc.price_sum += w * math.log1p(p)
            acc.price_w += w
        if purchase:
            acc.purchased.add(row)

    def _shared_items(self, user_id: str) -> tuple[Mapping[str, float], frozenset[str]]:
        if self._shared is None:
            return {}, frozenset()
        now = self._clock()
        with self._lock:
            hit = self._shared_cache.get(user_id)
            if hit is not None and hit[0] > now:
                return hit[1], hit[2]
        try:
            weights, bought = self._shared.profile_items(user_id)
        except ShoprecError as exc:  # Redis away: the local profile serves
            log.debug("shared profile of %s unavailable: %s", user_id, exc.message)
            return {}, frozenset()
        with self._lock:
            self._shared_cache[user_id] = (now + self._shared_ttl_s, weights, bought)
            self._shared_cache.move_to_end(user_id)
            while len(self._shared_cache) > SHARED_CACHE_USERS:
                self._shared_cache.popitem(last=False)
        return weights, bought

    def get(self, user_id: str | None) -> UserProfile | None:
        if user_id is None:
            return None
        weights, bought = self._shared_items(user_id)
        with self._lock:
            acc = self._acc.get(user_id)
            if weights:
                merged = _Acc(self._emb.shape[1], self._max_recent)
                if acc is not None:
                    merged.weight, merged.vec = acc.weight, acc.vec.copy()
                    merged.brands.update(acc.brands)
                    merged.leaves.update(acc.leaves)
                    merged.departments.update(acc.departments)
                    merged.price_sum, merged.price_w = acc.price_sum, acc.price_w
                    merged.purchased.update(acc.purchased)
                    merged.recent.extend(acc.recent)
                for item, w in weights.items():
                    row = self._index_of.get(item)
                    if row is not None and w > 0:
                        self._fold(merged, row, w, purchase=item in bought)
                acc = merged
            if acc is None or acc.weight <= 0:
                return None
            norm = float(np.linalg.norm(acc.vec))
            total = acc.weight
            return UserProfile(
                user_id=user_id,
                weight=total,
                brands={k: v / total for k, v in acc.brands.items()},
                leaves={k: v / total for k, v in acc.leaves.items()},
                departments={k: v / total for k, v in acc.departments.items()},
                vector=(acc.vec / norm).astype(np.float32) if norm > 0 else None,
                mean_log_price=acc.price_sum / acc.price_w if acc.price_w > 0 else math.nan,
                purchased=frozenset(acc.purchased),
                recent_rows=tuple(acc.recent),
            )

    def features(self, profile: UserProfile | None, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """``[len(rows), 6]``: brand, leaf, department affinity, content similarity, price gap,
        already purchased. All NaN without a profile (the ranker treats NaN as missing)."""
        out = np.full((len(rows), 6), np.nan, dtype=np.float32)
        if profile is None or len(rows) == 0:
            return out
        for j, r in enumerate(rows):
            r = int(r)
            out[j, 0] = profile.brands.get(self._brands[r], 0.0)
            out[j, 1] = profile.leaves.get(self._leaves[r], 0.0)
            out[j, 2] = profile.departments.get(self._departments[r], 0.0)
            out[j, 5] = 1.0 if r in profile.purchased else 0.0
        if profile.vector is not None:
            out[:, 3] = np.asarray(self._emb[rows], dtype=np.float32) @ profile.vector
        if math.isfinite(profile.mean_log_price):
            out[:, 4] = np.abs(np.log1p(self._price[rows]) - profile.mean_log_price)
        return out


USER_FEATURE_NAMES: tuple[str, ...] = (
    "user_brand_affinity",
    "user_leaf_affinity",
    "user_department_affinity",
    "user_content_similarity",
    "user_price_gap",
    "user_purchased",
)
