"""Ranking features and the learned ranker (LightGBM LambdaRank, text model format).

Features are computed for a query over a set of candidate product rows, vectorised
where the lexical index allows it. The same code builds training matrices and serves
requests, so training and serving never drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from shoprec.core.fusion import minmax, rrf
from shoprec.core.text import char_ngrams, normalize
from shoprec.errors import ArtifactError
from shoprec.models.users import USER_FEATURE_NAMES

if TYPE_CHECKING:
    import lightgbm

BASE_FEATURE_NAMES: tuple[str, ...] = (
    "bm25",
    "bm25_rel",
    "bm25_rank_log",
    "bm25_title",
    "dense",
    "dense_gap",
    "dense_rank_log",
    "rrf",
    "title_token_frac",
    "text_token_frac",
    "title_all_tokens",
    "title_head_token",
    "title_phrase",
    "title_trigram_jaccard",
    "title_trigram_cover",
    "numeric_match",
    "query_tokens",
    "title_tokens",
    "brand_match",
    "category_match",
    "popularity_log",
    "price_log",
    "in_stock",
)
FEATURE_NAMES: tuple[str, ...] = BASE_FEATURE_NAMES + USER_FEATURE_NAMES

MISSING_RANK = 1000.0


@dataclass(frozen=True, slots=True)
class QueryContext:
    """Everything about one query that features need, computed once per request."""

    text: str
    normalized: str
    tokens: tuple[str, ...]  # analysed tokens known to the index, in order, deduplicated
    all_tokens: tuple[str, ...]  # analysed tokens, known or not
    numeric: tuple[str, ...]
    trigrams: frozenset[str]


@dataclass(slots=True)
class CandidateSet:
    """Candidate rows with the stage scores retrieval produced for them."""

    rows: npt.NDArray[np.int64]
    bm25: npt.NDArray[np.float32]
    bm25_title: npt.NDArray[np.float32]
    bm25_rank: npt.NDArray[np.float32]
    dense: npt.NDArray[np.float32]
    dense_rank: npt.NDArray[np.float32]
    token_in_title: npt.NDArray[np.bool_]  # [n_candidates, n_query_tokens]
    token_in_text: npt.NDArray[np.bool_]

    @property
    def fused(self) -> npt.NDArray[np.float32]:
        return rrf(self.bm25_rank) + rrf(self.dense_rank)


@dataclass(frozen=True, slots=True)
class TitleIndex:
    """What the title features need of every product, computed once per catalog: normalised
    titles, and each title's distinct character trigrams as ids (CSR: the ids of title ``i``
    are ``trigram_ids[indptr[i]:indptr[i + 1]]``). Features then need no per-request string
    sets, which also keeps the garbage collector's young generations small under load."""

    norm: list[str]
    vocab: dict[str, int]
    trigram_ids: npt.NDArray[np.int32]
    indptr: npt.NDArray[np.int64]

    @classmethod
    def build(cls, titles: Sequence[str]) -> TitleIndex:
        vocab: dict[str, int] = {}
        ids: list[int] = []
        indptr = [0]
        for title in titles:
            ids.extend(vocab.setdefault(g, len(vocab)) for g in char_ngrams(title))
            indptr.append(len(ids))
        return cls(
            norm=[normalize(t) for t in titles],
            vocab=vocab,
            trigram_ids=np.asarray(ids, dtype=np.int32),
            indptr=np.asarray(indptr, dtype=np.int64),
        )

    def trigram_overlap(
        self, rows: npt.NDArray[np.int64], query_trigrams: frozenset[str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Per row: (trigrams shared with the query, the title's distinct trigrams)."""
        starts = self.indptr[rows]
        sizes: npt.NDArray[np.int64] = self.indptr[rows + 1] - starts
        total = int(sizes.sum())
        if total == 0 or not query_trigrams:
            return np.zeros(len(rows), dtype=np.float64), sizes
        known = np.fromiter((self.vocab[g] for g in query_trigrams if g in self.vocab), dtype=np.int32)
        # positions of every candidate's trigram ids in one flat gather
        seg_start = np.cumsum(sizes) - sizes
        flat = self.trigram_ids[np.repeat(starts - seg_start, sizes) + np.arange(total)]
        hit = np.isin(flat, known)
        shared = np.bincount(np.repeat(np.arange(len(rows)), sizes), weights=hit, minlength=len(rows))
        return shared.astype(np.float64), sizes


def compute_features(
    ctx: QueryContext,
    cand: CandidateSet,
    *,
    title_index: TitleIndex,
    title_lengths: npt.NDArray[np.float32],
    brands_norm: Sequence[str],
    category_tokens: Sequence[frozenset[str]],
    popularity: npt.NDArray[np.float32],
    price: npt.NDArray[np.float32],
    in_stock: npt.NDArray[np.bool_],
    user_features: npt.NDArray[np.float32] | None = None,
    timings: dict[str, float] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> npt.NDArray[np.float32]:
    """A ``[len(cand.rows), len(FEATURE_NAMES)]`` float32 matrix (NaN where unknown).

    ``user_features`` are the personal columns (:data:`USER_FEATURE_NAMES`); NaN without a user.
    ``timings`` gets each feature group's ms: ``feat_retrieval_ms`` (from the stage scores),
    ``feat_tokens_ms`` (query tokens in title and text), ``feat_text_ms`` (phrase, trigrams,
    numbers in the title), ``feat_catalog_ms`` (brand, category, product numbers).
    """
    lap = _Laps(timings, clock)
    n = len(cand.rows)
    f = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    nb = len(BASE_FEATURE_NAMES)
    if user_features is not None:
        f[:, nb:] = user_features
    else:
        f[:, nb:] = np.nan
    if n == 0:
        return f
    rows = cand.rows
    max_bm25 = float(cand.bm25.max()) if n else 0.0
    max_dense = float(cand.dense.max()) if n else 0.0
    nq = max(1, len(ctx.tokens))
    f[:, 0] = cand.bm25
    f[:, 1] = cand.bm25 / max_bm25 if max_bm25 > 0 else 0.0
    f[:, 2] = np.log1p(np.minimum(cand.bm25_rank, MISSING_RANK))
    f[:, 3] = cand.bm25_title
    f[:, 4] = cand.dense
    f[:, 5] = cand.dense - max_dense
    f[:, 6] = np.log1p(np.minimum(cand.dense_rank, MISSING_RANK))
    f[:, 7] = cand.fused
    lap("feat_retrieval_ms")
    if ctx.tokens:
        f[:, 8] = cand.token_in_title.sum(axis=1) / nq
        f[:, 9] = cand.token_in_text.sum(axis=1) / nq
        f[:, 10] = cand.token_in_title.all(axis=1)
        f[:, 11] = cand.token_in_title[:, -1]
    lap("feat_tokens_ms")
    norm = [title_index.norm[r] for r in rows]
    phrase = ctx.normalized
    if phrase:
        f[:, 12] = [phrase in t for t in norm]
    q_tri = ctx.trigrams
    if q_tri:
        shared, sizes = title_index.trigram_overlap(rows, q_tri)
        some = sizes > 0
        f[some, 13] = shared[some] / (len(q_tri) + sizes[some] - shared[some])
        f[some, 14] = shared[some] / len(q_tri)
    numeric = ctx.numeric
    if numeric:
        f[:, 15] = [sum(1 for x in numeric if x in t) / len(numeric) for t in norm]
    else:
        f[:, 15] = np.nan
    lap("feat_text_ms")
    brands = [brands_norm[r] for r in rows]
    f[:, 18] = [(1.0 if b in phrase else 0.0) if b else np.nan for b in brands]
    q_words = set(phrase.split())
    if q_words:
        f[:, 19] = [len(c & q_words) / len(q_words) if c else 0.0 for c in (category_tokens[r] for r in rows)]
    f[:, 16] = len(ctx.all_tokens)
    f[:, 17] = title_lengths[rows]
    f[:, 20] = np.log1p(popularity[rows])
    f[:, 21] = np.log1p(price[rows])  # NaN price stays NaN
    f[:, 22] = in_stock[rows]
    lap("feat_catalog_ms")
    return f


class _Laps:
    """Records the ms since the previous lap under each name (nothing without ``timings``)."""

    __slots__ = ("_clock", "_last", "_timings")

    def __init__(self, timings: dict[str, float] | None, clock: Callable[[], float]) -> None:
        self._timings = timings
        self._clock = clock
        self._last = clock() if timings is not None else 0.0

    def __call__(self, name: str) -> None:
        if self._timings is not None:
            now = self._clock()
            self._timings[name] = (now - self._last) * 1000
            self._last = now


DENSE_FUSION_WEIGHT = 0.3


def fusion_scores(cand: CandidateSet, dense_weight: float = DENSE_FUSION_WEIGHT) -> npt.NDArray[np.float32]:
    """The untrained ranker: a convex blend of min-max normalised BM25 and cosine scores.

    The weight was chosen on Home Depot judgments (docs/BENCHMARKS.md): min-max blending
    beat reciprocal-rank fusion at every weight tried there.
    """
    if len(cand.rows) == 0:
        return np.zeros(0, dtype=np.float32)
    return ((1 - dense_weight) * minmax(cand.bm25) + dense_weight * minmax(cand.dense)).astype(np.float32)


class Ranker:
    """A LightGBM model over :data:`FEATURE_NAMES`, stored as LightGBM's text format."""

    def __init__(self, booster: lightgbm.Booster) -> None:
        names = list(booster.feature_name())
        if names != list(FEATURE_NAMES):
            raise ArtifactError(
                f"ranker was trained on features {names[:3]}…, this shoprec computes "
                f"{list(FEATURE_NAMES)[:3]}…; rebuild the artifacts"
            )
        self._booster = booster

    @classmethod
    def load(cls, path: Path) -> Ranker:
        import lightgbm

        try:
            booster = lightgbm.Booster(model_str=Path(path).read_text())
        except (OSError, lightgbm.basic.LightGBMError) as exc:
            raise ArtifactError(f"{path}: unreadable ranker: {exc}") from exc
        return cls(booster)

    def save(self, path: Path) -> None:
        Path(path).write_text(self._booster.model_to_string())

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if features.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self._booster.predict(features, num_threads=1), dtype=np.float32)

    def importance(self) -> dict[str, float]:
        gains = self._booster.feature_importance(importance_type="gain")
        total = float(sum(gains)) or 1.0
        return {n: round(float(g) / total, 4) for n, g in zip(FEATURE_NAMES, gains, strict=True)}
