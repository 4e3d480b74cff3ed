"""Train the recommenders of an artifacts folder from events: popularity, co-occurrence
("also bought / viewed") and the sequential SASRec model (torch at build time only)."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from shoprec.models.recommender import BlendedRecommender, CoOccurrenceModel, PopularityModel, SequentialRecommender
from shoprec.types import Event, Product

log = logging.getLogger(__name__)

MIN_USERS_FOR_SEQUENTIAL = 20


def user_sequences(events: Sequence[Event]) -> dict[str, list[str]]:
    """Each user's items in time order, consecutive repeats collapsed (view then buy = one step)."""
    out: dict[str, list[str]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e.timestamp):
        seq = out[e.user_id]
        if not seq or seq[-1] != e.item_id:
            seq.append(e.item_id)
    return dict(out)


def item_attributes(products: Sequence[Product], vocab: Sequence[str]) -> dict[int, list[int]]:
    """Brand, department and leaf category as attribute ids for each vocabulary item (1-based)."""
    by_id = {p.id: p for p in products}
    names: dict[str, int] = {}
    out: dict[int, list[int]] = {}
    for i, item in enumerate(vocab, start=1):
        p = by_id.get(item)
        if p is None:
            continue
        keys = []
        if p.brand:
            keys.append(f"brand:{p.brand.lower()}")
        path = p.category_path
        if path:
            keys.append(f"dept:{path[0].lower()}")
            keys.append(f"leaf:{' > '.join(path).lower()}")
        out[i] = [names.setdefault(k, len(names) + 1) for k in keys]
    return out


def build_recommenders(
    products: Sequence[Product],
    events: Sequence[Event],
    folder: Path,
    *,
    seed: int = 0,
    max_train_s: float | None = 300.0,
    progress: bool = False,
) -> dict[str, Any]:
    """Write ``popularity/``, ``cooccurrence/`` and (with enough users) ``sequential/`` and
    ``blend.json`` (SASRec blended with item transitions, what known users get) under
    ``folder``; return build metrics."""
    t0 = time.perf_counter()
    catalog_ids = {p.id for p in products}
    seqs = {u: [i for i in s if i in catalog_ids] for u, s in user_sequences(events).items()}
    seqs = {u: s for u, s in seqs.items() if s}
    metrics: dict[str, Any] = {"users": len(seqs)}
    PopularityModel.fit(seqs.values(), items=[p.id for p in products]).save(folder / "popularity")
    CoOccurrenceModel.fit(seqs.values()).save(folder / "cooccurrence")
    trainable = {u: s for u, s in seqs.items() if len(s) >= 2}
    if len(trainable) < MIN_USERS_FOR_SEQUENTIAL:
        metrics["sequential"] = f"skipped: {len(trainable)} users with 2+ items"
        return metrics
    from shoprec.core.sequences import build_vocabulary, encode_sequences, select_blend_weight
    from shoprec.training.sasrec import SASRecConfig, export_sasrec, train_sasrec

    vocab = build_vocabulary(trainable)
    encoded = encode_sequences(trainable, vocab)
    users = list(encoded)
    train = [encoded[u][:-1] for u in users]
    valid = [encoded[u][-1] for u in users]
    # Large catalogs: a sampled softmax (1,024 shared negatives, log-ratio corrected) is several
    # times cheaper per epoch than the full softmax over every item.
    negatives = 1024 if len(vocab) > 5000 else 0
    config = replace(SASRecConfig(), seed=seed, max_train_s=max_train_s, negatives=negatives)
    model, history = train_sasrec(train, len(vocab), valid, item_attributes(products, vocab), config, progress=progress)
    export_sasrec(model, folder / "sequential", items=list(vocab), metrics=dict(history.best_valid))
    metrics["sequential"] = {
        "items": len(vocab),
        "epochs": len(history.epochs),
        "valid_ndcg@10": round(history.best_valid.get("ndcg@10", 0.0), 4),
        "train_s": round(history.train_s, 1),
    }
    # What is served for known users: SASRec blended with item transitions. The weight is
    # chosen on the validation items with transitions counted on the training part only (as
    # in `eval recommend`); the served transitions then count every sequence, over SASRec's
    # vocabulary so the two models number items alike.
    sequential = SequentialRecommender.load(folder / "sequential")
    weight, curve = select_blend_weight(
        sequential.score_ids,
        CoOccurrenceModel.from_ids(train, vocab).score_ids,
        train,
        valid,
        len(vocab),
    )
    blend = BlendedRecommender(sequential, CoOccurrenceModel.from_ids([encoded[u] for u in users], vocab), weight)
    blend.cooccurrence.save(folder / "cooccurrence")
    blend.save_weight(folder)
    metrics["blend"] = {"weight": weight, "valid_ndcg@10": round(curve[weight], 4)}
    metrics["total_s"] = round(time.perf_counter() - t0, 1)
    return metrics
