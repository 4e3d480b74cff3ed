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
from dataclasses import dataclass
from typing import Any

import lightgbm
import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from shoprec.core.metrics import dcg
from shoprec.core.text import normalize
from shoprec.models.ranker import FEATURE_NAMES, Ranker
from shoprec.models.users import UserProfiles
from shoprec.serving.search import SearchService, query_context
from shoprec.types import Event, Judgment

log = logging.getLogger(__name__)

EVENT_GAIN = {"view": 0.0, "click": 1.0, "cart": 2.0, "purchase": 3.0}
LABEL_LEVELS = 30


@dataclass(frozen=True, slots=True)
class Group:
    """One ranked list to learn from: a query, graded products, and who asked when."""

    query: str
    gains: Mapping[str, float]
    user_id: str | None = None
    timestamp: float = 0.0


def gains_from_judgments(judgments: Sequence[Judgment]) -> dict[str, dict[str, float]]:
    """Gain = relevance minus the lowest relevance in the set (the evaluation protocol)."""
    if not judgments:
        return {}
    low = min(j.relevance for j in judgments)
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for j in judgments:
        out[j.query][j.product_id] = j.relevance - low
    return dict(out)


def groups_from_judgments(judgments: Sequence[Judgment]) -> list[Group]:
    return [Group(q, g) for q, g in gains_from_judgments(judgments).items()]


def groups_from_events(events: Sequence[Event]) -> list[Group]:
    """One group per (user, normalised query) session: the best interaction per item
    (click 1, cart 2, purchase 3), stamped with the session's first event time."""
    gains: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    first: dict[tuple[str, str], float] = {}
    for e in events:
        if not e.query:
            continue
        key = (e.user_id, normalize(e.query))
        g = EVENT_GAIN[e.type]
        if g > gains[key].get(e.item_id, 0.0):
            gains[key][e.item_id] = g
        first[key] = min(first.get(key, e.timestamp), e.timestamp)
    return [
        Group(query=q, gains=g, user_id=u, timestamp=first[(u, q)])
        for (u, q), g in gains.items()
        if any(v > 0 for v in g.values())
    ]


def _labels(gains: npt.NDArray[np.float64], max_gain: float) -> npt.NDArray[np.int32]:
    return np.rint(gains / max_gain * LABEL_LEVELS).astype(np.int32)


def build_matrix(
    service: SearchService,
    groups: Sequence[Group],
    *,
    history: Sequence[Event] = (),
    personalize: bool = True,
    progress: bool = False,
    desc: str = "features",
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64], list[int], list[Group]]:
    """Features, gains, group sizes and the groups kept (in matrix order), over served candidates.

    Personal features use only the user's ``history`` strictly before each group's time,
    replayed in time order, so nothing leaks from the session being learned.
    """
    index_of = service.bundle.catalog.index_of
    order = sorted(range(len(groups)), key=lambda i: groups[i].timestamp)
    qvecs = service.bundle.encoder.encode([g.query for g in groups], batch_size=64, progress=progress)
    c = service.bundle.catalog
    profiles = UserProfiles(c.index_of, c.brands_norm, c.category_norm, c.price, service.bundle.embeddings)
    past = sorted(history, key=lambda e: e.timestamp)
    cursor = 0
    xs: list[npt.NDArray[np.float32]] = []
    ys: list[npt.NDArray[np.float64]] = []
    sizes: list[int] = []
    kept: list[Group] = []
    for gi in tqdm(order, desc=desc, disable=not progress, unit="query"):
        g = groups[gi]
        if personalize:
            start = cursor
            while cursor < len(past) and past[cursor].timestamp < g.timestamp:
                cursor += 1
            profiles.add(past[start:cursor])
        ctx = query_context(service.bundle, g.query)
        cand = service.candidates(ctx, qvecs[gi], None)
        if len(cand.rows) == 0:
            continue
        rows_gain = {index_of[p]: v for p, v in g.gains.items() if p in index_of}
        y = np.asarray([rows_gain.get(int(r), 0.0) for r in cand.rows], dtype=np.float64)
        user = profiles.get(g.user_id) if personalize else None
        xs.append(service.features(ctx, cand, user, profiles))
        ys.append(y)
        sizes.append(len(cand.rows))
        kept.append(g)
    if not xs:
        return np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros(0), [], []
    return np.concatenate(xs), np.concatenate(ys), sizes, kept


def train_ranker(
    service: SearchService,
    groups: Sequence[Group],
    *,
    history: Sequence[Event] = (),
    personalize: bool = True,
    valid_fraction: float = 0.1,
    seed: int = 0,
    num_boost_round: int = 600,
    max_queries: int | None = 4000,
    progress: bool = False,
    threads: int = 0,
) -> tuple[Ranker, dict[str, Any]]:
    """Train LambdaRank on ``groups``; a seeded slice is held out for early stopping."""
    usable = [g for g in groups if any(v > 0 for v in g.gains.values())]
    if len(usable) < 10:
        raise ValueError(f"too few queries with a positive gain to train a ranker: {len(usable)}")
    rng = np.random.default_rng(seed)
    if max_queries is not None and len(usable) > max_queries:
        # Beyond a few thousand queries the ranker gains little and training time grows.
        keep = rng.choice(len(usable), size=max_queries, replace=False)
        usable = [usable[i] for i in sorted(keep)]
    perm = rng.permutation(len(usable))
    n_valid = max(1, int(len(usable) * valid_fraction))
    valid_q = [usable[i] for i in perm[:n_valid]]
    train_q = [usable[i] for i in perm[n_valid:]]
    max_gain = max(max(g.gains.values()) for g in usable)
    kw = {"history": history, "personalize": personalize, "progress": progress}
    x_tr, y_tr, g_tr, _ = build_matrix(service, train_q, desc="ranker train", **kw)  # type: ignore[arg-type]
    x_va, y_va, g_va, valid_kept = build_matrix(service, valid_q, desc="ranker valid", **kw)  # type: ignore[arg-type]
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
    dtrain = lightgbm.Dataset(x_tr, _labels(y_tr, max_gain), group=g_tr, feature_name=list(FEATURE_NAMES))
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
    for grp, size in zip(valid_kept, g_va, strict=True):
        s = scores[start : start + size]
        y = y_va[start : start + size]
        start += size
        order = np.argsort(-s, kind="stable")[:10]
        ranked = [str(i) for i in order]
        pseudo = {str(i): float(y[i]) for i in range(size) if y[i] > 0}
        ideal = {f"m{k}": v for k, v in enumerate(grp.gains.values()) if v > 0}
        # ideal DCG uses every judged positive, so recall misses are penalised.
        idcg = dcg(sorted(ideal.values(), reverse=True), 10)
        nd.append(dcg([pseudo.get(r, 0.0) for r in ranked], 10) / idcg if idcg > 0 else 0.0)
    metrics = {
        "personalized": personalize,
        "train_queries": len(train_q),
        "valid_queries": len(valid_q),
        "train_rows": int(x_tr.shape[0]),
        "best_iteration": int(booster.best_iteration or num_boost_round),
        "valid_ndcg@10": round(float(np.mean(nd)) if nd else math.nan, 4),
        "feature_importance": ranker.importance(),
    }
    return ranker, metrics
