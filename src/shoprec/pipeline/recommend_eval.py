"""Next-item recommendation evaluation under the S3Rec/ICLRec protocol.

Every model is trained on the training part of each user's sequence only (all but the
last two items), ranks **all** items for the history "training part + validation item"
and is scored on the last item (see :mod:`shoprec.core.sequences` for the exact rank
and tie rules). The validation item serves model selection only: SASRec's early stopping
and the one weight of the blend.

The sequential model is evaluated through its exported artifact (ONNX Runtime + numpy,
as it is served), not through PyTorch, so the numbers describe what ships.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoprec.catalog.loaders import read_sequences
from shoprec.core.sequences import (
    build_vocabulary,
    encode_sequences,
    evaluate_ranking,
    leave_last_out,
    select_blend_weight,
)
from shoprec.errors import DataError
from shoprec.models.recommender import (
    BlendedRecommender,
    CoOccurrenceModel,
    PopularityModel,
    SequentialRecommender,
)

if TYPE_CHECKING:
    from shoprec.training.sasrec import SASRecConfig

log = logging.getLogger(__name__)

MODELS = ("popularity", "cooccurrence", "sasrec", "blend")
KS = (5, 10, 20)
EVAL_BATCH = 1024


def read_attributes(path: str | Path, vocab: Sequence[str]) -> dict[int, list[int]]:
    """``{item id: [attribute ids]}`` JSON -> ``{integer item id: [attribute ids]}``.

    Items absent from ``vocab`` are ignored; attribute ids must be integers.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable attributes file: {exc}") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object of item id -> list of attribute ids")
    index = {item: i + 1 for i, item in enumerate(vocab)}
    out: dict[int, list[int]] = {}
    for item, attrs in raw.items():
        j = index.get(str(item))
        if j is None:
            continue
        if not isinstance(attrs, list) or not all(isinstance(a, int) for a in attrs):
            raise DataError(f"{path}: item {item!r}: attributes must be a list of integers")
        out[j] = attrs
    return out


def _rounded(metrics: dict[str, float]) -> dict[str, Any]:
    return {k: (int(v) if k == "users" else round(v, 4)) for k, v in metrics.items()}


