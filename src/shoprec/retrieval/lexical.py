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
import numpy as np
import numpy.typing as npt
import Stemmer

from shoprec.core.text import tokenize
from shoprec.kernels import match_rows, top_rows

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


def analyze_word(word: str) -> str:
    """One word as the analyser indexes it (a CJK run, which it splits, case-folded as it is)."""
    tokens = analyze(word)
    return tokens[0] if len(tokens) == 1 else word.casefold()


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

    def __contains__(self, token: object) -> bool:
        """Whether an analysed token (see :func:`analyze`) is in the index's vocabulary."""
        return token in self._vocab

    def query_tokens(self, query: str) -> list[str]:
        return [t for t in analyze(query) if t in self._vocab]

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every product for ``query`` (zeros when no token is known)."""
        toks = self.query_tokens(query)
        if not toks:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self._model.get_scores(toks), dtype=np.float32)

    def top(
        self,
        query: str,
        n: int,
        allowed: npt.NDArray[np.bool_] | None = None,
        *,
        tokens: Sequence[str] | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The ``n`` best rows for ``query`` with a positive score (and ``allowed`` where given),
        best first, ties by lower row, and their scores: the rows sorting every product's
        :meth:`scores` would give, with bit-identical scores, without a catalog-sized score
        array: a compiled kernel that releases the GIL reads the query tokens' postings and
        skips most of the common tokens' (:func:`~shoprec.kernels.top_rows`). ``tokens``: ``query`` analysed already."""
        vocab = self._vocab
        ids = [vocab[t] for t in (analyze(query) if tokens is None else tokens) if t in vocab]
        if not ids or n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scratch = self._scratch
        acc = getattr(scratch, "acc", None)
        if acc is None:
            acc = scratch.acc = np.zeros(self.n_docs, dtype=np.float32)
            scratch.rows = np.empty(self.n_docs, dtype=np.int64)
        rows, scores = top_rows(
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

    def token_ids(self, tokens: Sequence[str]) -> npt.NDArray[np.int64]:
        """The index's id of each analysed token, -1 where the index does not know it."""
        vocab = self._vocab
        return np.fromiter((vocab.get(t, -1) for t in tokens), dtype=np.int64, count=len(tokens))

    def match(
        self, tokens: Sequence[str], present: Sequence[str], rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """For the given rows only: the BM25 score of the analysed query ``tokens`` (bit-identical
        to :meth:`scores` at those rows: summed in the tokens' order, repeats included, in
        float32, as bm25s sums them) and whether each of the ``present`` tokens scores in each
        row (``[len(rows), len(present)]``, as :meth:`token_in`). One compiled pass over the
        candidates that binary-searches each token's row-sorted postings: no catalog-sized
        array and no per-candidate Python."""
        ids = self.token_ids(tokens)
        scores, present_in = match_rows(
            self._indptr,
            self._indices,
            self._data,
            ids[ids >= 0],
            self.token_ids(present),
            np.ascontiguousarray(rows, dtype=np.int64),
        )
        return scores, present_in

    def token_in(self, token: str, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether one analysed token scores in each of the given rows (read from the index's
        per-token posting list, not by scoring the whole catalog)."""
        tid = self._vocab.get(token)
        if tid is None:
            return np.zeros(len(rows), dtype=np.bool_)
        start, end = self._indptr[tid], self._indptr[tid + 1]
        return np.isin(rows, self._indices[start:end][self._data[start:end] > 0])


_ALL = np.ones(1, dtype=np.bool_)  # stands for "no filter" in :func:`top_rows`
