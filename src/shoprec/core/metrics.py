"""Ranking metrics. Pure functions over ranked ids and graded gains.

Conventions (shared by search and recommendation evaluation):
- ``ranked`` is the system's ordered list of ids; ``gains`` maps id -> gain (> 0 is relevant);
- NDCG uses the exponential-free form ``gain / log2(rank + 1)``, ideal DCG from the sorted gains;
- unjudged ids have gain 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def dcg(gains_in_rank_order: Sequence[float], k: int) -> float:
    return float(sum(g / math.log2(i + 2) for i, g in enumerate(gains_in_rank_order[:k]) if g))


def ndcg_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int) -> float:
    ideal = dcg(sorted((g for g in gains.values() if g > 0), reverse=True), k)
    if ideal <= 0:
        return 0.0
    return dcg([gains.get(r, 0.0) for r in ranked[:k]], k) / ideal


def recall_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int) -> float:
    relevant = {i for i, g in gains.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], gains: Mapping[str, float], k: int | None = None) -> float:
    for i, r in enumerate(ranked if k is None else ranked[:k]):
        if gains.get(r, 0.0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def hit_rate_at_k(ranked: Sequence[str], target: str, k: int) -> float:
    return 1.0 if target in ranked[:k] else 0.0


def ndcg_single_target(rank: int, k: int) -> float:
    """NDCG@k for one relevant item at 0-based ``rank`` (the S3Rec/ICLRec protocol)."""
    return 1.0 / math.log2(rank + 2) if rank < k else 0.0


def percentile_ms(samples_s: Sequence[float], q: float) -> float:
    if not samples_s:
        return 0.0
    return float(np.percentile(np.asarray(samples_s, dtype=np.float64) * 1000.0, q))
