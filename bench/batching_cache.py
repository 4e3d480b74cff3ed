"""Dynamic batching and the caches, side by side in one run, in process (no HTTP).

    .venv/bin/python bench/batching_cache.py [--artifacts DIR] [--queries 256] [--concurrency 16]
        [--batch-target-s 0.02] [--json]

Real Home Depot queries (``../shared/data/homedepot/judgments_dev.csv``, distinct) over a
real artifacts folder (default: the newest one ``bench/serve_artifacts.py`` built under
``.shoprec/bench/``). Rows:

- ``encode per request``: each concurrent request encodes its own query in a worker thread
  (what a service without a batcher does);
- ``encode batched``: the same requests through :class:`DynamicBatcher`;
- ``search, cache miss`` / ``search, cache hit``: :class:`AcceleratedSearch.search` (full
  pipeline) on distinct queries with empty caches, then the same queries again.

Throughput is requests/s at the given concurrency; latencies are per request. With
``--json`` the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from shoprec.core.metrics import percentile_ms
from shoprec.models.bundle import load_bundle
from shoprec.serving.accelerated import AcceleratedSearch
from shoprec.serving.batching import DynamicBatcher
from shoprec.serving.cache import SearchCache
from shoprec.serving.search import SearchQuery, SearchService
from shoprec.types import FloatArray

ROOT = Path(__file__).resolve().parent.parent
DATA = (ROOT / ".." / "shared" / "data" / "homedepot").resolve()


def default_artifacts() -> Path:
    found = sorted((ROOT / ".shoprec" / "bench").glob("*/artifacts/manifest.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        sys.exit("no artifacts: pass --artifacts, or run bench/serve.py once to build them")
    return found[-1].parent


def load_queries(n: int) -> list[str]:
    with (DATA / "judgments_dev.csv").open(encoding="utf-8") as f:
        queries = sorted({row["query"].strip() for row in csv.DictReader(f) if row["query"].strip()})
    return queries[:n]


async def drive(
    name: str, queries: list[str], concurrency: int, call: Callable[[str], Awaitable[Any]]
) -> dict[str, Any]:
    latencies: list[float] = []
    todo = iter(queries)
    bar = tqdm(total=len(queries), desc=name, file=sys.stderr, leave=False)

    async def worker() -> None:
        for q in todo:
            t = time.perf_counter()
            await call(q)
            latencies.append(time.perf_counter() - t)
            bar.update()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    bar.close()
    return {
        "name": name,
        "requests": len(latencies),
        "throughput_rps": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile_ms(latencies, 50), 3),
        "p99_ms": round(percentile_ms(latencies, 99), 3),
    }


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    bundle = load_bundle(args.artifacts)
    service = SearchService(bundle)
    queries = load_queries(args.queries)
    service.encode_queries(queries[:8])  # warm the session
    rows: list[dict[str, Any]] = []

    async def per_request(q: str) -> FloatArray:
        vecs: FloatArray = await asyncio.to_thread(service.encode_queries, [q])
        vec: FloatArray = vecs[0]
        return vec

    rows.append(await drive("encode per request", queries, args.concurrency, per_request))
    batcher: DynamicBatcher[str, FloatArray] = DynamicBatcher(
        lambda texts: list(service.encode_queries(texts)),
        max_batch_size=args.batch_max_size,
        batch_wait_s=0.002,
        target_batch_s=args.batch_target_s,
    )
    rows.append(await drive("encode batched", queries, args.concurrency, batcher.submit))
    rows[-1]["batch_size_now"] = batcher.current_max_batch_size
    await batcher.aclose()

    fast = AcceleratedSearch(SearchCache(), batch_max_size=args.batch_max_size, batch_target_s=args.batch_target_s)

    async def search(q: str) -> Any:
        return await fast.search(service, SearchQuery(q, k=10), level="full")

    rows.append(await drive("search, cache miss", queries, args.concurrency, search))
    rows.append(await drive("search, cache hit", queries, args.concurrency, search))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=None)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-max-size", type=int, default=32)
    parser.add_argument("--batch-target-s", type=float, default=0.02, help="model time one batch may take")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.artifacts = args.artifacts or default_artifacts()
    rows = asyncio.run(run(args))
    base = rows[0]["throughput_rps"]
    print(f"{'':22} {'req/s':>9} {'x per-req':>9} {'p50 ms':>9} {'p99 ms':>9}")
    for r in rows:
        ratio = r["throughput_rps"] / base if base else float("nan")
        print(f"{r['name']:22} {r['throughput_rps']:9.1f} {ratio:9.2f} {r['p50_ms']:9.3f} {r['p99_ms']:9.3f}")
    if args.json:
        meta = {
            "artifacts": str(args.artifacts),
            "concurrency": args.concurrency,
            "batch_target_s": args.batch_target_s,
        }
        print(json.dumps({**meta, "rows": rows}))


if __name__ == "__main__":
    main()
