"""Compile the trained ranker into the artifacts being written, and keep it only if it earns it.

The compiled library (:mod:`shoprec.models.compiled`) is kept when, on the ranker's real
inputs — the candidates of held-out queries, with each query's user where it has one — its
scores equal LightGBM's to 1e-6 and it scores those candidate batches faster. The report
(both p50s per batch, the largest difference, what was kept and why) goes into the manifest
under ``metrics.ranker.compiled``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shoprec.models.compiled import COMPILED_FILE, MAX_ABS_DIFF, CompiledTrees, CompilerUnavailableError, compile_trees
from shoprec.models.ranker import Ranker
from shoprec.pipeline.ltr import Group
from shoprec.serving.search import SearchService, query_context

log = logging.getLogger(__name__)

MODEL_FILE = "ranker.txt"


def candidate_batches(
    service: SearchService, groups: Sequence[Group], limit: int = 100
) -> list[npt.NDArray[np.float32]]:
    """The ranker's feature matrix for each of the first ``limit`` queries, as served."""
    batches = []
    for g in groups[:limit]:
        ctx = query_context(service.bundle, g.query)
        cand = service.candidates(ctx, service.encode_queries([g.query])[0], None)
        if len(cand.rows):
            batches.append(service.features(ctx, cand, service.users.get(g.user_id)))
    return batches


def _p50_ms(
    predict: Callable[[npt.NDArray[np.float32]], object], batches: Sequence[npt.NDArray[np.float32]], repeats: int = 3
) -> float:
    times = []
    for _ in range(repeats):
        for x in batches:
            t = time.perf_counter()
            predict(x)
            times.append(time.perf_counter() - t)
    return round(float(np.median(times)) * 1000, 4)


def compile_ranker(
    folder: Path, service: SearchService, groups: Sequence[Group], *, threads: int | None = None
) -> dict[str, Any]:
    """Compile ``folder``'s ranker into ``folder/ranker.so`` and keep it only when it gives the
    model's scores and is faster on the candidates of ``groups``; the report."""
    out = folder / COMPILED_FILE
    model = Ranker.load(folder / MODEL_FILE)
    t = time.perf_counter()
    try:
        compile_trees(folder / MODEL_FILE, out, threads=threads)
        trees = CompiledTrees(out)
    except CompilerUnavailableError as exc:
        out.unlink(missing_ok=True)
        log.warning("ranker not compiled: %s", exc)
        return {"kept": "lightgbm", "reason": str(exc)}
    report: dict[str, Any] = {"compiler": "tl2cgen", "compile_s": round(time.perf_counter() - t, 2)}
    batches = candidate_batches(service, groups)
    if not batches:
        out.unlink()
        return {**report, "kept": "lightgbm", "reason": "no candidates to compare on"}
    diff = max(model.max_abs_diff(trees, x) for x in batches)
    report.update(
        {
            "batches": len(batches),
            "rows_p50": int(np.median([len(x) for x in batches])),
            "max_abs_diff": diff,
            "lightgbm_p50_ms": _p50_ms(model.predict_lightgbm, batches),
            "compiled_p50_ms": _p50_ms(trees.predict, batches),
        }
    )
    if not diff <= MAX_ABS_DIFF:
        reason = f"its scores differ from LightGBM's by {diff:.2e} (> {MAX_ABS_DIFF:.0e})"
    elif report["compiled_p50_ms"] >= report["lightgbm_p50_ms"]:
        reason = "no faster than LightGBM on these candidates"
    else:
        log.info(
            "ranker compiled: %.3f ms per query's candidates against LightGBM's %.3f ms (largest difference %.1e)",
            report["compiled_p50_ms"],
            report["lightgbm_p50_ms"],
            diff,
        )
        return {**report, "kept": "compiled"}
    out.unlink()
    log.warning("compiled ranker left out: %s", reason)
    return {**report, "kept": "lightgbm", "reason": reason}
