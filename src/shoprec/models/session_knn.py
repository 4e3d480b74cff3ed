"""Session-kNN for next-click prediction (V-SKNN in the session-rec benchmarks).

A session in progress is compared to every training session: cosine similarity between
the current session's items, weighted so recent clicks count more (linear decay), and the
past session's item set. The ``neighbors`` most similar sessions vote for their items with
their similarity. Sparse matrices make that a pair of matrix products per batch.

Written here rather than taken from a library: the reference implementations (session-rec,
the GRU4Rec baselines) are research code not published as packages, and this one is
twenty lines of scipy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

FloatArray = npt.NDArray[np.float32]


class SessionKNN:
    def __init__(
        self,
        train: Sequence[Sequence[int]],
        n_items: int,
        *,
        neighbors: int = 100,
        decay: float = 0.1,
    ) -> None:
        if neighbors < 1:
            raise ValueError(f"neighbors must be at least 1, got {neighbors}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.n_items = n_items
        self.neighbors = neighbors
        self.decay = decay
        rows: list[int] = []
        cols: list[int] = []
        for r, s in enumerate(train):
            for i in set(s):
                rows.append(r)
                cols.append(i)
        data = np.ones(len(rows), dtype=np.float32)
        self.sessions = sp.csr_matrix((data, (rows, cols)), shape=(len(train), n_items + 1), dtype=np.float32)
        sizes = np.asarray(self.sessions.sum(axis=1)).ravel()
        self._inv_norm = (1.0 / np.sqrt(np.maximum(sizes, 1.0))).astype(np.float32)

    def _queries(self, histories: Sequence[Sequence[int]]) -> sp.csr_matrix:
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, h in enumerate(histories):
            weights: dict[int, float] = {}
            for back, i in enumerate(reversed(h)):
                if i not in weights:
                    weights[i] = max(1.0 - self.decay * back, 0.1)
            rows.extend([r] * len(weights))
            cols.extend(weights)
            vals.extend(weights.values())
        return sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(len(histories), self.n_items + 1)
        )

    def score_ids(self, histories: Sequence[Sequence[int]]) -> FloatArray:
        """Scores ``[batch, n_items + 1]`` (column 0, padding, is ``-inf``); higher is better."""
        q = self._queries(histories)
        q_norm = np.sqrt(np.asarray(q.multiply(q).sum(axis=1)).ravel())
        sims = np.asarray((q @ self.sessions.T).todense(), dtype=np.float32)
        sims *= self._inv_norm[None, :]
        sims /= np.maximum(q_norm, 1e-9)[:, None]
        k = min(self.neighbors, sims.shape[1])
        if k < sims.shape[1]:
            cut = np.argpartition(-sims, k - 1, axis=1)[:, k - 1 : k]
            threshold = np.take_along_axis(sims, cut, axis=1)
            sims = np.where(sims >= threshold, sims, 0.0).astype(np.float32)
        scores: FloatArray = (sp.csr_matrix(sims) @ self.sessions).toarray().astype(np.float32)
        scores[:, 0] = -np.inf
        return scores
