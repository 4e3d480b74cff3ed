"""How many candidates, and how hard to look for them: quality and cost against depth and efSearch.

On the artifacts' held-out validation queries (by default the optimized Home Depot build that
``bench/serve.py`` serves), for each candidate depth (BM25 and ANN candidates per query,
the same for both) and HNSW efSearch, the full pipeline's NDCG@10, the candidate recall
(the share of each query's relevant products that reach the ranker) and the ANN's recall
at that depth against exact search, with the full search's p50/p99 and the candidates'
mean count. The baseline is the service's defaults (depth 100, efSearch 256); the table
marks the cheapest setting whose NDCG@10 is within ``--tolerance`` (0.002) of it. With
``--json`` the last stdout line is one JSON object.

    .venv/bin/python bench/candidates.py
    .venv/bin/python bench/candidates.py --depths 100,50,30 --efs 256,64 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_artifacts import served_artifacts  # noqa: E402

from shoprec.core.metrics import ndcg_at_k  # noqa: E402
from shoprec.models.bundle import load_bundle  # noqa: E402
from shoprec.pipeline.ltr import Group  # noqa: E402
from shoprec.pipeline.validation import load_validation  # noqa: E402
from shoprec.serving.search import SearchService, query_context
from shoprec.types import Effort  # noqa: E402


def measure(
    service: SearchService, groups: list[Group], depth: int, ef: int, exact: list[np.ndarray]
) -> dict[str, Any]:
    effort = Effort(lexical_candidates=depth, dense_candidates=depth, ef_search=ef)
    index_of = service.bundle.catalog.index_of
    nd, cand_recall, ann_recall, sizes, lat = [], [], [], [], []
    for g, truth in zip(groups, exact, strict=True):
        t = time.perf_counter()
        res = service.search(g.query, k=10, pipeline="full", effort=effort, user_id=g.user_id)
        lat.append(time.perf_counter() - t)
        nd.append(ndcg_at_k([h.product_id for h in res.hits], g.gains, 10))
        ctx = query_context(service.bundle, g.query)
        qvec = service.encode_queries([g.query])[0]
        cand = service.candidates(ctx, qvec, None, effort=effort, match_features=False)
        rows = set(cand.rows.tolist())
        relevant = {index_of[p] for p, v in g.gains.items() if v > 0 and p in index_of}
        if relevant:
            cand_recall.append(len(relevant & rows) / len(relevant))
        sizes.append(len(rows))
        _, ids = service.bundle.vectors.search(qvec[None, :], depth, ef_search=ef)
        top = set(truth[:depth].tolist())
        ann_recall.append(len(top & set(ids[0].tolist())) / max(1, len(top)))
    return {
        "depth": depth,
        "ef_search": ef,
        "ndcg@10": round(float(np.mean(nd)), 4),
        "candidate_recall": round(float(np.mean(cand_recall)), 4),
        "ann_recall": round(float(np.mean(ann_recall)), 4),
        "candidates": round(float(np.mean(sizes)), 1),
        "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 3),
        "p99_ms": round(float(np.percentile(lat, 99)) * 1000, 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", help="artifacts folder (default: the cached optimized Home Depot build)")
    ap.add_argument("--depths", default="100,75,50,40,30,20")
    ap.add_argument("--efs", default="256,128,96,64")
    ap.add_argument("--tolerance", type=float, default=0.002)
    ap.add_argument("--max-queries", type=int, default=2000)
    ap.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    args = ap.parse_args(argv)
    folder = served_artifacts(args.artifacts)
    service = SearchService(load_bundle(folder, threads=1))
    groups = [g for g in load_validation(folder) if any(v > 0 for v in g.gains.values())][: args.max_queries]
    emb = np.asarray(service.bundle.embeddings, dtype=np.float32)
    exact = []  # the dense stage's true ranking per query (brute force), best first
    depths = [int(x) for x in args.depths.split(",")]
    for g in groups:
        scores = emb @ service.encode_queries([g.query])[0]
        best = np.argpartition(-scores, max(depths))[: max(depths)]
        exact.append(best[np.argsort(-scores[best], kind="stable")])
    service.search(groups[0].query)  # warm up
    efs = [int(x) for x in args.efs.split(",")]
    rows = []
    for depth in tqdm(depths, desc="depths", unit="depth", disable=args.json):
        for ef in efs:
            rows.append(measure(service, groups, depth, ef, exact))
    base = next((r for r in rows if r["depth"] == 100 and r["ef_search"] == 256), rows[0])
    within = [r for r in rows if r["ndcg@10"] >= base["ndcg@10"] - args.tolerance]
    cheapest = min(within, key=lambda r: r["p50_ms"])
    print(f"{len(groups)} validation queries of {folder}; full pipeline, k=10, one thread")
    cols = ["depth", "ef_search", "ndcg@10", "candidate_recall", "ann_recall", "candidates", "p50_ms", "p99_ms"]
    print("  ".join(f"{c:>16}" for c in cols))
    for r in rows:
        mark = "  <- cheapest within tolerance" if r is cheapest else ""
        print("  ".join(f"{r[c]:>16}" for c in cols) + mark)
    if args.json:
        print(
            json.dumps(
                {"artifacts": str(folder), "queries": len(groups), "baseline": base, "cheapest": cheapest, "rows": rows}
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
