"""Exact flat vs HNSW in FAISS, searched through :class:`shoprec.retrieval.vector.VectorIndex`.

    .venv/bin/python bench/ann.py [--sizes 5000,10000,...] [--embeddings FILE.npy] [--json]

For each catalog size: build time, single-query latency p50/p99 (``omp_set_num_threads(1)``,
one query per call, as a request is served) and, for HNSW (M 32, efConstruction 80) at each
efSearch, recall@100 against the exact top-100, tolerating ties at the 100th score as in
FAISS ``contrib/evaluation.py``. ``VectorIndex.search`` uses ``max(efSearch, k)``, so with
k = 100 efSearch 32 and 64 run as 100 (the table shows the effective value). Both indexes
are grown incrementally over the sizes (HNSW insertion is incremental, so a prefix build is
the same as a fresh one); build time is the cumulative time to reach each size.

Vectors: seeded synthetic clusters by default (dim 384, 2,000 Gaussian centres + noise in a
32-d subspace, small isotropic noise, unit length: neighbour similarities and HNSW recall
close to, slightly easier than, MiniLM embeddings of the Home Depot titles; isotropic noise
in all 384 dims would make every top-100 a near-random set and HNSW look far worse).
``--embeddings`` uses real vectors (e.g. an artifacts folder's ``embeddings.npy``): a seeded
permutation, tiled with a small jitter beyond the file's rows. Queries: 500 sampled base
vectors, perturbed and renormalised. Ends with the smallest size where HNSW at recall@100 >=
0.98 is >= 3x faster (p50) than flat, next to ``DEFAULT_EXACT_MAX``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from shoprec.core.metrics import percentile_ms
from shoprec.retrieval.vector import DEFAULT_EXACT_MAX, VectorIndex

F32 = npt.NDArray[np.float32]
K = 100
DIM = 384
N_CENTRES = 2_000
LATENT_DIM, LATENT_NOISE, AMBIENT_NOISE = 32, 0.6, 0.3  # calibrated on Home Depot MiniLM
N_QUERIES = 500
EF_SEARCH = (32, 64, 128)
HNSW_M, EF_CONSTRUCTION = 32, 80
MIN_RECALL, MIN_SPEEDUP = 0.98, 3.0
DEFAULT_SIZES = "5000,10000,20000,50000,100000,200000"


def unit(x: F32) -> F32:
    out: F32 = (x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)
    return out


def synthetic(n: int, dim: int, seed: int) -> F32:
    """Clustered unit vectors with a low intrinsic dimension, like sentence embeddings."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, LATENT_DIM)))[0].astype(np.float32)
    centres = rng.standard_normal((N_CENTRES, LATENT_DIM), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    scale = 1.0 / np.sqrt(LATENT_DIM)
    for lo in range(0, n, 50_000):
        hi = min(n, lo + 50_000)
        latent = centres[rng.integers(0, N_CENTRES, hi - lo)]
        latent += LATENT_NOISE * rng.standard_normal(latent.shape, dtype=np.float32)
        ambient = rng.standard_normal((hi - lo, dim), dtype=np.float32)
        out[lo:hi] = unit(scale * latent @ basis.T + AMBIENT_NOISE / np.sqrt(dim) * ambient)
    return out


def from_file(source: F32, n: int, seed: int) -> F32:
    """``n`` rows of ``source`` in a seeded order (each prefix is a random sample); past the
    file's rows, copies with a little noise, so they are near, not exact, duplicates."""
    rng = np.random.default_rng(seed)
    m, dim = source.shape
    order = rng.permutation(m)
    reps = -(-n // m)
    rows = np.concatenate([order] * reps)[:n]
    out = np.asarray(source, dtype=np.float32)[rows]
    out[m:] += 0.05 / np.sqrt(dim) * rng.standard_normal(out[m:].shape, dtype=np.float32)
    return unit(out)


def make_queries(base: F32, seed: int) -> F32:
    rng = np.random.default_rng(seed + 1)
    picked = base[rng.choice(base.shape[0], min(N_QUERIES, base.shape[0]), replace=False)]
    noise = 0.5 * rng.standard_normal(picked.shape, dtype=np.float32) / np.sqrt(base.shape[1])
    return unit(picked + noise)


def tie_tolerant_recall(
    ref_ids: npt.NDArray[np.int64],
    ref_scores: F32,
    ids: npt.NDArray[np.int64],
    scores: F32,
) -> float:
    """Mean recall@k of ``ids`` vs the exact ``ref_ids``; a result scoring at least the
    reference k-th score (within float error) counts, as it ties with a reference result."""
    total = 0.0
    k = ref_ids.shape[1]
    for r_ids, r_scores, a_ids, a_scores in zip(ref_ids, ref_scores, ids, scores, strict=True):
        kth = float(r_scores[-1]) - 1e-5 * max(1.0, abs(float(r_scores[-1])))
        ref = set(r_ids.tolist())
        seen: set[int] = set()
        hits = 0
        for i, s in zip(a_ids.tolist(), a_scores.tolist(), strict=True):
            if i < 0 or i in seen:
                continue
            seen.add(i)
            hits += i in ref or s >= kth
        total += min(hits, k) / k
    return float(total / ref_ids.shape[0])


def time_queries(
    index: VectorIndex, queries: F32, ef: int, desc: str
) -> tuple[list[float], F32, npt.NDArray[np.int64]]:
    faiss.omp_set_num_threads(1)
    lat: list[float] = []
    scores = np.empty((queries.shape[0], K), dtype=np.float32)
    ids = np.empty((queries.shape[0], K), dtype=np.int64)
    for i in range(min(10, queries.shape[0])):  # warm-up
        index.search(queries[i : i + 1], K, ef_search=ef)
    for i in tqdm(range(queries.shape[0]), desc=desc, file=sys.stderr, leave=False):
        q = queries[i : i + 1]
        t = time.perf_counter()
        s, d = index.search(q, K, ef_search=ef)
        lat.append(time.perf_counter() - t)
        scores[i], ids[i] = s[0], d[0]
    return lat, scores, ids


def add_timed(index: faiss.Index, vectors: F32) -> float:
    faiss.omp_set_num_threads(max(1, os.cpu_count() or 1))  # as VectorIndex.build does
    t = time.perf_counter()
    index.add(np.ascontiguousarray(vectors))
    return time.perf_counter() - t


def bench_sizes(pool: F32, sizes: list[int], efs: list[int], seed: int) -> list[dict[str, Any]]:
    """Grow a flat and an HNSW index (VectorIndex.build's parameters) through ``sizes``."""
    dim = pool.shape[1]
    flat_index = faiss.IndexFlatIP(dim)
    hnsw_index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    hnsw_index.hnsw.efConstruction = EF_CONSTRUCTION
    flat, hnsw = VectorIndex(flat_index, "flat"), VectorIndex(hnsw_index, "hnsw")
    flat_build_s = hnsw_build_s = 0.0
    rows: list[dict[str, Any]] = []
    done = 0
    for n in tqdm(sizes, desc="sizes", file=sys.stderr):
        flat_build_s += add_timed(flat_index, pool[done:n])
        hnsw_build_s += add_timed(hnsw_index, pool[done:n])
        done = n
        queries = make_queries(pool[:n], seed)
        lat, ref_scores, ref_ids = time_queries(flat, queries, 0, f"flat {n}")
        flat_p50 = percentile_ms(lat, 50)
        rows.append(
            {
                "size": n,
                "index": "flat",
                "ef_search": None,
                "build_s": round(flat_build_s, 2),
                "p50_ms": round(flat_p50, 3),
                "p99_ms": round(percentile_ms(lat, 99), 3),
                "recall@100": 1.0,
                "speedup_p50": 1.0,
            }
        )
        for ef in efs:
            lat, scores, ids = time_queries(hnsw, queries, ef, f"hnsw ef{ef} {n}")
            p50 = percentile_ms(lat, 50)
            rows.append(
                {
                    "size": n,
                    "index": "hnsw",
                    "ef_search": ef,
                    "ef_effective": max(ef, K),
                    "build_s": round(hnsw_build_s, 2),
                    "p50_ms": round(p50, 3),
                    "p99_ms": round(percentile_ms(lat, 99), 3),
                    "recall@100": round(tie_tolerant_recall(ref_ids, ref_scores, ids, scores), 4),
                    "speedup_p50": round(flat_p50 / max(p50, 1e-9), 2),
                }
            )
    return rows


def recommend(rows: list[dict[str, Any]]) -> tuple[int | None, str]:
    for size in sorted({r["size"] for r in rows}):
        good = [
            r
            for r in rows
            if r["size"] == size
            and r["index"] == "hnsw"
            and r["recall@100"] >= MIN_RECALL
            and r["speedup_p50"] >= MIN_SPEEDUP
        ]
        if good:
            best = min(good, key=lambda r: r["ef_search"])  # the cheapest setting that passes
            return size, (
                f"Recommendation: HNSW from {size:,} vectors (efSearch {best['ef_search']}: "
                f"recall@100 {best['recall@100']}, {best['speedup_p50']}x flat p50); "
                f"DEFAULT_EXACT_MAX is {DEFAULT_EXACT_MAX:,}."
            )
    return None, (
        f"Recommendation: stay exact; no measured size has HNSW at recall@100 >= {MIN_RECALL} "
        f"and >= {MIN_SPEEDUP}x flat p50 (DEFAULT_EXACT_MAX is {DEFAULT_EXACT_MAX:,})."
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated catalog sizes")
    ap.add_argument("--embeddings", type=Path, help="real vectors (.npy, float, n x dim)")
    ap.add_argument("--ef-search", default=",".join(map(str, EF_SEARCH)), help="HNSW efSearch list")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="also print one JSON object last")
    args = ap.parse_args()
    sizes = sorted({int(v) for v in args.sizes.split(",") if v.strip()})
    efs = sorted({int(v) for v in args.ef_search.split(",") if v.strip()})
    started = time.perf_counter()
    if args.embeddings is not None:
        source = np.load(args.embeddings, mmap_mode="r")
        if source.ndim != 2:
            ap.error(f"{args.embeddings}: expected a 2-D array, got shape {source.shape}")
        pool = from_file(source, max(sizes), args.seed)
        what = f"{args.embeddings} ({source.shape[0]:,} rows)"
    else:
        pool = synthetic(max(sizes), DIM, args.seed)
        what = f"synthetic clustered (seed {args.seed})"
    rows = bench_sizes(pool, sizes, efs, args.seed)
    total_s = time.perf_counter() - started
    dim = pool.shape[1]
    print(
        f"\nFAISS {faiss.__version__}, dim {dim}, {what}; {N_QUERIES} queries, k={K}, "
        f"one query per call on 1 thread; HNSW M={HNSW_M} efConstruction={EF_CONSTRUCTION}\n"
    )
    print("| size | index | efSearch (effective) | build s | p50 ms | p99 ms | recall@100 | speedup p50 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ef = "-" if r["ef_search"] is None else f"{r['ef_search']} ({r['ef_effective']})"
        print(
            f"| {r['size']:,} | {r['index']} | {ef} | {r['build_s']} | {r['p50_ms']} "
            f"| {r['p99_ms']} | {r['recall@100']:.4f} | {r['speedup_p50']}x |"
        )
    threshold, line = recommend(rows)
    print(
        f"\nbuild s: cumulative time to grow the index to that size on {os.cpu_count()} threads."
        f"\n{line}\ntotal {total_s:.0f} s"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "faiss": faiss.__version__,
                    "dim": int(dim),
                    "vectors": what,
                    "queries": N_QUERIES,
                    "k": K,
                    "rows": rows,
                    "recommended_min_hnsw_size": threshold,
                    "default_exact_max": DEFAULT_EXACT_MAX,
                    "total_s": round(total_s, 1),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
