"""Recommendations: "recommended for you" and "customers also bought", updated near-line.

Strategies, in order of preference for a user:

- ``sequential``  the SASRec model over the user's recent items (known users), blended with
  item-to-item transitions when the artifacts hold ``blend.json`` (they do when built);
- ``cooccurrence`` item-to-item transitions from the last items (when no sequential model);
- ``popularity``  the fallback for unknown users, and the floor every model must beat.

Posted events update popularity and co-occurrence incrementally and extend the user's
history, so the next request reflects them without a rebuild.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shoprec.core.fusion import top_k
from shoprec.errors import NotFoundError
from shoprec.models.bundle import CatalogArrays
from shoprec.models.recommender import (
    BlendedRecommender,
    CoOccurrenceModel,
    PopularityModel,
    SequentialRecommender,
)
from shoprec.types import Event, Filters

log = logging.getLogger(__name__)

EVENT_POPULARITY = {"view": 0.1, "click": 1.0, "cart": 2.0, "purchase": 4.0}


@dataclass(frozen=True, slots=True)
class Recommendations:
    items: list[tuple[str, float]]
    strategy: str
    history_length: int


class RecommendService:
    def __init__(
        self,
        catalog: CatalogArrays,
        *,
        popularity: PopularityModel,
        cooccurrence: CoOccurrenceModel | None,
        sequential: SequentialRecommender | None,
        blend_weight: float | None = None,
        max_history: int = 50,
    ) -> None:
        self.catalog = catalog
        self.popularity = popularity
        self.cooccurrence = cooccurrence
        self.sequential = sequential
        self.blend: BlendedRecommender | None = None
        if sequential is not None and cooccurrence is not None and blend_weight is not None:
            self.blend = BlendedRecommender(sequential, cooccurrence, blend_weight)
        self._history: dict[str, deque[str]] = defaultdict(lambda: deque(maxlen=max_history))
        self._seen: dict[str, set[str]] = defaultdict(set)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: Path, catalog: CatalogArrays, *, threads: int | None = None) -> RecommendService | None:
        """Load ``folder/recommender``; None when the artifacts hold no recommender."""
        root = folder / "recommender"
        if not (root / "popularity").is_dir():
            return None
        seq = (
            SequentialRecommender.load(root / "sequential", threads=threads) if (root / "sequential").is_dir() else None
        )
        co = CoOccurrenceModel.load(root / "cooccurrence") if (root / "cooccurrence").is_dir() else None
        return cls(
            catalog,
            popularity=PopularityModel.load(root / "popularity"),
            cooccurrence=co,
            sequential=seq,
            blend_weight=BlendedRecommender.read_weight(root),
        )

    def add(self, events: Iterable[Event], *, update_models: bool = True) -> int:
        """Near-line update from events (time order). ``update_models=False`` only restores
        histories (for events the models were already trained on)."""
        n = 0
        with self._lock:
            for e in events:
                if e.item_id not in self.catalog.index_of:
                    continue
                hist = self._history[e.user_id]
                if update_models and self.cooccurrence is not None and hist and hist[-1] != e.item_id:
                    self.cooccurrence.update(list(hist), e.item_id)
                if not hist or hist[-1] != e.item_id:
                    hist.append(e.item_id)
                self._seen[e.user_id].add(e.item_id)
                if update_models:
                    self.popularity.update(e.item_id, EVENT_POPULARITY[e.type])
                n += 1
        return n

    def history(self, user_id: str) -> list[str]:
        with self._lock:
            return list(self._history.get(user_id, ()))

    def _catalog_scores(self, items: list[str], scores: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        out = np.full(len(self.catalog), -np.inf, dtype=np.float32)
        index_of = self.catalog.index_of
        for item, s in zip(items, scores, strict=False):
            row = index_of.get(item)
            if row is not None:
                out[row] = s
        return out

    def recommend(
        self,
        user_id: str | None,
        k: int,
        *,
        exclude_seen: bool = True,
        filters: Filters | None = None,
    ) -> Recommendations:
        history = self.history(user_id) if user_id else []
        strategy = "popularity"
        if history and self.blend is not None:
            scores = self._catalog_scores(self.blend.items, self.blend.scores(history))
            strategy = "sequential"
        elif history and self.sequential is not None:
            scores = self._catalog_scores(self.sequential.items, self.sequential.scores(history))
            strategy = "sequential"
        elif history and self.cooccurrence is not None:
            raw = self.cooccurrence.scores(history)
            scores = self._catalog_scores(self.cooccurrence.items, raw)
            scores[scores <= 0] = -np.inf
            strategy = "cooccurrence"
        else:
            scores = np.full(len(self.catalog), -np.inf, dtype=np.float32)
        # Popularity fills what the personal model leaves (and serves unknown users).
        pop = self._catalog_scores(self.popularity.items, self.popularity.scores())
        fallback = np.isneginf(scores)
        scores = np.where(fallback, -1e6 + np.nan_to_num(pop, neginf=-1e6) * 1e-3, scores).astype(np.float32)
        allowed = self.catalog.allowed(filters or Filters())  # never a product taken off sale
        if allowed is not None:
            scores[~allowed] = -np.inf
        if exclude_seen and user_id:
            with self._lock:
                for item in self._seen.get(user_id, ()):
                    scores[self.catalog.index_of[item]] = -np.inf
        order = [int(i) for i in top_k(scores, k) if np.isfinite(scores[i])]
        items = [(self.catalog.products[i].id, float(scores[i])) for i in order]
        return Recommendations(items=items, strategy=strategy, history_length=len(history))

    def also_bought(self, product_id: str, k: int) -> list[tuple[str, float]]:
        if self.catalog.on_sale_row(product_id) is None:
            raise NotFoundError(f"no product with id {product_id!r}")
        if self.cooccurrence is None:
            return []
        on_sale = self.catalog.on_sale_row
        return [(i, s) for i, s in self.cooccurrence.related(product_id, k) if s > 0 and on_sale(i) is not None]
