"""Recommendations: "recommended for you" and "customers also bought", updated near-line.

Strategies, in order of preference for a user:

- ``sequential``  the SASRec model over the user's recent items (known users), blended with
  item-to-item transitions when the artifacts hold ``blend.json`` (they do when built);
- ``cooccurrence`` item-to-item transitions from the last items (when no sequential model);
- ``popularity``  the fallback for unknown users, and the floor every model must beat.

Posted events update popularity and co-occurrence incrementally and extend the user's
history, so the next request reflects them without a rebuild. With a near-line reader
(``events_backend=redis``) those three come from the shared state ``shoprec worker`` keeps
instead: the user's history is the shared one, the near-line co-occurrence rows add to the
artifacts' and the near-line popularity to the artifacts' counts (the same formulas, so the
sums are the incrementally updated models); every replica answers alike.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from shoprec.core.fusion import top_k
from shoprec.core.nearline import DEFAULT_RULE, EVENT_WEIGHTS, CoOccurrenceRule, NearlineView, transition_scores
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

EVENT_POPULARITY = EVENT_WEIGHTS


class NearlineReader(Protocol):
    """The shared near-line state (``adapters.nearline.NearlineStore``)."""

    def view(self, user_id: str | None, *, popular: bool = True) -> NearlineView: ...


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
        nearline: NearlineReader | None = None,
        rule: CoOccurrenceRule = DEFAULT_RULE,
    ) -> None:
        self.catalog = catalog
        self.nearline = nearline
        self.rule = rule
        self.max_history = max_history
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
    def load(
        cls,
        folder: Path,
        catalog: CatalogArrays,
        *,
        threads: int | None = None,
        nearline: NearlineReader | None = None,
    ) -> RecommendService | None:
        """Load ``folder/recommender``; None when the artifacts hold no recommender and there is
        no near-line state (with one, the near-line state alone serves)."""
        root = folder / "recommender"
        if not (root / "popularity").is_dir():
            if nearline is None:
                return None
            return cls(
                catalog,
                popularity=PopularityModel([], np.zeros(1)),
                cooccurrence=None,
                sequential=None,
                nearline=nearline,
            )
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
            nearline=nearline,
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

    def _add_items(self, scores: npt.NDArray[np.float32], items: Iterable[tuple[str, float]]) -> None:
        """Add ``(item, weight)`` to the catalog rows' scores (a -inf row starts from 0)."""
        index_of = self.catalog.index_of
        for item, weight in items:
            row = index_of.get(item)
            if row is not None:
                base = scores[row]
                scores[row] = (0.0 if np.isneginf(base) else base) + weight

    def recommend(
        self,
        user_id: str | None,
        k: int,
        *,
        exclude_seen: bool = True,
        filters: Filters | None = None,
    ) -> Recommendations:
        view = self.nearline.view(user_id) if self.nearline is not None else None
        history = self.history(user_id) if user_id else []  # what the artifacts' events told
        if view is not None:  # then what the stream added since, shared by every replica
            history = (history + list(view.history))[-self.max_history :]
        pop = self._catalog_scores(self.popularity.items, self.popularity.scores())
        if view is not None:
            self._add_items(pop, view.popular)
        strategy = "popularity"
        if history and self.blend is not None:
            scores = self._catalog_scores(self.blend.items, self.blend.scores(history))
            strategy = "sequential"
        elif history and self.sequential is not None:
            scores = self._catalog_scores(self.sequential.items, self.sequential.scores(history))
            strategy = "sequential"
        elif history and (self.cooccurrence is not None or view is not None):
            scores = np.full(len(self.catalog), -np.inf, dtype=np.float32)
            if self.cooccurrence is not None:
                scores = self._catalog_scores(self.cooccurrence.items, self.cooccurrence.scores(history))
            if view is not None:
                self._add_items(scores, transition_scores(view, self.rule).items())
                top = float(np.nan_to_num(pop, neginf=0.0).max(initial=0.0))
                if top > 0:  # ties go by popularity, as in CoOccurrenceModel
                    scores += np.float32(1e-6) * np.nan_to_num(pop, neginf=0.0).astype(np.float32) / np.float32(top)
            scores[scores <= 0] = -np.inf
            strategy = "cooccurrence"
        else:
            scores = np.full(len(self.catalog), -np.inf, dtype=np.float32)
        # Popularity fills what the personal model leaves (and serves unknown users).
        # below every model score, in popularity order: popularity scaled into [floor - 2, floor - 1]
        # (an offset like -1e6 would leave float32 too coarse to tell popularities apart)
        fallback = np.isneginf(scores)
        finite = scores[~fallback]
        floor = float(finite.min()) if finite.size else 0.0
        known = np.nan_to_num(pop.astype(np.float64), neginf=0.0)
        top = float(known.max(initial=0.0))
        share = known / top if top > 0 else known
        scores = np.where(fallback, floor - 2.0 + share, scores).astype(np.float32)
        allowed = self.catalog.allowed(filters or Filters())  # never a product taken off sale
        if allowed is not None:
            scores[~allowed] = -np.inf
        if exclude_seen and user_id:
            with self._lock:
                seen = set(self._seen.get(user_id, ()))
            for item in seen.union(history):
                row = self.catalog.index_of.get(item)
                if row is not None:
                    scores[row] = -np.inf
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
