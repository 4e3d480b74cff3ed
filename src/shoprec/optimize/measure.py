"""Latency, throughput and size of a text encoder, measured the same way for every candidate."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shoprec.core.metrics import percentile_ms


def folder_size_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6, 2)


def rss_mb() -> float:
    """Resident memory of this process now (Linux ``/proc``; 0 where unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def measure_encoder(
    encode: Callable[[Sequence[str], int], Any],
    queries: Sequence[str],
    *,
    batch1_n: int = 200,
    batch32_n: int = 20,
    warmup: int = 10,
) -> dict[str, float]:
    """Batch-1 latency (median, p99 over ``batch1_n`` queries) and batch-32 throughput
    (texts per second over ``batch32_n`` batches) of ``encode(texts, batch_size)``."""
    if not queries:
        raise ValueError("no queries to measure the encoder on")
    qs = [queries[i % len(queries)] for i in range(max(batch1_n, 32 * batch32_n))]
    for q in qs[:warmup]:
        encode([q], 1)
    lat = []
    for q in qs[:batch1_n]:
        t = time.perf_counter()
        encode([q], 1)
        lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    for b in range(batch32_n):
        encode(qs[b * 32 : (b + 1) * 32], 32)
    elapsed = time.perf_counter() - t
    return {
        "batch1_p50_ms": round(percentile_ms(lat, 50), 3),
        "batch1_p99_ms": round(percentile_ms(lat, 99), 3),
        "batch32_per_s": round(32 * batch32_n / elapsed, 1),
    }


def cosine_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine between matching rows of two (normalised) embedding matrices."""
    return round(float(np.mean(np.sum(a * b, axis=1))), 4)
