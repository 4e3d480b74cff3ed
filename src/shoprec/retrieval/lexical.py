"""Lexical BM25 retrieval: the only module that imports bm25s (and PyStemmer).

Tokenisation is :func:`shoprec.core.text.tokenize` with an English Snowball stemmer for
Latin words; CJK runs become unigrams + bigrams, so Chinese queries match Chinese text.
bm25s was kept over tantivy after measuring both (docs/BENCHMARKS.md): similar quality,
simpler full-catalog scoring (``get_scores`` gives every product's score for the ranker
features), and its index files are plain ``.npy`` + JSON.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numba
import numpy as np
import numpy.typing as npt
import Stemmer

from shoprec.core.text import tokenize

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=200_000)
def stem_word(word: str) -> str:
    if not word.isascii():
        return word
    return str(_stemmer().stemWord(word))


def analyze(text: str) -> list[str]:
    """The lexical analyser used for indexing and querying."""
    return tokenize(text, stem=stem_word)


class LexicalIndex:
    """BM25 over analysed product texts. Row ``i`` is product index ``i``."""

    def __init__(self, model: bm25s.BM25, n_docs: int) -> None:
        # Memory-mapped arrays stay mapped, but as plain ndarray views: every slice of a
        # ``np.memmap`` runs Python-level subclass hooks, a sixth of a bm25 query's time.
        model.scores = {k: np.asarray(v) if isinstance(v, np.memmap) else v for k, v in model.scores.items()}
        self._model = model
        self.n_docs = n_docs
        self._vocab: dict[str, int] = model.vocab_dict
        index = model.scores  # bm25s's CSC arrays: per token, the rows (ascending) and their scores
        self._indptr = np.ascontiguousarray(index["indptr"], dtype=np.int64)
        self._indices = np.ascontiguousarray(index["indices"])
        self._data = np.ascontiguousarray(index["data"], dtype=np.float32)
        self._scratch = threading.local()  # per thread: a zeroed catalog-sized accumulator
        # each token's highest score (the bound that lets top() skip most common-token postings)
        lengths = np.diff(self._indptr)
        self._max_impact = np.zeros(len(lengths), dtype=np.float32)
        nonempty = lengths > 0
        if nonempty.any():
            self._max_impact[nonempty] = np.maximum.reduceat(self._data, self._indptr[:-1][nonempty])

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        *,
        k1: float = 1.2,
        b: float = 0.75,
        progress: bool = False,
    ) -> LexicalIndex:
        corpus = [analyze(t) or [""] for t in texts]
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        model.index(corpus, show_progress=progress)
        return cls(model, len(texts))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._model.save(str(folder), show_progress=False)
        (folder / "lexical.json").write_text(json.dumps({"n_docs": self.n_docs}))

    @classmethod
    def load(cls, folder: Path, *, mmap: bool = True) -> LexicalIndex:
        model = bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False, verbosity=0)
        n_docs = int(json.loads((folder / "lexical.json").read_text())["n_docs"])
        return cls(model, n_docs)

    def query_tokens(self, query: str) -> list[str]:
        return [t for t in analyze(query) if t in self._vocab]

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every product for ``query`` (zeros when no token is known)."""
        toks = self.query_tokens(query)
        if not toks:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self._model.get_scores(toks), dtype=np.float32)

    def search(
        self, query: str, n: int, allowed: npt.NDArray[np.bool_] | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Every product's BM25 score for ``query`` (as :meth:`scores`) and the ``n`` best rows
        with a positive score (and ``allowed`` where given), best first, ties by lower row.

        The best rows are looked for among the query tokens' postings (a few thousand
        entries), not by scanning the catalog-sized score array for the ones above zero."""
        ids = [self._vocab[t] for t in self.query_tokens(query)]
        if not ids:
            return np.zeros(self.n_docs, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores = np.asarray(self._model.get_scores_from_ids(ids), dtype=np.float32)
        indptr, indices = self._indptr, self._indices
        spans = [indices[indptr[t] : indptr[t + 1]] for t in dict.fromkeys(ids)]
        rows = (spans[0] if len(spans) == 1 else np.concatenate(spans)).astype(np.int64)  # a row once per token
        if allowed is not None:
            rows = rows[allowed[rows]]
        values = scores[rows]
        positive = values > 0
        rows, values = rows[positive], values[positive]
        if n <= 0 or not len(rows):
            return scores, np.zeros(0, dtype=np.int64)
        want = n * len(spans)  # n distinct rows are among the best n x (tokens) postings
        if len(rows) > want:
            cut = values[np.argpartition(-values, want - 1)[want - 1]]
            keep = values >= cut  # everything tied with the cut too, so ties break by row below
            rows, values = rows[keep], values[keep]
        rows = np.unique(rows)
        order = np.lexsort((rows, -scores[rows]))[:n]
        return scores, rows[order]

    def top(
        self, query: str, n: int, allowed: npt.NDArray[np.bool_] | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The ``n`` best rows for ``query`` with a positive score (and ``allowed`` where given),
        best first, ties by lower row, and their scores: the same rows and bit-identical scores
        as :meth:`search`, without a catalog-sized score array: a compiled kernel that
        releases the GIL reads the query tokens' postings and skips most of the common
        tokens' (:func:`_top_rows`)."""
        ids = [self._vocab[t] for t in self.query_tokens(query)]
        if not ids or n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scratch = self._scratch
        acc = getattr(scratch, "acc", None)
        if acc is None:
            acc = scratch.acc = np.zeros(self.n_docs, dtype=np.float32)
            scratch.rows = np.empty(self.n_docs, dtype=np.int64)
        rows, scores = _top_rows(
            self._indptr,
            self._indices,
            self._data,
            self._max_impact,
            np.array(ids, dtype=np.int64),
            _ALL if allowed is None else allowed,
            allowed is not None,
            acc,
            scratch.rows,
            n,
        )
        return rows, scores

    def token_in(self, token: str, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether one analysed token scores in each of the given rows (read from the index's
        per-token posting list, not by scoring the whole catalog)."""
        tid = self._vocab.get(token)
        if tid is None:
            return np.zeros(len(rows), dtype=np.bool_)
        start, end = self._indptr[tid], self._indptr[tid + 1]
        return np.isin(rows, self._indices[start:end][self._data[start:end] > 0])


_ALL = np.ones(1, dtype=np.bool_)  # stands for "no filter" in :func:`_top_rows`
_SLACK = 1e-4  # relative margin on every bound: partial sums are rounded in another order


@numba.njit(cache=True, nogil=True)
def _kth_best(acc, rows, count, n):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """The ``n``-th largest ``acc[r]`` over the first ``count`` of ``rows`` (0 with fewer)."""
    if count < n:
        return 0.0
    best = np.zeros(n, dtype=np.float64)  # descending
    for i in range(count):
        v = acc[rows[i]]
        if v <= best[n - 1]:
            continue
        j = n - 1
        while j > 0 and best[j - 1] < v:
            best[j] = best[j - 1]
            j -= 1
        best[j] = v
    return best[n - 1]


@numba.njit(cache=True, nogil=True)
def _score_in(indptr, indices, data, t, r):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """Token ``t``'s score in row ``r`` (0 when absent), by binary search of its row-sorted postings."""
    start, end = indptr[t], indptr[t + 1]
    p = start + np.searchsorted(indices[start:end], r)
    if p < end and indices[p] == r:
        return data[p]
    return np.float32(0.0)


@numba.njit(cache=True, nogil=True)
def _distinct(ids):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """The distinct token ids in first-seen order and how often each occurs (as float32)."""
    distinct = np.empty(len(ids), dtype=np.int64)
    weights = np.zeros(len(ids), dtype=np.float32)
    m = 0
    for t in ids:
        j = 0
        while j < m and distinct[j] != t:
            j += 1
        if j == m:
            distinct[m] = t
            m += 1
        weights[j] += 1
    return distinct[:m], weights[:m]


@numba.njit(cache=True, nogil=True)
def _top_rows(indptr, indices, data, maxes, ids, allowed, filtered, acc, cand, n):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202, PLR0913
    """Exact top ``n`` with MaxScore-style pruning (term at a time).

    The query's distinct tokens go by their highest possible contribution (how often each
    occurs x ``maxes``), most first;
    each one's postings are summed into ``acc`` (touched rows listed in ``cand``) until the
    n-th best partial sum is above what all the remaining tokens together could add to a row
    not yet seen. The remaining tokens only refine the candidates that can still reach the top
    (their score looked up by binary search), and the survivors are scored exactly: summed in
    ``ids``' order, repeats included, in float32, as bm25s sums them. ``acc`` is zeroed again
    where it was written."""
    distinct, weights = _distinct(ids)
    m = len(distinct)
    bound = np.empty(m, dtype=np.float64)
    for j in range(m):
        bound[j] = weights[j] * maxes[distinct[j]]
    order = np.argsort(-bound)
    suffix = np.zeros(m + 1, dtype=np.float64)  # what tokens order[j:] could add at most
    for j in range(m - 1, -1, -1):
        suffix[j] = suffix[j + 1] + bound[order[j]]
    lo, hi = 1.0 - _SLACK, 1.0 + _SLACK
    count = 0
    theta = 0.0
    jj = 0
    while jj < m and not (count >= n and theta * lo > suffix[jj] * hi):
        t, w = distinct[order[jj]], weights[order[jj]]
        for p in range(indptr[t], indptr[t + 1]):
            r = indices[p]
            if data[p] <= 0 or filtered and not allowed[r]:
                continue  # (BM25 scores are positive: this keeps each row listed once in ``cand``)
            if acc[r] == 0:
                cand[count] = r
                count += 1
            acc[r] += w * data[p]
        jj += 1
        # the n-th best partial sum is at most what the tokens so far could add: look for it
        # only once that could beat what the remaining ones could
        if jj < m and (suffix[0] - suffix[jj]) * hi > suffix[jj] * lo:
            theta = _kth_best(acc, cand, count, n)
    if jj == m:
        theta = _kth_best(acc, cand, count, n)
    # rows outside ``cand`` cannot reach the top n; refine the candidates that still can
    alive = np.empty(count, dtype=np.int64)
    live = 0
    for i in range(count):
        if acc[cand[i]] + suffix[jj] * hi >= theta * lo:
            alive[live] = cand[i]
            live += 1
    for kk in range(jj, m):
        t, w = distinct[order[kk]], weights[order[kk]]
        start, end = indptr[t], indptr[t + 1]
        if live * np.log2(end - start + 2) < end - start:  # a binary search per candidate
            for i in range(live):
                acc[alive[i]] += w * _score_in(indptr, indices, data, t, alive[i])
        else:  # cheaper to walk the postings: they update every touched row (pruned ones too)
            for p in range(start, end):
                r = indices[p]
                if acc[r] != 0:
                    acc[r] += w * data[p]
        theta = _kth_best(acc, alive, live, n)
        kept = 0
        for i in range(live):
            if acc[alive[i]] + suffix[kk + 1] * hi >= theta * lo:
                alive[kept] = alive[i]
                kept += 1
        live = kept
    rows = np.empty(n, dtype=np.int64)
    vals = np.empty(n, dtype=np.float32)
    found = 0
    for i in range(live):
        r = alive[i]
        v = np.float32(0.0)
        for t in ids:
            v += _score_in(indptr, indices, data, t, r)
        if v <= 0:
            continue
        if found == n and (v < vals[n - 1] or v == vals[n - 1] and r > rows[n - 1]):
            continue
        j = found if found < n else n - 1
        while j > 0 and (vals[j - 1] < v or vals[j - 1] == v and rows[j - 1] > r):
            if j < n:
                rows[j] = rows[j - 1]
                vals[j] = vals[j - 1]
            j -= 1
        rows[j] = r
        vals[j] = v
        if found < n:
            found += 1
    for i in range(count):
        acc[cand[i]] = 0.0
    return rows[:found], vals[:found]
