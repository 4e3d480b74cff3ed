"""Evaluating a registry version: search NDCG@10 on a validation set, recommendation NDCG@10
on held-out next items, and a short side-by-side latency benchmark.

Every report keeps its per-query rows (query, NDCG@10, the top product ids and titles), so the
error analysis of :mod:`shoprec.registry.report` can be written later from the registry alone.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from shoprec.core.metrics import ndcg_at_k, percentile_ms
from shoprec.errors import DataError
from shoprec.models.bundle import Trust, load_bundle
from shoprec.pipeline.ltr import Group, groups_from_judgments
from shoprec.pipeline.validation import VALIDATION_FILE, evaluate_validation, load_validation
from shoprec.serving.recommend import RecommendService
from shoprec.serving.search import SearchService
from shoprec.types import Event

K = 10
HR_K = 20
TOP_KEPT = 5


@dataclass
class Loaded:
    """The services of one version, loaded side by side with others in one process."""

    version: str
    search: SearchService
    recommend: RecommendService | None


def load_version(version: str, folder: Path, *, trust: Trust | None = None) -> Loaded:
    bundle = load_bundle(folder, trust=trust)
    return Loaded(version, SearchService(bundle), RecommendService.load(bundle.files_root, bundle.catalog))


def _digest(path: Path) -> str:
    """A short content hash, so reports on the same validation set are recognised as such."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def validation_groups(folders: Sequence[Path], judgments: Path | None = None) -> tuple[list[Group], str]:
    """The validation set and its label: ``judgments`` when given, else the groups stored in the
    first of ``folders`` that holds any (at promotion: the candidate's, then the current's).
    The label ends in a hash of the file, so the same set is recognised across versions."""
    if judgments is not None:
        from shoprec.catalog.loaders import load_judgments

        rows, _ = load_judgments(judgments)
        groups = groups_from_judgments(rows)
        if not groups:
            raise DataError(f"{judgments}: no judged queries")
        return groups, f"judgments:{Path(judgments).name}:{_digest(Path(judgments))}"
    for folder in folders:
        groups = load_validation(folder)
        if groups:
            return groups, f"stored:{_digest(Path(folder) / VALIDATION_FILE)}"
    raise DataError(
        "no validation set: the artifacts hold no validation.jsonl (build with --validation-fraction > 0) "
        "and no --judgments file was given"
    )


def evaluate_search(loaded: Loaded, groups: Sequence[Group]) -> dict[str, Any]:
    """Search NDCG@10 (full pipeline) with per-query rows carrying the returned titles."""
    result = evaluate_validation(loaded.search, groups, k=K, per_query=True)
    catalog = loaded.search.bundle.catalog
    rows = []
    for row in result.pop("per_query"):
        top = [str(pid) for pid in row["top"][:TOP_KEPT]]
        titles = [catalog.titles[catalog.index_of[pid]] if pid in catalog.index_of else "" for pid in top]
        rows.append(
            {"query": row["query"], "user_id": row["user_id"], "ndcg@10": round(row["ndcg@10"], 4), "top": top}
            | {"titles": titles}
        )
    result["per_query"] = rows
    return result


def evaluate_recommend(loaded: Loaded, sequences: Mapping[str, Sequence[str]]) -> dict[str, Any] | None:
    """Next-item NDCG@10 and HR@20: each user's items but the last are replayed as history
    (models not updated), then the last item is the one relevant answer. None without a recommender."""
    rec = loaded.recommend
    if rec is None or not sequences:
        return None
    # A fresh service over the same models, so histories replayed here never leak into serving.
    service = RecommendService(
        rec.catalog,
        popularity=rec.popularity,
        cooccurrence=rec.cooccurrence,
        sequential=rec.sequential,
        blend_weight=None if rec.blend is None else rec.blend.weight,
    )
    known = rec.catalog.index_of
    nd: list[float] = []
    hits: list[float] = []
    for user, items in sequences.items():
        items = [i for i in items if i in known]
        if len(items) < 2:
            continue
        history, target = items[:-1], items[-1]
        service.add(
            (Event(f"eval:{user}", item, "view", float(t)) for t, item in enumerate(history)), update_models=False
        )
        got = [pid for pid, _ in service.recommend(f"eval:{user}", HR_K, exclude_seen=False).items]
        nd.append(ndcg_at_k(got[:K], {target: 1.0}, K))
        hits.append(float(target in got))
    if not nd:
        return None
    return {"ndcg@10": round(float(np.mean(nd)), 4), "hr@20": round(float(np.mean(hits)), 4), "users": len(nd)}


def evaluate_version(
    loaded: Loaded,
    groups: Sequence[Group],
    *,
    validation: str,
    sequences: Mapping[str, Sequence[str]] | None = None,
    context: str = "push",
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """One evaluation report, as kept in ``version.json``."""
    search = evaluate_search(loaded, groups)
    per_query = search.pop("per_query")
    report: dict[str, Any] = {
        "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock())),
        "context": context,
        "validation": validation,
        "search": search,
        "recommend": evaluate_recommend(loaded, sequences or {}),
        "per_query": per_query,
    }
    return report


def latency_benchmark(
    versions: Sequence[Loaded],
    queries: Sequence[str],
    *,
    repetitions: int = 5,
    timer: Callable[[], float] = time.perf_counter,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """p50/p99 of the full pipeline on the same ``queries`` for every version, side by side.

    One warm-up pass each, then ``repetitions`` rounds; within a round the versions take turns
    (their order alternates between rounds), so drift in machine load hits them alike. Each
    version's p99 is the median over rounds of that round's p99, which one noisy round cannot move.
    """
    if not queries:
        raise DataError("the latency benchmark needs at least one query")
    if repetitions < 1:
        raise DataError(f"repetitions must be >= 1, got {repetitions}")
    for v in versions:
        for q in queries:
            v.search.search(q, k=K)
    p99s: dict[str, list[float]] = {v.version: [] for v in versions}
    p50s: dict[str, list[float]] = {v.version: [] for v in versions}
    for r in tqdm(range(repetitions), desc="latency benchmark", unit="round", disable=not progress):
        order = list(versions) if r % 2 == 0 else list(reversed(versions))
        for v in order:
            lat = []
            for q in queries:
                t = timer()
                v.search.search(q, k=K)
                lat.append(timer() - t)
            p99s[v.version].append(percentile_ms(lat, 99))
            p50s[v.version].append(percentile_ms(lat, 50))
    return {
        name: {
            "p50_ms": round(float(np.median(p50s[name])), 3),
            "p99_ms": round(float(np.median(p99s[name])), 3),
            "queries": float(len(queries)),
            "repetitions": float(repetitions),
        }
        for name in p99s
    }
