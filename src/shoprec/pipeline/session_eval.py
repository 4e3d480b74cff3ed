"""Session-based next-click evaluation (YOOCHOOSE-style click logs; see
:mod:`shoprec.core.sessions` for the protocol).

Models: ``popularity``, ``cooccurrence`` (item transitions from the last clicks),
``sknn`` (session-kNN) and ``sasrec`` (trained on the training sessions, the last click of
each held out for early stopping, evaluated through its ONNX export as served).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shoprec.catalog.loaders import read_clicks
from shoprec.core.sequences import build_vocabulary, target_ranks
from shoprec.core.sessions import hit_and_mrr, next_click_cases
from shoprec.errors import DataError
from shoprec.models.recommender import CoOccurrenceModel, PopularityModel
from shoprec.models.session_knn import SessionKNN

if TYPE_CHECKING:
    from shoprec.training.sasrec import SASRecConfig

log = logging.getLogger(__name__)

SESSION_MODELS = ("popularity", "cooccurrence", "sknn", "sasrec")
KS = (10, 20)
BATCH = 512


def evaluate_sessions(
    train_path: str | Path,
    test_path: str | Path,
    *,
    models: Sequence[str] = SESSION_MODELS,
    sasrec_config: SASRecConfig | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Train ``models`` on the training clicks and score every next click of the test
    sessions; returns ``{"models": {name: {hr@k, mrr@k, seconds}}, "cases", "skipped", ...}``."""
    unknown = [m for m in models if m not in SESSION_MODELS]
    if unknown or not models:
        raise ValueError(f"unknown models {unknown}; choose from {list(SESSION_MODELS)}")
    t0 = time.perf_counter()
    train_sessions, train_report = read_clicks(train_path)
    test_sessions, test_report = read_clicks(test_path)
    vocab = build_vocabulary(train_sessions)
    if not vocab:
        raise DataError(f"{train_path}: no clicks")
    index = {item: i + 1 for i, item in enumerate(vocab)}
    train = [[index[i] for i in s] for s in train_sessions.values()]
    histories, targets, skipped = next_click_cases(test_sessions, index)
    if not targets:
        raise DataError(f"{test_path}: no test click on an item seen in training")
    n_items = len(vocab)

    def score(fn: Callable[[Sequence[Sequence[int]]], Any]) -> dict[str, float]:
        ranks = np.empty(len(targets), dtype=np.int64)
        tgt = np.asarray(targets, dtype=np.int64)
        for start in range(0, len(targets), BATCH):
            stop = min(start + BATCH, len(targets))
            ranks[start:stop] = target_ranks(np.asarray(fn(histories[start:stop])), tgt[start:stop])
        return {k: round(v, 4) for k, v in hit_and_mrr(ranks, KS).items()}

    results: dict[str, dict[str, Any]] = {}
    for name in models:
        t = time.perf_counter()
        if name == "popularity":
            results[name] = score(PopularityModel.from_ids(train, vocab).score_ids)
        elif name == "cooccurrence":
            results[name] = score(CoOccurrenceModel.from_ids(train, vocab).score_ids)
        elif name == "sknn":
            results[name] = score(SessionKNN(train, n_items).score_ids)
        else:
            from shoprec.pipeline.recommend_eval import train_and_load_sasrec

            usable = [s for s in train if len(s) >= 2]
            with tempfile.TemporaryDirectory(prefix="shoprec-sessions-") as tmp:
                model, summary = train_and_load_sasrec(
                    [s[:-1] for s in usable],
                    [s[-1] for s in usable],
                    vocab,
                    None,
                    sasrec_config,
                    seed,
                    progress,
                    Path(tmp) / "sequential",
                )
                results[name] = {**score(model.score_ids), **summary}
        results[name]["seconds"] = round(time.perf_counter() - t, 1)
        log.info("%s: %s", name, results[name])
    return {
        "train_sessions": len(train_sessions),
        "train_clicks": train_report.rows,
        "test_sessions": test_report.kept,
        "items": n_items,
        "cases": len(targets),
        "skipped_targets": skipped,
        "total_s": round(time.perf_counter() - t0, 1),
        "models": results,
    }
