"""Hybrid search over a loaded :class:`~shoprec.models.bundle.Bundle`.

Pipelines, cheapest first:

- ``bm25``   lexical BM25 over all product text;
- ``dense``  cosine similarity of the query embedding over FAISS;
- ``hybrid`` both, fused by reciprocal rank;
- ``full``   hybrid candidates re-ranked by the learned ranker (falls back to the
             fusion when the artifacts hold no trained ranker).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from shoprec.core.fusion import top_k
from shoprec.core.highlight import highlight
from shoprec.core.spelling import Correction, correct_query
from shoprec.core.synonyms import Synonyms
from shoprec.core.text import char_ngrams, normalize
from shoprec.errors import NotFoundError
from shoprec.models.bundle import Bundle
from shoprec.models.ranker import CandidateSet, QueryContext, compute_features, fusion_scores
from shoprec.models.users import SharedProfiles, UserProfile, UserProfiles
from shoprec.retrieval.lexical import analyze, analyze_word, stem_word
from shoprec.retrieval.spelling import Lexicon
from shoprec.serving.suggest import QueryLog, Suggester
from shoprec.types import (
    DEFAULT_DENSE_CANDIDATES,
    DEFAULT_EF_SEARCH,
    DEFAULT_LEXICAL_CANDIDATES,
    Effort,
    Filters,
    FloatArray,
    Hit,
    Product,
)

Pipeline = Literal["bm25", "dense", "hybrid", "full"]
PIPELINES: tuple[Pipeline, ...] = ("bm25", "dense", "hybrid", "full")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """One search as a request asks for it: the text, how many results, the filters, the
    pipeline and effort to search with, whether to explain the scores, and whose search it is
    (a user with a profile gets personal features)."""

    text: str
    k: int = 10
    filters: Filters = field(default_factory=Filters)
    pipeline: Pipeline = "full"
    effort: Effort | None = None
    explain: bool = False
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[Hit]
    pipeline: Pipeline
    ranker: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    personalized: bool = False
    correction: Correction | None = None  # the typos corrected before searching


def query_context(bundle: Bundle, query: str) -> QueryContext:
    all_tokens = analyze(query)
    known = [t for t in dict.fromkeys(all_tokens) if t in bundle.lexical]
    norm = normalize(query)
    numeric = tuple(w for w in norm.split() if any(c.isdigit() for c in w))
    return QueryContext(
        text=query,
        normalized=norm,
        tokens=tuple(known),
        all_tokens=tuple(all_tokens),
        numeric=numeric,
        trigrams=frozenset(char_ngrams(query)),
    )


def _ranks_of(ranked: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """The 0-based position of each of ``rows`` in ``ranked`` (``inf`` where absent), without
    a catalog-sized array."""
    out = np.full(len(rows), np.inf, dtype=np.float32)
    if len(ranked) and len(rows):
        order = np.argsort(ranked, kind="stable")
        pos = np.minimum(np.searchsorted(ranked, rows, sorter=order), len(ranked) - 1)
        found = ranked[order[pos]] == rows
        out[found] = order[pos[found]]
    return out


class SearchService:
    """Searches one bundle. Thread-safe for concurrent reads."""

    def __init__(
        self,
        bundle: Bundle,
        *,
        lexical_candidates: int = DEFAULT_LEXICAL_CANDIDATES,
        dense_candidates: int = DEFAULT_DENSE_CANDIDATES,
        ef_search: int = DEFAULT_EF_SEARCH,
        clock: Callable[[], float] = time.perf_counter,
        shared_profiles: SharedProfiles | None = None,
        synonyms: Synonyms | None = None,
    ) -> None:
        self.bundle = bundle
        self.synonyms = synonyms or Synonyms()
        self._synonym_words = self.synonyms.words
        self._word_fix = functools.lru_cache(maxsize=100_000)(self._fix_word)
        self.lexical_candidates = lexical_candidates
        self.dense_candidates = dense_candidates
        self.ef_search = ef_search
        self._clock = clock
        self.profile = False  # True: time each feature group too (``feat_*_ms``)
        c = bundle.catalog
        self.users = UserProfiles(
            c.index_of, c.brands_norm, c.category_norm, c.price, bundle.embeddings, shared=shared_profiles
        )
        self.users.add(sorted(bundle.user_events, key=lambda e: e.timestamp))
        self.queries = QueryLog(bundle.user_events)  # the shop's past queries, for suggestions

    # --- products -------------------------------------------------------------------
    def product(self, product_id: str) -> Product:
        """The product when it is on sale (:meth:`CatalogArrays.on_sale_row`), else NotFoundError."""
        product = self.bundle.catalog.on_sale_product(product_id)
        if product is None:
            raise NotFoundError(f"no product with id {product_id!r}")
        return product

    def similar(self, product_id: str, k: int) -> list[Hit]:
        """Nearest products on sale by embedding (content similarity), excluding the product itself."""
        i = self.bundle.catalog.on_sale_row(product_id)
        if i is None:
            raise NotFoundError(f"no product with id {product_id!r}")
        vec = np.asarray(self.bundle.embeddings[i], dtype=np.float32)[None, :]
        allowed = self.bundle.catalog.allowed(Filters())
        scores, ids = self.bundle.vectors.search(vec, k + 1, allowed=allowed)
        hits = [
            Hit(self.bundle.catalog.products[j].id, float(s))
            for s, j in zip(scores[0], ids[0], strict=True)
            if j >= 0 and j != i
        ]
        return hits[:k]

    # --- query understanding ----------------------------------------------------------
    @functools.cached_property
    def lexicon(self) -> Lexicon:
        """The catalog's title words and phrases (built on first use; the warm-up builds it)."""
        c = self.bundle.catalog
        return Lexicon.build(c.titles, (p.brand for p in c.products))

    @functools.cached_property
    def suggester(self) -> Suggester:
        """Autocomplete over this version's catalog and the shop's past queries."""
        b = self.bundle
        return Suggester(self.lexicon, b.lexical, b.catalog, self.queries, self._word_fix)

    def _fix_word(self, word: str) -> str | None:
        """A query word's correction: None for a word the catalog's titles, the lexical index or
        the shop's synonyms know (a word any product's text holds is never "corrected" away
        from it), else the nearest title word within the word's typo budget."""
        if word in self.lexicon or word in self._synonym_words or stem_word(word) in self.bundle.lexical:
            return None
        return self.lexicon.nearest(word)

    def correction(self, text: str) -> Correction | None:
        """``text`` with its misspelt words corrected against the catalog (see
        :mod:`shoprec.core.spelling`); None when every word is known or left alone."""
        return correct_query(text, self._word_fix)

    def expansions(self, text: str) -> tuple[str, ...]:
        """The shop's synonyms of ``text``'s words, which lexical retrieval searches too."""
        return self.synonyms.expand(text) if self.synonyms else ()

    def lexical_text(self, text: str) -> str:
        """``text`` with its synonyms: what lexical retrieval and the matched set read."""
        extra = self.expansions(text)
        return f"{text} {' '.join(extra)}" if extra else text

    def highlighter(self, text: str) -> Callable[[str], str]:
        """A title HTML-escaped with the words of ``text`` and its synonyms in ``<mark>`` (matched
        as the lexical index matches them: "drills" for "drill")."""
        terms = frozenset(analyze(self.lexical_text(text)))
        return lambda title: highlight(title, terms, analyze_word)

    # --- search ---------------------------------------------------------------------
    def encode_queries(self, queries: Sequence[str]) -> FloatArray:
        return self.bundle.encoder.encode(list(queries))

    def candidates(
        self,
        ctx: QueryContext,
        qvec: FloatArray | None,
        allowed: npt.NDArray[np.bool_] | None,
        *,
        use_lexical: bool = True,
        use_dense: bool = True,
        effort: Effort | None = None,
        match_features: bool = True,
        timings: dict[str, float] | None = None,
        at_least: int = 0,
    ) -> CandidateSet:
        """The candidate rows and their retrieval scores; ``match_features`` (which query
        tokens each candidate's title and text hold, title BM25) only for the learned ranker.
        ``timings`` gets each stage's ms: ``lexical_ms``, ``ann_ms``, ``union_ms``, ``match_ms``.
        Each retriever gives at least ``at_least`` candidates (a search for k results asks for
        k, so a deep page is as full as the catalog allows)."""
        b = self.bundle
        clock = self._clock
        times = timings if timings is not None else {}
        t = clock()
        effort = effort or Effort()
        n_lexical = max(at_least, effort.lexical_candidates or self.lexical_candidates)
        n_dense = max(at_least, effort.dense_candidates or self.dense_candidates)
        ef_search = effort.ef_search or self.ef_search
        lex_rows = np.zeros(0, dtype=np.int64)
        if use_lexical:
            extra = self.expansions(ctx.text)
            tokens = [*ctx.all_tokens, *analyze(" ".join(extra))] if extra else ctx.all_tokens
            lex_rows, _ = b.lexical.top(ctx.text, n_lexical, allowed, tokens=tokens)
        t = _lap(times, "lexical_ms", t, clock)
        dense_rows = np.zeros(0, dtype=np.int64)
        if use_dense and qvec is not None:
            _, ids = b.vectors.search(qvec[None, :], n_dense, allowed=allowed, ef_search=ef_search)
            dense_rows = ids[0][ids[0] >= 0]
        t = _lap(times, "ann_ms", t, clock)
        rows = np.unique(np.concatenate([lex_rows, dense_rows]))
        matched = ctx.tokens if match_features else ()
        # the candidates' BM25 (and which query tokens their text holds), read for them alone
        bm25, token_in_text = b.lexical.match(ctx.all_tokens, matched, rows)
        if qvec is not None and len(rows):
            dense = np.asarray(b.embeddings[rows], dtype=np.float32) @ qvec
        else:
            dense = np.zeros(len(rows), dtype=np.float32)
        bm25_rank, dense_rank = _ranks_of(lex_rows, rows), _ranks_of(dense_rows, rows)
        t = _lap(times, "union_ms", t, clock)
        if match_features:
            bm25_title, token_in_title = b.lexical_title.match(ctx.all_tokens, matched, rows)
        else:  # nothing to read: the fusion and the plain pipelines never look at these
            bm25_title, token_in_title = np.zeros(len(rows), dtype=np.float32), np.zeros((len(rows), 0), np.bool_)
        _lap(times, "match_ms", t, clock)
        return CandidateSet(
            rows=rows,
            bm25=bm25,
            bm25_title=bm25_title,
            bm25_rank=bm25_rank,
            dense=dense.astype(np.float32),
            dense_rank=dense_rank,
            token_in_title=token_in_title,
            token_in_text=token_in_text,
        )

    def features(
        self,
        ctx: QueryContext,
        cand: CandidateSet,
        user: UserProfile | None = None,
        users: UserProfiles | None = None,
        *,
        timings: dict[str, float] | None = None,
    ) -> npt.NDArray[np.float32]:
        """The ranker's features of every candidate; ``timings`` gets each feature group's ms
        (``feat_*_ms``), the personal ones as ``feat_user_ms``."""
        c = self.bundle.catalog
        t = self._clock()
        user_features = (users or self.users).features(user, cand.rows)
        if timings is not None:
            _lap(timings, "feat_user_ms", t, self._clock)
        return compute_features(
            ctx,
            cand,
            title_index=c.title_index,
            title_lengths=c.title_lengths,
            popularity=c.popularity,
            price=c.price,
            in_stock=c.in_stock,
            user_features=user_features,
            timings=timings,
            clock=self._clock,
        )

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        filters: Filters | None = None,
        pipeline: Pipeline = "full",
        explain: bool = False,
        qvec: FloatArray | None = None,
        user_id: str | None = None,
        effort: Effort | None = None,
        correct: bool = True,
    ) -> SearchResult:
        """The top ``k`` products for ``query``. ``correct``: search the query with its typos
        corrected (:meth:`correction`, reported in the result); a caller that corrected the
        text already passes False."""
        filters = filters or Filters()
        clock = self._clock
        timings: dict[str, float] = {}
        t0 = clock()
        correction = None
        if correct:
            correction = self.correction(query)
            timings["correct_ms"] = (clock() - t0) * 1000
        if correction is not None:
            query = correction.corrected
            qvec = None  # the vector given was the typed text's
        allowed = self.bundle.catalog.allowed(filters)
        if pipeline == "bm25" and not explain:
            lexical_hits = self._lexical_hits(query, k, allowed, timings)
            timings["total_ms"] = (clock() - t0) * 1000
            return SearchResult(
                hits=lexical_hits, pipeline=pipeline, ranker="none", timings_ms=timings, correction=correction
            )
        t = clock()
        ctx = query_context(self.bundle, query)
        t = _lap(timings, "analysis_ms", t, clock)
        needs_dense = pipeline != "bm25"
        if needs_dense and qvec is None:
            qvec = self.encode_queries([query])[0]
            t = _lap(timings, "encode_ms", t, clock)
        cand = self.candidates(
            ctx,
            qvec if needs_dense else None,
            allowed,
            use_lexical=pipeline != "dense",
            use_dense=needs_dense,
            effort=effort,
            match_features=pipeline == "full" and self.bundle.ranker is not None,
            timings=timings,
            at_least=k,
        )
        timings["retrieve_ms"] = (clock() - t) * 1000
        ranker_name = "none"
        profile: UserProfile | None = None
        if pipeline == "bm25":
            scores = np.where(np.isfinite(cand.bm25_rank), cand.bm25, -np.inf).astype(np.float32)
        elif pipeline == "dense":
            scores = np.where(np.isfinite(cand.dense_rank), cand.dense, -np.inf).astype(np.float32)
        elif pipeline == "hybrid" or self.bundle.ranker is None:
            scores = fusion_scores(cand)
            ranker_name = "fusion"
        else:
            t = clock()
            profile = self.users.get(user_id)
            feats = self.features(ctx, cand, profile, timings=timings if self.profile else None)
            t = _lap(timings, "features_ms", t, clock)
            scores = self.bundle.ranker.predict(feats)
            _lap(timings, "rank_ms", t, clock)
            ranker_name = "learned"
        order = top_k(scores, k)
        order = order[np.isfinite(scores[order])]
        products = self.bundle.catalog.products
        fused = cand.fused if explain else None
        hits: list[Hit] = []
        for j in order:
            row = int(cand.rows[j])
            stages: dict[str, float] = {}
            if explain:
                stages = {
                    "bm25": float(cand.bm25[j]),
                    "bm25_rank": _rank_or_none(cand.bm25_rank[j]),
                    "dense": float(cand.dense[j]),
                    "dense_rank": _rank_or_none(cand.dense_rank[j]),
                    "fusion": float(fused[j]) if fused is not None else 0.0,
                    "final": float(scores[j]),
                }
            hits.append(Hit(products[row].id, float(scores[j]), stages))
        timings["total_ms"] = (clock() - t0) * 1000
        personalized = profile is not None
        return SearchResult(
            hits=hits,
            pipeline=pipeline,
            ranker=ranker_name,
            timings_ms=timings,
            personalized=personalized,
            correction=correction,
        )

    def _lexical_hits(
        self,
        query: str,
        k: int,
        allowed: npt.NDArray[np.bool_] | None,
        timings: dict[str, float],
    ) -> list[Hit]:
        """The ``bm25`` pipeline without the candidate set the other pipelines share (no
        query features, rank arrays or fusion inputs): the same hits as :meth:`candidates`
        followed by the final top-k, for about half the work of the cheapest ladder level."""
        t = self._clock()
        # the candidates would be the best max(k, lexical_candidates) rows: their top k is the best k
        rows, scores = self.bundle.lexical.top(self.lexical_text(query), k, allowed)
        timings["retrieve_ms"] = (self._clock() - t) * 1000
        products = self.bundle.catalog.products
        return [Hit(products[row].id, score) for row, score in zip(rows.tolist(), scores.tolist(), strict=True)]


def _lap(timings: dict[str, float], name: str, start: float, clock: Callable[[], float]) -> float:
    """Record the ms since ``start`` under ``name``; the time now, the next stage's start."""
    now = clock()
    timings[name] = (now - start) * 1000
    return now


def _rank_or_none(r: float) -> float:
    return float(r) if np.isfinite(r) else -1.0
