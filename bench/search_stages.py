"""Where a search's time goes, stage by stage, in process (no HTTP).

Runs the artifacts' validation queries (``validation.jsonl``; the Home Depot build that
``bench/serve.py`` serves by default) through :class:`SearchService` with every stage timed
(``SearchService.profile``): query analysis, encode, lexical retrieval, ANN, candidate union,
token matching, each feature group, ranker inference, and the rendering of the hits as the
fast path serializes them. Prints per-stage p50/p99 (ms) per pipeline; with ``--json`` the
last stdout line is one JSON object ``{"pipelines": {name: {"stages": {stage: {"p50_ms",
"p99_ms"}}, "total_p50_ms", ...}}, ...}``.

    .venv/bin/python bench/search_stages.py                 # the cached optimized Home Depot build
    .venv/bin/python bench/search_stages.py --artifacts DIR --pipelines full,hybrid --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_artifacts import served_artifacts  # noqa: E402

from shoprec.http.render import HitRenderer  # noqa: E402
from shoprec.models.bundle import load_bundle  # noqa: E402
from shoprec.pipeline.validation import load_validation  # noqa: E402
from shoprec.serving.search import PIPELINES, SearchService  # noqa: E402

# stage keys in the order a search runs them (a pipeline shows the ones it has)
ORDER = (
    "analysis_ms",
    "encode_ms",
    "lexical_ms",
    "ann_ms",
    "union_ms",
    "match_ms",
    "feat_user_ms",
    "feat_retrieval_ms",
    "feat_tokens_ms",
    "feat_text_ms",
    "feat_catalog_ms",
    "features_ms",
    "rank_ms",
    "render_ms",
    "total_ms",
)


def profile(service: SearchService, queries: list[str], pipeline: str, repeats: int) -> dict[str, Any]:
    """Per-stage p50/p99 over the queries (the best pass of ``repeats`` by total p50; the
    first pass warms the encoder and the caches of the analyser)."""
    renderer = HitRenderer()
    catalog = service.bundle.catalog
    best: dict[str, list[float]] | None = None
    for _ in range(max(1, repeats)):
        stages: dict[str, list[float]] = defaultdict(list)
        for q in queries:
            t0 = time.perf_counter()
            res = service.search(q, k=10, pipeline=pipeline)  # type: ignore[arg-type]
            t1 = time.perf_counter()
            renderer.fragment(catalog, res.hits, False)
            t2 = time.perf_counter()
            for name, ms in res.timings_ms.items():
                if name not in ("total_ms", "retrieve_ms"):
                    stages[name].append(ms)
            stages["render_ms"].append((t2 - t1) * 1000)
            stages["total_ms"].append((t2 - t0) * 1000)
        if best is None or np.median(stages["total_ms"]) < np.median(best["total_ms"]):
            best = stages
    assert best is not None
    out = {
        name: {
            "p50_ms": round(float(np.percentile(best[name], 50)), 4),
            "p99_ms": round(float(np.percentile(best[name], 99)), 4),
        }
        for name in ORDER
        if name in best
    }
    return {"stages": out, "total_p50_ms": out["total_ms"]["p50_ms"], "total_p99_ms": out["total_ms"]["p99_ms"]}


def check_features(service: SearchService, queries: list[str]) -> dict[str, Any]:
    """The bulk features against the plain per-candidate ones (tests/support/
    reference_features.py) on these queries: the largest absolute difference."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from shoprec.serving.search import query_context
    from support.reference_features import reference_features, reference_matches

    worst, values = 0.0, 0
    for q in tqdm(queries, desc="check features", unit="query"):
        ctx = query_context(service.bundle, q)
        cand = service.candidates(ctx, service.encode_queries([q])[0], None)
        for name, want in reference_matches(service, ctx, cand.rows).items():
            if not np.array_equal(getattr(cand, name), want):
                raise SystemExit(f"{name} differs for {q!r}")
        got = service.features(ctx, cand)
        want = reference_features(service, ctx, cand, service.users.features(None, cand.rows))
        if not np.array_equal(np.isnan(got), np.isnan(want)):
            raise SystemExit(f"NaN features differ for {q!r}")
        both = ~np.isnan(got)
        worst = max(worst, float(np.abs(got[both] - want[both]).max(initial=0.0)))
        values += got.size
    return {"queries": len(queries), "values": values, "max_abs_diff": worst}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", help="artifacts folder (default: the cached optimized Home Depot build)")
    ap.add_argument("--pipelines", default="full,hybrid,bm25", help=f"comma-separated, of {','.join(PIPELINES)}")
    ap.add_argument("--max-queries", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    ap.add_argument(
        "--check-features", action="store_true", help="first compare the bulk features with the per-candidate ones"
    )
    args = ap.parse_args(argv)
    folder = served_artifacts(args.artifacts)
    service = SearchService(load_bundle(folder, threads=1))
    service.profile = True
    groups = load_validation(folder)[: args.max_queries]
    queries = [g.query for g in groups]
    if not queries:
        print(f"{folder} holds no validation queries", file=sys.stderr)
        return 2
    checked = check_features(service, queries) if args.check_features else None
    if checked is not None:
        print(f"bulk features = per-candidate features: {checked}")
    pipelines = [p for p in args.pipelines.split(",") if p]
    results: dict[str, Any] = {}
    for p in tqdm(pipelines, desc="profile", unit="pipeline", disable=args.json):
        results[p] = profile(service, queries, p, args.repeats)
    names = [n for n in ORDER if any(n in r["stages"] for r in results.values())]
    print(f"{len(queries)} validation queries of {folder}, k=10, one thread; ms per query")
    print(f"{'stage':<18}" + "".join(f"{p + ' p50':>12}{p + ' p99':>12}" for p in pipelines))
    for n in names:
        cells = ""
        for p in pipelines:
            st = results[p]["stages"].get(n)
            cells += f"{st['p50_ms']:>12.3f}{st['p99_ms']:>12.3f}" if st else f"{'':>12}{'':>12}"
        print(f"{n.removesuffix('_ms'):<18}{cells}")
    if args.json:
        out = {"artifacts": str(folder), "queries": len(queries), "pipelines": results}
        if checked is not None:
            out["feature_check"] = checked
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
