"""Promotion gates, and the registry operations that run them: push, promote, rollback.

A candidate replaces the current version only if, on the same validation set and in one
process, side by side:

* its search NDCG@10 is not below the current's by more than ``ndcg_tolerance`` (absolute);
* its recommendation NDCG@10 likewise, when both versions have a recommender and a sequences
  validation set was given;
* its p99 latency in a short benchmark (the validation queries, several alternating rounds)
  is not above the current's by more than ``latency_tolerance`` (relative) plus
  ``latency_slack_ms`` (absolute, so sub-millisecond jitter cannot decide).

The validation set is ``--judgments`` when given, else the groups stored in the candidate's
artifacts, else the current's. A refusal names each failed gate and its margin, is recorded
in ``history.jsonl`` and the audit log, and leaves ``CURRENT`` untouched. There is no force.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shoprec import artifacts
from shoprec.errors import ConfigError, DataError, PromotionRefusedError, RequestError
from shoprec.models.bundle import Trust
from shoprec.registry.evaluation import (
    Loaded,
    evaluate_version,
    latency_benchmark,
    load_version,
    validation_groups,
)
from shoprec.registry.store import Registry
from shoprec.registry_pointer import Pointer
from shoprec.security.audit import AuditLog

BENCH_MAX_QUERIES = 50


@dataclass(frozen=True)
class Tolerances:
    ndcg_tolerance: float = 0.01
    latency_tolerance: float = 0.20
    latency_slack_ms: float = 0.5
    bench_repetitions: int = 5

    def __post_init__(self) -> None:
        for name in ("ndcg_tolerance", "latency_tolerance", "latency_slack_ms"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a non-negative number, got {v!r}")
        if not 1 <= self.bench_repetitions <= 100:
            raise ConfigError(f"bench_repetitions must be within [1, 100], got {self.bench_repetitions}")


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    candidate: float
    current: float
    limit: float
    message: str


def quality_gate(name: str, candidate: float, current: float, tolerance: float) -> GateResult:
    """Pass when ``candidate >= current - tolerance`` (NDCG, higher is better)."""
    limit = current - tolerance
    delta = candidate - current
    passed = candidate >= limit - 1e-12
    verdict = "passed" if passed else f"failed by {limit - candidate:.4f}"
    msg = (
        f"{name} gate {verdict}: candidate {candidate:.4f} vs current {current:.4f} "
        f"({delta:+.4f}; allowed down to {limit:.4f}, tolerance {tolerance:.4f})"
    )
    return GateResult(name, passed, candidate, current, round(limit, 6), msg)


def latency_gate(candidate_ms: float, current_ms: float, tolerance: float, slack_ms: float) -> GateResult:
    """Pass when ``candidate <= current * (1 + tolerance) + slack_ms`` (p99, lower is better)."""
    limit = current_ms * (1.0 + tolerance) + slack_ms
    passed = candidate_ms <= limit
    rel = (candidate_ms / current_ms - 1.0) * 100.0 if current_ms > 0 else math.inf
    verdict = "passed" if passed else f"failed by {candidate_ms - limit:.3f} ms"
    msg = (
        f"p99 latency gate {verdict}: candidate {candidate_ms:.3f} ms vs current {current_ms:.3f} ms "
        f"({rel:+.1f}%; allowed up to {limit:.3f} ms = +{tolerance * 100:.0f}% + {slack_ms:g} ms)"
    )
    return GateResult("p99 latency", passed, candidate_ms, current_ms, round(limit, 6), msg)


def check_gates(
    candidate: Mapping[str, Any],
    current: Mapping[str, Any],
    bench: Mapping[str, Mapping[str, float]],
    names: tuple[str, str],
    tol: Tolerances,
) -> list[GateResult]:
    """All gates for two evaluation reports on the same validation set and one benchmark."""
    gates = [
        quality_gate("search NDCG@10", candidate["search"]["ndcg@10"], current["search"]["ndcg@10"], tol.ndcg_tolerance)
    ]
    rc, ru = candidate.get("recommend"), current.get("recommend")
    if rc and ru:
        gates.append(quality_gate("recommend NDCG@10", rc["ndcg@10"], ru["ndcg@10"], tol.ndcg_tolerance))
    cand_name, cur_name = names
    gates.append(
        latency_gate(bench[cand_name]["p99_ms"], bench[cur_name]["p99_ms"], tol.latency_tolerance, tol.latency_slack_ms)
    )
    return gates


def verifier(trust: Trust | None) -> Any:
    """The check a pushed folder must pass: its signature by a trusted key when ``trust`` names
    keys or requires a signature, else every checksum."""
    if trust is None or (not trust.trusted_keys and not trust.require_signature):
        return artifacts.verify
    from shoprec.security import crypto

    def verify(folder: Path) -> dict[str, Any]:
        result: dict[str, Any] = crypto.verify_artifacts(
            folder, trust.trusted_keys, require_signature=trust.require_signature
        )["manifest"]
        return result

    return verify


def _audit(audit: AuditLog | None, action: str, actor: str, details: Mapping[str, Any]) -> None:
    if audit is not None:
        audit.append(action, actor, details)


def _read_sequences(path: Path | None) -> dict[str, list[str]] | None:
    if path is None:
        return None
    from shoprec.catalog.loaders import read_sequences

    seqs, _ = read_sequences(path, min_items=2)
    return seqs


def push(
    registry: Registry,
    source: Path,
    *,
    version_id: str | None = None,
    trust: Trust | None = None,
    judgments: Path | None = None,
    sequences: Path | None = None,
    audit: AuditLog | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    """Verify and copy ``source`` in as a new version, then evaluate it and keep the report.

    Without a validation set (none stored, no ``judgments``) the version is kept unevaluated;
    promoting it then needs ``--judgments``.
    """
    try:
        record = registry.push(source, version_id=version_id, verify=verifier(trust))
    except Exception as exc:
        _audit(audit, "registry.push_refused", actor, {"source": str(source), "reason": str(exc)})
        raise
    _audit(audit, "registry.push", actor, {"version": record["id"], "manifest_sha256": record["manifest_sha256"]})
    folder = registry.artifacts_path(record["id"])
    try:
        groups, label = validation_groups([folder], judgments)
    except DataError:
        return record
    loaded = load_version(record["id"], folder, trust=trust)
    report = evaluate_version(
        loaded, groups, validation=label, sequences=_read_sequences(sequences), clock=registry.clock
    )
    return registry.add_evaluation(record["id"], report)


@dataclass(frozen=True)
class Promotion:
    pointer: Pointer
    gates: list[GateResult]
    reports: dict[str, dict[str, Any]]
    bench: dict[str, dict[str, float]]


def promote(
    registry: Registry,
    candidate: str,
    *,
    tolerances: Tolerances = Tolerances(),
    trust: Trust | None = None,
    judgments: Path | None = None,
    sequences: Path | None = None,
    audit: AuditLog | None = None,
    actor: str = "cli",
    loaded: Sequence[Loaded] | None = None,
    timer: Any = None,
    progress: bool = False,
) -> Promotion:
    """Promote ``candidate`` if it passes every gate against the current version.

    ``loaded`` (the candidate's and the current's services, in that order) and ``timer`` let
    tests inject services and a fake clock; normally both versions are loaded here.
    """
    registry.read_version(candidate)  # NotFoundError for an unknown id
    current = registry.current_id()
    if current == candidate:
        raise RequestError(f"{candidate} is already the current version")
    if current is None:
        pointer = registry.set_current(candidate, action="promote", expected_current=None, gates="none: first version")
        _audit(audit, "registry.promote", actor, {"version": candidate, "previous": None, "gates": "first version"})
        return Promotion(pointer, [], {}, {})
    cand_dir, cur_dir = registry.artifacts_path(candidate), registry.artifacts_path(current)
    groups, label = validation_groups([cand_dir, cur_dir], judgments)
    if loaded is None:
        loaded = [load_version(candidate, cand_dir, trust=trust), load_version(current, cur_dir, trust=trust)]
    seqs = _read_sequences(sequences)
    context = f"promote {candidate} vs {current}"
    reports = {
        v.version: evaluate_version(v, groups, validation=label, sequences=seqs, context=context, clock=registry.clock)
        for v in loaded
    }
    queries = list(dict.fromkeys(g.query for g in groups))[:BENCH_MAX_QUERIES]
    kwargs: dict[str, Any] = {"progress": progress} if timer is None else {"timer": timer, "progress": progress}
    bench = latency_benchmark(loaded, queries, repetitions=tolerances.bench_repetitions, **kwargs)
    for version, report in reports.items():
        report["bench"] = bench[version]
        registry.add_evaluation(version, report)
    gates = check_gates(reports[candidate], reports[current], bench, (candidate, current), tolerances)
    details = {
        "version": candidate,
        "current": current,
        "validation": label,
        "tolerances": asdict(tolerances),
        "gates": [asdict(g) for g in gates],
    }
    failed = [g for g in gates if not g.passed]
    if failed:
        registry.record("refuse", **details)
        _audit(audit, "registry.refuse", actor, details)
        lines = "\n  ".join(g.message for g in failed)
        raise PromotionRefusedError(
            f"promotion of {candidate} refused; {current} stays current. Failed gate(s):\n  {lines}"
        )
    pointer = registry.set_current(
        candidate, action="promote", expected_current=current, gates=details["gates"], validation=label
    )
    _audit(audit, "registry.promote", actor, details)
    return Promotion(pointer, gates, reports, bench)


def rollback(registry: Registry, *, audit: AuditLog | None = None, actor: str = "cli") -> tuple[Pointer, str]:
    """Point back to the previous version; returns the new pointer and the version left."""
    pointer, left = registry.rollback()
    _audit(audit, "registry.rollback", actor, {"version": pointer.version, "from": left})
    return pointer, left
