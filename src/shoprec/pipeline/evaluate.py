"""Search evaluation under the whole-catalog protocol.

Gain = relevance minus the lowest relevance in the judgments; every product of the
catalog is a candidate; unjudged products have gain 0; queries with no positive gain
are skipped and counted. Latency is measured per query, encoding included.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from shoprec.core.metrics import ndcg_at_k, percentile_ms, recall_at_k, reciprocal_rank
from shoprec.pipeline.ltr import Group, gains_from_judgments
from shoprec.serving.search import Pipeline, SearchService
from shoprec.types import Judgment


def evaluate_search(
    service: SearchService,
    judgments: Sequence[Judgment],
    *,
    pipeline: Pipeline = "full",
    progress: bool = False,
    per_query: bool = False,
    correct: bool = True,
) -> dict[str, Any]:
    """Quality and per-query latency of one pipeline on judged queries (``correct``: with typo
    correction, as the API searches by default)."""
    gains = gains_from_judgments(judgments)
    return evaluate_gains(service, gains, pipeline=pipeline, progress=progress, per_query=per_query, correct=correct)


def evaluate_gains(
    service: SearchService,
    gains: Mapping[str, Mapping[str, float]],
    *,
    pipeline: Pipeline = "full",
    progress: bool = False,
    per_query: bool = False,
    correct: bool = True,
) -> dict[str, Any]:
    """:func:`evaluate_search` on gains already worked out per query (the artifacts'
    validation groups, for one). ``correct``: with typo correction, as the API searches by default."""
    queries = [q for q, g in gains.items() if any(v > 0 for v in g.values())]
    skipped = len(gains) - len(queries)
    nd: list[float] = []
    rc: list[float] = []
    rr: list[float] = []
    lat: list[float] = []
    rows: list[dict[str, Any]] = []
    for q in tqdm(queries, desc=f"eval {pipeline}", disable=not progress, unit="query"):
        t = time.perf_counter()
        res = service.search(q, k=100, pipeline=pipeline, correct=correct)
        lat.append(time.perf_counter() - t)
        ranked = [h.product_id for h in res.hits]
        g = gains[q]
        nd.append(ndcg_at_k(ranked, g, 10))
        rc.append(recall_at_k(ranked, g, 100))
        rr.append(reciprocal_rank(ranked, g))
        if per_query:
            rows.append({"query": q, "ndcg@10": nd[-1], "top": ranked[:10]})
    out: dict[str, Any] = {
        "pipeline": pipeline,
        "ndcg@10": round(float(np.mean(nd)), 4) if nd else 0.0,
        "recall@100": round(float(np.mean(rc)), 4) if rc else 0.0,
        "mrr": round(float(np.mean(rr)), 4) if rr else 0.0,
        "queries": len(queries),
        "skipped": skipped,
        "p50_ms": round(percentile_ms(lat, 50), 2),
        "p99_ms": round(percentile_ms(lat, 99), 2),
    }
    if per_query:
        out["per_query"] = rows
    return out


def evaluate_groups(
    service: SearchService,
    groups: Sequence[Group],
    *,
    personalize: bool = True,
    k: int = 10,
    progress: bool = False,
) -> dict[str, Any]:
    """NDCG@k / MRR of the full pipeline on (user, query) sessions whose gains are what the
    user actually clicked, carted or bought. With ``personalize`` the user's profile (from
    the history the service holds) feeds the ranker; without, the same ranker sees no user."""
    nd: list[float] = []
    rr: list[float] = []
    for g in tqdm(groups, desc="eval sessions", disable=not progress, unit="session"):
        res = service.search(g.query, k=max(k, 10), pipeline="full", user_id=g.user_id if personalize else None)
        ranked = [h.product_id for h in res.hits]
        nd.append(ndcg_at_k(ranked, g.gains, k))
        rr.append(reciprocal_rank(ranked, g.gains))
    return {
        f"ndcg@{k}": round(float(np.mean(nd)), 4) if nd else 0.0,
        "mrr": round(float(np.mean(rr)), 4) if rr else 0.0,
        "sessions": len(nd),
        "personalized": personalize,
    }
