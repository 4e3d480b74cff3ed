"""Score fusion and top-k selection. Pure numpy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def top_k(scores: npt.NDArray[np.floating], k: int) -> npt.NDArray[np.int64]:
    """Indices of the ``k`` largest scores, best first; ties broken by lower index."""
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    k = min(k, n)
    part = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)


def minmax(scores: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    if scores.size == 0:
        return scores.astype(np.float32)
    lo, hi = float(scores.min()), float(scores.max())
    if hi - lo < 1e-12:
        return np.ones_like(scores, dtype=np.float32) if hi > 0 else np.zeros_like(scores, dtype=np.float32)
    return ((scores - lo) / (hi - lo)).astype(np.float32)


def rrf(ranks: npt.NDArray[np.floating], k: float = 60.0) -> npt.NDArray[np.float32]:
    """Reciprocal-rank fusion term for 0-based ranks (``inf`` for not retrieved -> 0)."""
    out = 1.0 / (k + 1.0 + ranks)
    return np.where(np.isfinite(ranks), out, 0.0).astype(np.float32)
