"""Ranking features and the learned ranker (LightGBM LambdaRank, text model format).

Features are computed for a query over a set of candidate product rows, vectorised
where the lexical index allows it. The same code builds training matrices and serves
requests, so training and serving never drift apart.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from shoprec.core.fusion import minmax, rrf
from shoprec.core.text import char_ngrams, normalize
from shoprec.errors import ArtifactError
from shoprec.kernels import set_overlap
from shoprec.models.compiled import MAX_ABS_DIFF, CompiledTrees, CompilerUnavailableError, probe_features
from shoprec.models.users import USER_FEATURE_NAMES

if TYPE_CHECKING:
    import lightgbm

log = logging.getLogger(__name__)

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
class IdSets:
    """A set of strings per product, as ids (CSR: the distinct ids of product ``i`` are
    ``ids[indptr[i]:indptr[i + 1]]``), so a query's overlap with every candidate's set is one
    compiled pass (:func:`~shoprec.kernels.set_overlap`), with no per-request string sets."""

    vocab: dict[str, int]
    ids: npt.NDArray[np.int32]
    indptr: npt.NDArray[np.int64]

    @classmethod
    def build(cls, sets: Iterable[Iterable[str]]) -> IdSets:
        vocab: dict[str, int] = {}
        ids: list[int] = []
        indptr = [0]
        for items in sets:
            ids.extend(dict.fromkeys(vocab.setdefault(x, len(vocab)) for x in items))
            indptr.append(len(ids))
        return cls(vocab, np.asarray(ids, dtype=np.int32), np.asarray(indptr, dtype=np.int64))

    def overlap(
        self, rows: npt.NDArray[np.int64], items: Iterable[str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Per row: (how many of ``items`` its set holds, the size of its set)."""
        vocab = self.vocab
        query = np.zeros(len(vocab), dtype=np.bool_)
        query[[vocab[x] for x in items if x in vocab]] = True
        shared, sizes = set_overlap(self.indptr, self.ids, np.ascontiguousarray(rows, dtype=np.int64), query)
        return shared, sizes


