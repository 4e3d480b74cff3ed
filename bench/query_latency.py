"""Latency of autocomplete, corrected search and faceting on Home Depot, in process and over
HTTP, one table.

    .venv/bin/python bench/query_latency.py [--artifacts DIR] [--queries 300] [--seed 0]
                                            [--skip-http] [--json]

The inputs come from the judged queries the artifacts hold (``--queries`` of them, sampled
with ``--seed``):

- ``suggest``: every prefix a shopper types of each query (two characters and more), as
  typed (``clean``) and with the typos of bench/typos.py injected first (``typos``), four
  products each, the service's default;
- ``search``: the full pipeline, each query clean and with typos (correction on: the typo
  rows are corrected searches), and ``correct_ms``, the correction step alone;
- ``facets``: ``facets=category,brand,price,in_stock`` on a query matching most of the
  catalog (its share is printed) and on the judged queries.

In process: the service's methods called one after another on one thread (the facets
through :func:`shoprec.serving.browse.browse`, as the server runs them). Over HTTP: one
client, one request at a time, over a keep-alive connection to ``shoprec serve`` (caches
off, the ladder held at full quality) on loopback; latency is the client's, and ``cpu_p99_ms``
the client thread's CPU time (in process: the call's own cost, whatever else the machine runs). ``--artifacts``
defaults to the served Home Depot build (bench/serve_artifacts.py).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from serve import BENCH_ENV, CACHE_OFF_ENV, Processes, shoprec_server
from serve_artifacts import served_artifacts
from typos import with_typos

from shoprec.models.bundle import load_bundle
from shoprec.pipeline.validation import load_validation
from shoprec.serving.browse import Browse, browse
from shoprec.serving.search import SearchService
from shoprec.types import Filters

FACETS = ("category", "brand", "price", "in_stock")
# shopper-like queries of the catalog's commonest words; the one matching the most products is used
BROAD_QUERIES = ("1 in. x 2 ft. white steel with light", "2 in. x 4 ft. white", "with")
FULL_QUALITY_ENV = {"SHOPREC_DEGRADE_UNDER_LOAD": "false", "SHOPREC_SHED_LOOP_LAG_MS": "0"}


def stats(samples: tuple[list[float], list[float]]) -> dict[str, float]:
    """Wall-clock p50/p95/p99 and the p99 of the calling thread's CPU time (what a call costs
    whatever else the machine runs: on a busy machine the wall tail is mostly waiting for a core)."""
    ms = np.asarray(samples[0], dtype=np.float64) * 1000
    cpu_ms = np.asarray(samples[1], dtype=np.float64) * 1000
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "cpu_p99_ms": round(float(np.percentile(cpu_ms, 99)), 3),
    }


def timed(calls: Iterable[Callable[[], object]]) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for call in calls:
        t, c = time.perf_counter(), time.thread_time()
        call()
        wall.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    return wall, cpu


def prefixes(queries: Iterable[str]) -> list[str]:
    return [q[:n] for q in queries for n in range(2, len(q) + 1)]


def broadest(service: SearchService) -> tuple[str, float]:
    """The broad query matching the most products, and the share of the catalog it matches."""
    n = len(service.bundle.catalog)
    shares = {q: float((service.bundle.lexical.scores(q) > 0).sum()) / n for q in BROAD_QUERIES}
    q = max(shares, key=lambda k: shares[k])
    return q, shares[q]


def in_process(service: SearchService, clean: list[str], typos: list[str], broad: str) -> dict[str, Any]:
    suggester = service.suggester
    rows: dict[str, Any] = {}
    for name, qs in (("clean", clean), ("typos", typos)):
        rows[f"suggest {name}"] = stats(timed(lambda p=p: suggester.suggest(p, 5, 4) for p in prefixes(qs)))
    rows["correct (step)"] = stats(timed(lambda q=q: service.correction(q) for q in typos))
    for name, qs in (("clean", clean), ("typos, corrected", typos)):
        rows[f"search {name}"] = stats(timed(lambda q=q: service.search(q, k=10) for q in qs))
    b = Browse(offset=0, limit=10, facets=FACETS)

    def faceted(q: str) -> Callable[[], object]:
        def run() -> object:
            ranked = service.search(q, k=100).hits
            return browse(service.bundle, q, Filters(), ranked, b)

        return run

    rows["facets broad"] = stats(timed(faceted(broad) for _ in range(50)))
    rows["facets judged"] = stats(timed(faceted(q) for q in clean))
    return rows


def over_http(port: int, clean: list[str], typos: list[str], broad: str) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

        def get(path: str, **params: Any) -> Callable[[], object]:
            def run() -> object:
                resp = client.get(path, params=params)
                resp.raise_for_status()
                return resp

            return run

        for q in clean[:20]:  # warm the connection and the server's lazy parts
            client.get("/v1/suggest", params={"q": q[:3]})
            client.get("/v1/search", params={"q": q})
        for name, qs in (("clean", clean), ("typos", typos)):
            rows[f"suggest {name}"] = stats(timed(get("/v1/suggest", q=p) for p in prefixes(qs)))
        for name, qs in (("clean", clean), ("typos, corrected", typos)):
            rows[f"search {name}"] = stats(timed(get("/v1/search", q=q) for q in qs))
        facets = ",".join(FACETS)
        rows["facets broad"] = stats(timed(get("/v1/search", q=broad, facets=facets) for _ in range(50)))
        rows["facets judged"] = stats(timed(get("/v1/search", q=q, facets=facets) for q in clean))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", help="an artifacts folder (default: the served Home Depot build)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    folder = served_artifacts(args.artifacts)
    queries = sorted({g.query for g in load_validation(Path(folder))})
    rng = random.Random(args.seed)
    clean = rng.sample(queries, min(args.queries, len(queries)))
    typos = [with_typos(q, rng) for q in clean]
    t = time.perf_counter()
    service = SearchService(load_bundle(folder, threads=1))
    service.search(clean[0], k=10)
    service.suggester.suggest(clean[0][:3], 5, 4)  # the lexicon, and the kernels compiled
    print(f"loaded and warmed in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    broad, share = broadest(service)
    results: dict[str, Any] = {"in_process": in_process(service, clean, typos, broad)}
    if not args.skip_http:
        procs = Processes()
        env = {**CACHE_OFF_ENV, **FULL_QUALITY_ENV, "SHOPREC_THREADS": "1"}
        try:
            with (
                tempfile.TemporaryDirectory(prefix="shoprec-bench-") as logs,
                shoprec_server(procs, Path(folder), env, Path(logs), "query-latency") as port,
            ):
                results["http"] = over_http(port, clean, typos, broad)
        finally:
            procs.stop_all()
    print(
        f"{len(clean)} judged queries ({len(prefixes(clean))} prefixes); broad query {broad!r} matches "
        f"{share:.0%} of {len(service.bundle.catalog)} products; {folder}"
    )
    cols = ["n", "p50_ms", "p95_ms", "p99_ms", "cpu_p99_ms"]
    print(" | ".join(f"{c:>24}" for c in ["where", "what", *cols]))
    for where, rows in results.items():
        for what, r in rows.items():
            print(" | ".join(f"{x!s:>24}" for x in (where, what, *(r[c] for c in cols))))
    if args.json:
        print(json.dumps({"broad_query": broad, "broad_share": round(share, 3), **results, "env": BENCH_ENV}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
