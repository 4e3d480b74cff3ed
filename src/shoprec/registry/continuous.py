"""One continuous-training cycle (``shoprec retrain``, the ``retrain`` job): retrain on the recent
events, evaluate against the current version on a held-out recent slice, promote only through
the registry's gates, and record the decision in the audit log.

1. The recent events are split by time (:func:`shoprec.core.sessions.time_split`): the last
   ``holdout_fraction`` is held out; the candidate learns from the base events and the rest.
2. The held-out slice becomes next-click sequences (a user's items, the last one held out),
   written beside the candidate; the candidate is built and pushed.
3. :func:`shoprec.registry.gates.promote` evaluates candidate and current side by side on those
   sequences (recommendation NDCG@10 and HR@20), the search validation set and the latency
   benchmark; a refusal leaves the current version serving.
4. ``training.decision`` goes to the audit log either way: the versions, both evaluations on the
   held-out slice, every gate and the outcome.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shoprec.atomicio import write_text
from shoprec.core.sessions import time_split
from shoprec.errors import DataError, PromotionRefusedError
from shoprec.pipeline.build import BuildOptions, build
from shoprec.registry import gates
from shoprec.registry.store import Registry
from shoprec.security.audit import AuditLog
from shoprec.security.crypto import sign_artifacts
from shoprec.types import Event, Product


def retrain_cycle(
    products: Sequence[Product],
    recent: Sequence[Event],
    registry: Registry,
    work: Path,
    *,
    base_events: Sequence[Event] = (),
    holdout_fraction: float = 0.1,
    judgments: Path | None = None,
    encoder_dir: Path | None = None,
    options: BuildOptions | None = None,
    tolerances: gates.Tolerances | None = None,
    signing_key: Path | None = None,
    audit: AuditLog | None = None,
    actor: str = "trainer",
) -> dict[str, Any]:
    """Run one cycle; returns the decision (``promoted`` true or false, the gates, both evaluations)."""
    if not recent:
        raise DataError("no recent events to retrain on")
    train, held_out = time_split(recent, holdout_fraction)
    if not held_out:
        raise DataError("the held-out slice has no user with an item to predict; stream more events first")
    work.mkdir(parents=True, exist_ok=True)
    sequences = work / "holdout_sequences.txt"
    write_text(sequences, "".join(f"{user} {' '.join(items)}\n" for user, items in held_out.items()))
    candidate_dir = work / "candidate"
    if candidate_dir.exists():
        shutil.rmtree(candidate_dir)
    events = sorted([*base_events, *train], key=lambda e: e.timestamp)
    build(
        products,
        candidate_dir,
        events=events,
        encoder_dir=encoder_dir,
        options=options or BuildOptions(),
        progress=False,
    )
    if signing_key is not None:  # a serving fleet that requires signatures can load what is promoted
        sign_artifacts(candidate_dir, signing_key, signer=actor)
    record = gates.push(registry, candidate_dir, sequences=sequences, judgments=judgments, audit=audit, actor=actor)
    candidate, current = record["id"], registry.current_id()
    decision: dict[str, Any] = {
        "candidate": candidate,
        "current": current,
        "train_events": len(events),
        "holdout_events": len(recent) - len(train),
        "holdout_users": len(held_out),
    }
    try:
        result = gates.promote(
            registry,
            candidate,
            tolerances=tolerances or gates.Tolerances(),
            judgments=judgments,
            sequences=sequences,
            audit=audit,
            actor=actor,
        )
        decision |= {"promoted": True, "gates": [asdict(g) for g in result.gates]}
        decision["evaluations"] = {v: r.get("recommend") for v, r in result.reports.items()}
    except PromotionRefusedError as exc:
        decision |= {"promoted": False, "refusal": exc.message}
        decision["evaluations"] = _latest_recommend(registry, (candidate, current))
    if audit is not None:
        audit.append("training.decision", actor, decision)
    return decision


def _latest_recommend(registry: Registry, versions: Sequence[str | None]) -> dict[str, Any]:
    """Each version's latest recommendation evaluation (promotion stores them, refused or not)."""
    out: dict[str, Any] = {}
    for v in versions:
        if v is None:
            continue
        evaluations = registry.read_version(v).get("evaluations") or []
        out[v] = evaluations[-1].get("recommend") if evaluations else None
    return out
