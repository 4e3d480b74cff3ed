"""Measure the degradation ladder offline: each level's cost and quality on the validation set.

Levels run from the full pipeline down to lexical only. Each is served by the same
:class:`~shoprec.serving.search.SearchService` with a pipeline and an
:class:`~shoprec.serving.search.Effort`; its NDCG@10 and per-query p50/p99 latency come from
:func:`shoprec.pipeline.validation.evaluate_validation` on the held-out queries, so no level
is judged on queries the ranker learned from. The result goes into the manifest under
``"ladder"`` (at build time, or later with ``shoprec ladder measure``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tqdm import tqdm

from shoprec import artifacts
from shoprec.core.ladder import LadderLevel
from shoprec.errors import ArtifactError
from shoprec.pipeline.ltr import Group
from shoprec.pipeline.validation import evaluate_validation, load_validation
from shoprec.serving.admission import serve_params
from shoprec.serving.search import SearchService

if TYPE_CHECKING:
    from shoprec.models.bundle import Bundle

log = logging.getLogger(__name__)

# Most expensive first. ``params`` are what the server passes to SearchService.search.
LEVELS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("full", {"pipeline": "full"}),
    ("hybrid", {"pipeline": "hybrid"}),
    ("hybrid_lite", {"pipeline": "hybrid", "lexical_candidates": 20, "dense_candidates": 20, "ef_search": 32}),
    ("bm25", {"pipeline": "bm25", "lexical_candidates": 30}),
)
LADDER_VERSION = 1


class _LevelService:
    """The service as one level serves it: ``evaluate_validation`` calls ``search`` on this."""

    def __init__(self, service: SearchService, params: Mapping[str, Any]) -> None:
        self._service = service
        _, self._effort = serve_params(LadderLevel("", 0.0, 0.0, 0.0, params))

    def search(self, query: str, **kw: Any) -> Any:
        return self._service.search(query, effort=self._effort, **kw)


def measure_ladder(
    service: SearchService,
    groups: Sequence[Group],
    *,
    levels: Sequence[tuple[str, Mapping[str, Any]]] = LEVELS,
    repeats: int = 2,
    max_queries: int = 300,
    progress: bool = True,
) -> dict[str, Any]:
    """Cost and NDCG@10 of every level on the first ``max_queries`` validation groups (they
    are a seeded random sample already). Latency is the best of ``repeats`` passes (the first
    pass also warms caches and the encoder); NDCG does not change between passes."""
    groups = list(groups[:max_queries])
    if not groups:
        return {"version": LADDER_VERSION, "levels": [], "queries": 0, "note": "no validation queries"}
    service.search(groups[0].query, pipeline="full")  # warm up the encoder and the ranker
    out: list[dict[str, Any]] = []
    for name, params in tqdm(levels, desc="ladder", unit="level", disable=not progress):
        view = cast(SearchService, _LevelService(service, params))
        pipeline, _ = serve_params(LadderLevel(name, 0.0, 0.0, 0.0, params))
        runs = [evaluate_validation(view, groups, pipeline=pipeline) for _ in range(max(1, repeats))]
        best = min(runs, key=lambda r: float(r["p50_ms"]))
        level = LadderLevel(
            name=name,
            p50_ms=float(best["p50_ms"]),
            p99_ms=min(float(r["p99_ms"]) for r in runs),
            ndcg=float(runs[0]["ndcg@10"]),
            params=dict(params),
        )
        out.append(level.to_json())
    return {
        "version": LADDER_VERSION,
        "levels": out,
        "queries": int(runs[0]["queries"]),
        "encoder": service.bundle.encoder.model_id,
    }


def ladder_service(bundle: Bundle) -> SearchService:
    """The service the ladder is measured on: the server's default effort (settings
    ``lexical_candidates``, ``dense_candidates``, ``ef_search``), which its levels refine."""
    return SearchService(bundle)


def measure_artifacts(folder: Path, *, threads: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Measure the ladder of an artifacts folder and store it in its manifest (atomically).
    Refuses signed artifacts: a rewritten manifest would no longer match its signature."""
    from shoprec.models.bundle import load_bundle

    folder = Path(folder)
    if (folder / "manifest.sig").exists():
        raise ArtifactError(f"{folder} is signed; measure the ladder at build time (shoprec build) instead")
    bundle = load_bundle(folder, threads=threads)
    groups = load_validation(bundle.files_root)
    ladder = measure_ladder(ladder_service(bundle), groups, progress=progress)
    manifest = artifacts.read_manifest(folder)
    manifest["ladder"] = ladder
    artifacts.save_manifest(folder, manifest)
    log.info("measured the ladder of %s over %d validation queries", folder, ladder["queries"])
    return ladder
