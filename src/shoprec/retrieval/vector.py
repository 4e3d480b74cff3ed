"""Dense retrieval over FAISS: the only module that imports faiss.

Exact inner product (``IndexFlatIP``) up to ``exact_max`` vectors, HNSW beyond it (the
threshold is measured in docs/BENCHMARKS.md). Vectors are L2-normalised, so inner
product is cosine similarity. Filters restrict the search with an ID selector bitmap.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

# Measured in bench/ann.py (docs/BENCHMARKS.md): from 20k vectors HNSW (efSearch 256) answers
# about 5x faster than the exact flat index at recall@100 >= 0.98 on MiniLM vectors.
DEFAULT_EXACT_MAX = 20_000


def _single_thread_search() -> None:
    # One query at a time is served per request; OpenMP worker threads spinning after a
    # tiny search steal the cores the encoder needs (measured: 3x slower encode after).
    # The OpenMP thread count is per calling thread, so every request thread sets it.
    faiss.omp_set_num_threads(1)


class VectorIndex:
    def __init__(self, index: faiss.Index, kind: str) -> None:
        self._index = index
        self.kind = kind

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @classmethod
    def build(
        cls,
        vectors: npt.NDArray[np.float32],
        *,
        exact_max: int = DEFAULT_EXACT_MAX,
        hnsw_m: int = 32,
        ef_construction: int = 80,
    ) -> VectorIndex:
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = vecs.shape[1]
        if vecs.shape[0] <= exact_max:
            index: faiss.Index = faiss.IndexFlatIP(dim)
            kind = "flat"
        else:
            hnsw = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = ef_construction
            index = hnsw
            kind = "hnsw"
        faiss.omp_set_num_threads(max(1, os.cpu_count() or 1))
        try:
            index.add(vecs)
        finally:
            _single_thread_search()
        return cls(index, kind)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, *, mmap: bool = True) -> VectorIndex:
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError:
            index = faiss.read_index(str(path))
        kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        _single_thread_search()
        return cls(index, kind)

    def search(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        *,
        allowed: npt.NDArray[np.bool_] | None = None,
        ef_search: int = 256,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-``k`` (scores, ids) per query; ids are -1 where fewer than k exist."""
        _single_thread_search()
        q = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, self.size))
        params: faiss.SearchParameters | None = None
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # not in faiss's stubs
            params.efSearch = max(ef_search, k)  # type: ignore[union-attr]
        if allowed is not None:
            bitmap = np.packbits(allowed.astype(np.uint8), bitorder="little")
            sel = faiss.IDSelectorBitmap(allowed.shape[0], faiss.swig_ptr(bitmap))
            if params is None:
                params = faiss.SearchParameters()
            params.sel = sel
            scores, ids = self._index.search(q, k, params=params)
            del bitmap  # keep alive until here
        else:
            scores, ids = self._index.search(q, k, params=params)
        return scores.astype(np.float32), ids.astype(np.int64)

    def reconstruct(self, i: int) -> npt.NDArray[np.float32]:
        return np.asarray(self._index.reconstruct(int(i)), dtype=np.float32)
