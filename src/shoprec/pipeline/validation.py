"""The validation set that travels with artifacts.

``build`` holds a seeded fraction of its training groups (judged queries, or per-session
events) out of ranker training and stores them as ``validation.jsonl`` beside the model.
Everything that must compare versions or variants of the same artifacts on quality — the
optimization gate, the degradation ladder, the registry's promotion gate — evaluates on
these groups, so no number is measured on queries the ranker learned from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoprec.core.metrics import ndcg_at_k, percentile_ms, reciprocal_rank
from shoprec.errors import ArtifactError, ConfigError
from shoprec.pipeline.ltr import Group
from shoprec.serving.search import Pipeline, SearchService

VALIDATION_FILE = "validation.jsonl"
MIN_GROUPS_FOR_HOLDOUT = 10


def split_groups(groups: Sequence[Group], fraction: float, *, seed: int = 0) -> tuple[list[Group], list[Group]]:
    """(train, validation): a seeded random ``fraction`` of the groups is held out; nothing
    is held out when there are fewer than ``MIN_GROUPS_FOR_HOLDOUT`` groups or ``fraction`` is 0."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"validation fraction must be in [0, 1), got {fraction}")
    n_val = int(round(len(groups) * fraction))
    if len(groups) < MIN_GROUPS_FOR_HOLDOUT or n_val == 0:
        return list(groups), []
    order = np.random.default_rng(seed).permutation(len(groups))
    held = set(order[:n_val].tolist())
    train = [g for i, g in enumerate(groups) if i not in held]
    val = [g for i, g in enumerate(groups) if i in held]
    return train, val


def write_validation(groups: Sequence[Group], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for g in groups:
            row = {"query": g.query, "gains": dict(g.gains), "user_id": g.user_id, "timestamp": g.timestamp}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def load_validation(folder: Path) -> list[Group]:
    """The validation groups stored in an artifacts folder (empty when it holds none)."""
    path = Path(folder) / VALIDATION_FILE
    if not path.exists():
        return []
    out: list[Group] = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                gains = {str(k): float(v) for k, v in d["gains"].items()}
                out.append(Group(str(d["query"]), gains, d.get("user_id"), float(d.get("timestamp", 0.0))))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ArtifactError(f"{path}:{line_no}: bad validation row: {exc}") from exc
    return out


def evaluate_validation(
    service: SearchService,
    groups: Sequence[Group],
    *,
    pipeline: Pipeline = "full",
    k: int = 10,
    per_query: bool = False,
) -> dict[str, Any]:
    """NDCG@k, MRR and per-query latency of one pipeline on the validation groups (each
    group's user, when it has one, is passed so personalized rankers are judged as served)."""
    nd: list[float] = []
    rr: list[float] = []
    lat: list[float] = []
    rows: list[dict[str, Any]] = []
    for g in groups:
        if not any(v > 0 for v in g.gains.values()):
            continue
        t = time.perf_counter()
        res = service.search(g.query, k=max(k, 10), pipeline=pipeline, user_id=g.user_id)
        lat.append(time.perf_counter() - t)
        ranked = [h.product_id for h in res.hits]
        nd.append(ndcg_at_k(ranked, g.gains, k))
        rr.append(reciprocal_rank(ranked, g.gains))
        if per_query:
            rows.append({"query": g.query, "user_id": g.user_id, f"ndcg@{k}": nd[-1], "top": ranked[:k]})
    out: dict[str, Any] = {
        "pipeline": pipeline,
        f"ndcg@{k}": round(float(np.mean(nd)), 4) if nd else 0.0,
        "mrr": round(float(np.mean(rr)), 4) if rr else 0.0,
        "queries": len(nd),
        "p50_ms": round(percentile_ms(lat, 50), 3),
        "p99_ms": round(percentile_ms(lat, 99), 3),
    }
    if per_query:
        out["per_query"] = rows
    return out