@dataclass(frozen=True, slots=True)
class TitleIndex:
    """What the text and catalog features need of every product, prepared once per catalog
    (when a version loads, before it takes traffic): normalised titles, each title's
    distinct character trigrams and each category path's words as :class:`IdSets`, and each
    product's brand as an id into the distinct normalised brands (-1: none)."""

    norm: list[str]
    trigrams: IdSets
    categories: IdSets
    brand_ids: npt.NDArray[np.int32]
    brands: list[str]

    @classmethod
    def build(
        cls, titles: Sequence[str], brands_norm: Sequence[str], category_tokens: Sequence[frozenset[str]]
    ) -> TitleIndex:
        names: dict[str, int] = {}
        brand_ids = np.asarray([names.setdefault(b, len(names)) if b else -1 for b in brands_norm], dtype=np.int32)
        return cls(
            norm=[normalize(t) for t in titles],
            trigrams=IdSets.build(char_ngrams(t) for t in titles),
            categories=IdSets.build(category_tokens),
            brand_ids=brand_ids,
            brands=list(names),
        )

    def trigram_overlap(
        self, rows: npt.NDArray[np.int64], query_trigrams: frozenset[str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Per row: (trigrams shared with the query, the title's distinct trigrams)."""
        return self.trigrams.overlap(rows, query_trigrams)

    def brand_in(self, rows: npt.NDArray[np.int64], phrase: str) -> npt.NDArray[np.float32]:
        """Per row: 1 when its brand occurs in ``phrase``, 0 when not, NaN without a brand;
        each distinct brand among the rows is looked up once."""
        ids = self.brand_ids[rows]
        distinct = np.unique(ids[ids >= 0])
        hit = np.fromiter((self.brands[b] in phrase for b in distinct.tolist()), dtype=np.float32, count=len(distinct))
        out = np.full(len(rows), np.nan, dtype=np.float32)
        known = ids >= 0
        out[known] = hit[np.searchsorted(distinct, ids[known])]
        return out


def compute_features(
    ctx: QueryContext,
    cand: CandidateSet,
    *,
    title_index: TitleIndex,
    title_lengths: npt.NDArray[np.float32],
    popularity: npt.NDArray[np.float32],
    price: npt.NDArray[np.float32],
    in_stock: npt.NDArray[np.bool_],
    user_features: npt.NDArray[np.float32] | None = None,
    timings: dict[str, float] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> npt.NDArray[np.float32]:
    """A ``[len(cand.rows), len(FEATURE_NAMES)]`` float32 matrix (NaN where unknown), for
    all candidates at once: array operations over the stage scores, the token matches read
    from the inverted indexes (:meth:`LexicalIndex.match`) and the per-product data of
    ``title_index``. The substring features (the query phrase or its numbers in a title)
    stay one ``in`` per candidate: measured faster than numpy's string functions here.

    ``user_features`` are the personal columns (:data:`USER_FEATURE_NAMES`); NaN without a user.
    ``timings`` gets each feature group's ms: ``feat_retrieval_ms`` (from the stage scores),
    ``feat_tokens_ms`` (query tokens in title and text), ``feat_text_ms`` (phrase, trigrams,
    numbers in the title), ``feat_catalog_ms`` (brand, category, product numbers).
    """
    lap = _Laps(timings, clock)
    n = len(cand.rows)
    f = np.empty((n, len(FEATURE_NAMES)), dtype=np.float32)
    nb = len(BASE_FEATURE_NAMES)
    f[:, nb:] = user_features if user_features is not None else np.nan
    if n == 0:
        return f
    rows = cand.rows
    max_bm25 = float(cand.bm25.max())
    max_dense = float(cand.dense.max())
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
        nq = len(ctx.tokens)
        f[:, 8] = cand.token_in_title.sum(axis=1) / nq
        f[:, 9] = cand.token_in_text.sum(axis=1) / nq
        f[:, 10] = cand.token_in_title.all(axis=1)
        f[:, 11] = cand.token_in_title[:, -1]
    else:
        f[:, 8:12] = 0.0
    lap("feat_tokens_ms")
    phrase = ctx.normalized
    norm = title_index.norm
    f[:, 12] = [phrase in norm[r] for r in rows.tolist()] if phrase else 0.0
    q_tri = ctx.trigrams
    f[:, 13:15] = 0.0
    if q_tri:
        shared, sizes = title_index.trigram_overlap(rows, q_tri)
        some = sizes > 0
        f[some, 13] = shared[some] / (len(q_tri) + sizes[some] - shared[some])
        f[some, 14] = shared[some] / len(q_tri)
    numeric = ctx.numeric
    if numeric:
        f[:, 15] = [sum(1 for x in numeric if x in norm[r]) / len(numeric) for r in rows.tolist()]
    else:
        f[:, 15] = np.nan
    lap("feat_text_ms")
    f[:, 16] = len(ctx.all_tokens)
    f[:, 17] = title_lengths[rows]
    f[:, 18] = title_index.brand_in(rows, phrase)
    q_words = set(phrase.split())
    if q_words:
        shared, _ = title_index.categories.overlap(rows, q_words)
        f[:, 19] = shared / len(q_words)
    else:
        f[:, 19] = 0.0
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
    """A LightGBM model over :data:`FEATURE_NAMES`, stored as LightGBM's text format, and
    served from its compiled form (:mod:`shoprec.models.compiled`) when the artifacts carry one."""

    def __init__(self, booster: lightgbm.Booster, compiled: CompiledTrees | None = None) -> None:
        names = list(booster.feature_name())
        if names != list(FEATURE_NAMES):
            raise ArtifactError(
                f"ranker was trained on features {names[:3]}…, this shoprec computes "
                f"{list(FEATURE_NAMES)[:3]}…; rebuild the artifacts"
            )
        self._booster = booster
        self._compiled = compiled

    @property
    def kind(self) -> str:
        """What computes the scores: ``compiled`` (TL2cgen) or ``lightgbm``."""
        return "compiled" if self._compiled is not None else "lightgbm"

    @classmethod
    def load(cls, path: Path, *, compiled: Path | None = None) -> Ranker:
        """The model at ``path``; with ``compiled``, served from that library once it gives the
        model's own scores on a fixed probe (else :class:`ArtifactError`). Without TL2cgen's
        runtime installed the compiled form is left aside and LightGBM serves."""
        import lightgbm

        try:
            booster = lightgbm.Booster(model_str=Path(path).read_text())
        except (OSError, lightgbm.basic.LightGBMError) as exc:
            raise ArtifactError(f"{path}: unreadable ranker: {exc}") from exc
        trees: CompiledTrees | None = None
        if compiled is not None:
            try:
                trees = CompiledTrees(compiled)
            except CompilerUnavailableError as exc:
                log.warning("serving the ranker with LightGBM: %s", exc)
        ranker = cls(booster)
        if trees is not None:
            diff = ranker.max_abs_diff(trees, probe_features(len(FEATURE_NAMES)))
            if not diff <= MAX_ABS_DIFF:
                raise ArtifactError(f"{compiled}: the compiled ranker's scores differ from the model's by {diff:.2e}")
            ranker._compiled = trees
        return ranker

    def save(self, path: Path) -> None:
        Path(path).write_text(self._booster.model_to_string())

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if features.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        if self._compiled is not None:
            return self._compiled.predict(features)
        return self.predict_lightgbm(features)

    def predict_lightgbm(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """LightGBM's own scores (what the compiled form must reproduce)."""
        return np.asarray(self._booster.predict(features, num_threads=1), dtype=np.float32)

    def max_abs_diff(self, trees: CompiledTrees, features: npt.NDArray[np.float32]) -> float:
        """The largest difference between ``trees``' scores and the model's own on ``features``."""
        if trees.num_feature != len(FEATURE_NAMES):
            return math.inf
        return float(np.abs(trees.predict(features) - self.predict_lightgbm(features)).max(initial=0.0))

    def importance(self) -> dict[str, float]:
        gains = self._booster.feature_importance(importance_type="gain")
        total = float(sum(gains)) or 1.0
        return {n: round(float(g) / total, 4) for n, g in zip(FEATURE_NAMES, gains, strict=True)}
