"""Learning to rank: LightGBM LambdaRank over :data:`~shoprec.models.ranker.FEATURE_NAMES`.

Training data comes from relevance judgments (``query -> {product: gain}``) or from
events (clicks, carts and purchases that followed a query). Candidates are exactly what
serving retrieves, so the ranker learns on the distribution it will see.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm
import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from shoprec.core.metrics import dcg
from shoprec.core.text import normalize
from shoprec.models.ranker import FEATURE_NAMES, Ranker
from shoprec.serving.search import SearchService, query_context
from shoprec.types import Event, Judgment

log = logging.getLogger(__name__)

EVENT_GAIN = {"view": 0.0, "click": 1.0, "cart": 2.0, "purchase": 3.0}
LABEL_LEVELS = 30


def gains_from_judgments(judgments: Sequence[Judgment]) -> dict[str, dict[str, float]]:
    """Gain = relevance minus the lowest relevance in the set (the evaluation protocol)."""
    if not judgments:
        return {}
    low = min(j.relevance for j in judgments)
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for j in judgments:
        out[j.query][j.product_id] = j.relevance - low
    return dict(out)


def gains_from_events(events: Sequence[Event]) -> dict[str, dict[str, float]]:
    """Best interaction per (normalised query, item): click 1, cart 2, purchase 3."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for e in events:
        if not e.query:
            continue
        q = normalize(e.query)
        g = EVENT_GAIN[e.type]
        if g > out[q].get(e.item_id, 0.0):
            out[q][e.item_id] = g
    return {q: g for q, g in out.items() if any(v > 0 for v in g.values())}


def _labels(gains: npt.NDArray[np.float64], max_gain: float) -> npt.NDArray[np.int32]:
    return np.rint(gains / max_gain * LABEL_LEVELS).astype(np.int32)


def build_matrix(
    service: SearchService,
    queries: Sequence[str],
    gains: Mapping[str, Mapping[str, float]],
    *,
    progress: bool = False,
    desc: str = "features",
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64], list[int]]:
    """Features, gains and group sizes for ``queries`` over served candidates."""
    index_of = service.bundle.catalog.index_of
    qvecs = service.bundle.encoder.encode(list(queries), batch_size=64, progress=progress)
    xs: list[npt.NDArray[np.float32]] = []
    ys: list[npt.NDArray[np.float64]] = []
    groups: list[int] = []
    it = enumerate(queries)
    for qi, q in tqdm(it, total=len(queries), desc=desc, disable=not progress, unit="query"):
        ctx = query_context(service.bundle, q)
        cand = service.candidates(ctx, qvecs[qi], None)
        if len(cand.rows) == 0:
            continue
        g = gains[q]
        rows_gain = {index_of[p]: v for p, v in g.items() if p in index_of}
        y = np.asarray([rows_gain.get(int(r), 0.0) for r in cand.rows], dtype=np.float64)
        xs.append(service.features(ctx, cand))
        ys.append(y)
        groups.append(len(cand.rows))
    if not xs:
        return np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros(0), []
    return np.concatenate(xs), np.concatenate(ys), groups


def train_ranker(
    service: SearchService,
    gains: Mapping[str, Mapping[str, float]],
    *,
    valid_fraction: float = 0.1,
    seed: int = 0,
    num_boost_round: int = 600,
    max_queries: int | None = 4000,
    progress: bool = False,
    threads: int = 0,
) -> tuple[Ranker, dict[str, Any]]:
    """Train LambdaRank on ``gains``; a seeded slice of queries is held out for early stopping."""
    queries = sorted(q for q, g in gains.items() if any(v > 0 for v in g.values()))
    if len(queries) < 10:
        raise ValueError(f"too few queries with a positive gain to train a ranker: {len(queries)}")
    rng = np.random.default_rng(seed)
    if max_queries is not None and len(queries) > max_queries:
        # Beyond a few thousand queries the ranker gains little and training time grows.
        keep = rng.choice(len(queries), size=max_queries, replace=False)
        queries = [queries[i] for i in sorted(keep)]
    perm = rng.permutation(len(queries))
    n_valid = max(1, int(len(queries) * valid_fraction))
    valid_q = [queries[i] for i in perm[:n_valid]]
    train_q = [queries[i] for i in perm[n_valid:]]
    max_gain = max(max(g.values()) for g in gains.values())
    x_tr, y_tr, g_tr = build_matrix(service, train_q, gains, progress=progress, desc="ranker train")
    x_va, y_va, g_va = build_matrix(service, valid_q, gains, progress=progress, desc="ranker valid")
    label_gain = [i * max_gain / LABEL_LEVELS for i in range(LABEL_LEVELS + 1)]
    params: dict[str, Any] = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [10],
        "label_gain": label_gain,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 40,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "lambdarank_truncation_level": 30,
        "seed": seed,
        "deterministic": True,
        "num_threads": threads,
        "verbosity": -1,
    }
    dtrain = lightgbm.Dataset(
        x_tr, _labels(y_tr, max_gain), group=g_tr, feature_name=list(FEATURE_NAMES)
    )
    dvalid = lightgbm.Dataset(
        x_va,
        _labels(y_va, max_gain),
        group=g_va,
        reference=dtrain,
        feature_name=list(FEATURE_NAMES),
    )
    booster = lightgbm.train(
        params,
        dtrain,
        num_boost_round=num_boost_round,
        valid_sets=[dvalid],
        callbacks=[lightgbm.early_stopping(50, verbose=False)],
    )
    ranker = Ranker(booster)
    # NDCG@10 on the validation queries, counting positives the candidates missed.
    scores = ranker.predict(x_va)
    nd: list[float] = []
    start = 0
    for q, size in zip(valid_q, g_va, strict=False):
        s = scores[start : start + size]
        y = y_va[start : start + size]
        start += size
        order = np.argsort(-s, kind="stable")[:10]
        ranked = [str(i) for i in order]
        pseudo = {str(i): float(y[i]) for i in range(size) if y[i] > 0}
        ideal = {f"m{k}": v for k, v in enumerate(gains[q].values()) if v > 0}
        # ideal DCG uses every judged positive, so recall misses are penalised.
        idcg = dcg(sorted(ideal.values(), reverse=True), 10)
        nd.append(dcg([pseudo.get(r, 0.0) for r in ranked], 10) / idcg if idcg > 0 else 0.0)
    metrics = {
        "train_queries": len(train_q),
        "valid_queries": len(valid_q),
        "train_rows": int(x_tr.shape[0]),
        "best_iteration": int(booster.best_iteration or num_boost_round),
        "valid_ndcg@10": round(float(np.mean(nd)) if nd else math.nan, 4),
        "feature_importance": ranker.importance(),
    }
    return ranker, metrics