def evaluate_recommenders(
    sequences_path: str | Path,
    attributes_path: str | Path | None = None,
    *,
    models: Sequence[str] = MODELS,
    progress: bool = True,
    seed: int = 0,
    sasrec_config: SASRecConfig | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train and evaluate ``models`` on one sequences file; returns a JSON-ready dict.

    Models: ``popularity``, ``cooccurrence``, ``sasrec`` and ``blend`` (SASRec and
    co-occurrence as a product of experts, the co-occurrence exponent chosen on the
    validation items; it trains SASRec even when ``sasrec`` is not listed). Top level: the
    served sequential model's — the blend when evaluated (it is what ``build`` ships for known
    users), else SASRec's — ``ndcg@{5,10,20}``, ``hr@{5,10,20}``, ``users``, ``items``,
    ``train_s`` (SASRec training seconds) and ``total_s``, with ``model`` naming it;
    ``models`` maps each model name to its metrics (for SASRec, epochs and early stopping
    too). Without either the top level holds the last model's.
    ``out_dir`` keeps the models: ``sequential/`` (the exported SASRec), ``cooccurrence/``,
    ``popularity/`` and ``blend.json``.
    """
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"unknown models {unknown}; choose from {list(MODELS)}")
    t0 = time.perf_counter()
    seqs, report = read_sequences(sequences_path)
    if not seqs:
        raise DataError(f"{sequences_path}: no user with at least 3 items")
    vocab = build_vocabulary(seqs)
    encoded = encode_sequences(seqs, vocab)
    train, valid, test = leave_last_out(encoded)
    users = list(encoded)
    train_seqs = [train[u] for u in users]
    valid_targets = [valid[u] for u in users]
    test_histories = [train[u] + [valid[u]] for u in users]
    test_targets = [test[u] for u in users]
    n_items = len(vocab)
    log.info("%d users, %d items, %d skipped", len(users), n_items, report.skipped)

    def test_metrics(score_fn: Callable[[Sequence[Sequence[int]]], Any]) -> dict[str, Any]:
        return _rounded(evaluate_ranking(score_fn, test_histories, test_targets, n_items, KS, EVAL_BATCH))

    results: dict[str, dict[str, Any]] = {}
    train_s = 0.0
    cooc: CoOccurrenceModel | None = None
    sequential: SequentialRecommender | None = None
    with tempfile.TemporaryDirectory(prefix="shoprec-rec-") as tmp:
        keep = Path(out_dir) if out_dir is not None else Path(tmp)
        for name in models:
            t = time.perf_counter()
            if name == "popularity":
                pop = PopularityModel.from_ids(train_seqs, vocab)
                results[name] = test_metrics(pop.score_ids)
                if out_dir is not None:
                    pop.save(keep / "popularity")
            elif name == "cooccurrence" or (name == "blend" and cooc is None):
                cooc = CoOccurrenceModel.from_ids(train_seqs, vocab)
                if name == "cooccurrence":
                    results[name] = test_metrics(cooc.score_ids)
                if out_dir is not None:
                    cooc.save(keep / "cooccurrence")
            if name == "sasrec" or (name == "blend" and sequential is None):
                sequential, summary = train_and_load_sasrec(
                    train_seqs,
                    valid_targets,
                    vocab,
                    attributes_path,
                    sasrec_config,
                    seed,
                    progress,
                    keep / "sequential",
                )
                train_s = float(summary["train_s"])
                results["sasrec"] = {**test_metrics(sequential.score_ids), **summary}
            if name == "blend" and sequential is not None and cooc is not None:
                weight, curve = select_blend_weight(
                    sequential.score_ids,
                    cooc.score_ids,
                    train_seqs,
                    valid_targets,
                    n_items,
                    batch_size=EVAL_BATCH,
                )
                blend = BlendedRecommender(sequential, cooc, weight)
                if out_dir is not None:
                    blend.save_weight(keep)
                results[name] = {
                    **test_metrics(blend.score_ids),
                    "weight": weight,
                    "valid_ndcg@10": round(curve[weight], 4),
                }
            results[name]["seconds"] = round(time.perf_counter() - t, 1)
            log.info("%s: %s", name, results[name])

    main = next((m for m in ("blend", "sasrec") if m in results), list(results)[-1])
    return {
        "model": main,
        **{f"{m}@{k}": results[main][f"{m}@{k}"] for m in ("ndcg", "hr") for k in KS},
        "users": len(users),
        "items": n_items,
        "skipped_users": report.skipped,
        "train_s": round(train_s, 1),
        "total_s": round(time.perf_counter() - t0, 1),
        "models": results,
    }


def train_and_load_sasrec(
    train_seqs: list[list[int]],
    valid_targets: list[int],
    vocab: Sequence[str],
    attributes_path: str | Path | None,
    config: SASRecConfig | None,
    seed: int,
    progress: bool,
    folder: Path,
) -> tuple[SequentialRecommender, dict[str, Any]]:
    """Train SASRec-CE, export it to ``folder`` and load it back the way it is served."""
    from dataclasses import replace

    from shoprec.training.sasrec import SASRecConfig, export_sasrec, train_sasrec

    config = replace(config or SASRecConfig(), seed=seed)
    attributes = read_attributes(attributes_path, vocab) if attributes_path else None
    model, history = train_sasrec(train_seqs, len(vocab), valid_targets, attributes, config, progress=progress)
    export_sasrec(model, folder, items=vocab, metrics=dict(history.best_valid))
    summary: dict[str, Any] = {
        "epochs": len(history.epochs),
        "best_epoch": history.best_epoch,
        "stopped": history.stopped,
        "valid_ndcg@10": round(history.best_valid.get("ndcg@10", 0.0), 4),
        "attributes": attributes is not None and config.use_attributes,
        "train_s": round(history.train_s, 1),
    }
    return SequentialRecommender.load(folder), summary
