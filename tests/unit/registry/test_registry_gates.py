"""Promotion gates: the arithmetic on its own, then push/promote/rollback on real tiny artifacts
(a degraded candidate is refused with its margin and nothing changes; a good one is promoted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shoprec.errors import ConfigError, PromotionRefusedError, RequestError
from shoprec.registry import gates
from shoprec.registry.evaluation import Loaded, latency_benchmark, load_version
from shoprec.registry.store import Registry
from shoprec.security.audit import AuditLog
from shoprec.security.audit import verify as verify_audit
from support.registryhelp import degraded_copy, good_copy, write_judgments


def test_quality_gate_margin() -> None:
    ok = gates.quality_gate("search NDCG@10", 0.795, 0.80, 0.01)
    assert ok.passed and "passed" in ok.message
    bad = gates.quality_gate("search NDCG@10", 0.60, 0.80, 0.01)
    assert not bad.passed
    assert "failed by 0.1900" in bad.message and "candidate 0.6000 vs current 0.8000" in bad.message
    assert "-0.2000" in bad.message


def test_latency_gate_margin() -> None:
    assert gates.latency_gate(11.9, 10.0, 0.20, 0.0).passed
    bad = gates.latency_gate(15.0, 10.0, 0.20, 0.5)
    assert not bad.passed and bad.limit == 12.5
    assert "failed by 2.500 ms" in bad.message and "+50.0%" in bad.message


@pytest.mark.parametrize(
    "kwargs", [{"ndcg_tolerance": -0.1}, {"latency_tolerance": float("nan")}, {"bench_repetitions": 0}]
)
def test_tolerances_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        gates.Tolerances(**kwargs)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Slowed:
    """A search service whose every search takes ``delay_s`` of fake time."""

    def __init__(self, inner: Any, clock: FakeTime, delay_s: float) -> None:
        self.inner, self.clock, self.delay_s = inner, clock, delay_s

    def search(self, *args: Any, **kwargs: Any) -> Any:
        self.clock.now += self.delay_s
        return self.inner.search(*args, **kwargs) if self.inner is not None else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def slowed(inner: Any, clock: FakeTime, delay_s: float) -> Any:
    """A :class:`Slowed` service, typed to stand in for a SearchService."""
    return Slowed(inner, clock, delay_s)


def test_latency_benchmark_is_side_by_side_with_a_fake_clock() -> None:
    clock = FakeTime()
    a = Loaded("a", slowed(None, clock, 0.004), None)
    b = Loaded("b", slowed(None, clock, 0.010), None)
    bench = latency_benchmark([a, b], ["q1", "q2", "q3"], repetitions=3, timer=clock)
    assert bench["a"]["p99_ms"] == pytest.approx(4.0) and bench["b"]["p99_ms"] == pytest.approx(10.0)
    assert bench["a"]["repetitions"] == 3


# --- on real artifacts --------------------------------------------------------------------


@pytest.fixture()
def setup(tmp_path: Path, tiny_static_artifacts: Path) -> tuple[Registry, Path, AuditLog]:
    reg = Registry(tmp_path / "registry")
    audit = AuditLog(tmp_path / "audit.jsonl", clock=lambda: 1_800_000_000.0)
    return reg, write_judgments(tmp_path / "judgments.jsonl"), audit


def test_degraded_candidate_is_refused_and_a_good_one_promoted(
    setup: tuple[Registry, Path, AuditLog], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    reg, judgments, audit = setup
    rec = gates.push(reg, tiny_static_artifacts, version_id="base", judgments=judgments, audit=audit)
    base_ndcg = rec["evaluations"][0]["search"]["ndcg@10"]
    assert base_ndcg > 0.5 and rec["evaluations"][0]["per_query"][0]["titles"]
    first = gates.promote(reg, "base", judgments=judgments, audit=audit)
    assert first.pointer.version == "base" and first.gates == []

    gates.push(reg, degraded_copy(tiny_static_artifacts, tmp_path / "bad"), version_id="bad", judgments=judgments)
    pointer_before = (reg.root / "CURRENT").read_bytes()
    with pytest.raises(PromotionRefusedError) as exc:
        gates.promote(reg, "bad", judgments=judgments, audit=audit)
    msg = exc.value.message
    assert "search NDCG@10 gate failed by" in msg and "base stays current" in msg
    bad_ndcg = reg.read_version("bad")["evaluations"][-1]["search"]["ndcg@10"]
    assert bad_ndcg < base_ndcg - 0.01
    assert f"candidate {bad_ndcg:.4f} vs current {base_ndcg:.4f}" in msg
    assert (reg.root / "CURRENT").read_bytes() == pointer_before
    assert reg.history()[-1]["action"] == "refuse" and reg.history()[-1]["version"] == "bad"

    # a good candidate (same model, re-pushed) passes; latency measured with a fake clock
    gates.push(reg, good_copy(tiny_static_artifacts, tmp_path / "good"), version_id="good", judgments=judgments)
    clock = FakeTime()
    loaded = [
        Loaded("good", slowed(load_version("good", reg.artifacts_path("good")).search, clock, 0.005), None),
        Loaded("base", slowed(load_version("base", reg.artifacts_path("base")).search, clock, 0.005), None),
    ]
    done = gates.promote(reg, "good", judgments=judgments, audit=audit, loaded=loaded, timer=clock)
    assert done.pointer.version == "good" and done.pointer.previous == ("base",)
    assert all(g.passed for g in done.gates) and [g.gate for g in done.gates] == ["search NDCG@10", "p99 latency"]
    assert reg.current_path() == reg.artifacts_path("good")
    contexts = [e["context"] for e in reg.read_version("base")["evaluations"]]
    assert contexts == ["push", "promote bad vs base", "promote good vs base"]

    pointer, left = gates.rollback(reg, audit=audit)
    assert (pointer.version, left) == ("base", "good")
    actions = [h["action"] for h in reg.history() if h["action"] != "push"]
    assert actions == ["promote", "refuse", "promote", "rollback"]
    result = verify_audit(audit.path)
    assert result.ok
    logged = [line for line in audit.path.read_text().splitlines()]
    assert [a for a in ("registry.push", "registry.refuse", "registry.promote", "registry.rollback")
            if any(f'"action":"{a}"' in line for line in logged)] == [
        "registry.push", "registry.refuse", "registry.promote", "registry.rollback"]  # fmt: skip


def test_a_slower_candidate_is_refused_by_the_latency_gate(
    setup: tuple[Registry, Path, AuditLog], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    reg, judgments, _ = setup
    gates.push(reg, tiny_static_artifacts, version_id="base", judgments=judgments)
    gates.promote(reg, "base")
    gates.push(reg, good_copy(tiny_static_artifacts, tmp_path / "slow"), version_id="slow", judgments=judgments)
    clock = FakeTime()
    loaded = [
        Loaded("slow", slowed(load_version("slow", reg.artifacts_path("slow")).search, clock, 0.020), None),
        Loaded("base", slowed(load_version("base", reg.artifacts_path("base")).search, clock, 0.010), None),
    ]
    with pytest.raises(PromotionRefusedError) as exc:
        gates.promote(reg, "slow", judgments=judgments, loaded=loaded, timer=clock)
    msg = exc.value.message
    assert "p99 latency gate failed by 7.500 ms" in msg and "+100.0%" in msg
    assert "NDCG" not in msg  # the quality gate passed: same model
    assert reg.current_id() == "base"


def test_promote_refuses_unknown_and_current_versions(
    setup: tuple[Registry, Path, AuditLog], tiny_static_artifacts: Path
) -> None:
    reg, judgments, _ = setup
    gates.push(reg, tiny_static_artifacts, version_id="base", judgments=judgments)
    gates.promote(reg, "base")
    with pytest.raises(RequestError, match="already the current"):
        gates.promote(reg, "base")
    with pytest.raises(RequestError, match="no version 'nope'"):
        gates.promote(reg, "nope")


def _report(search: float, recommend: float | None) -> dict[str, Any]:
    return {"search": {"ndcg@10": search}, "recommend": None if recommend is None else {"ndcg@10": recommend}}


def test_check_gates_includes_recommendation_only_when_both_have_it() -> None:
    bench = {"c": {"p99_ms": 5.0}, "u": {"p99_ms": 5.0}}
    tol = gates.Tolerances()
    both = gates.check_gates(_report(0.8, 0.30), _report(0.8, 0.35), bench, ("c", "u"), tol)
    assert [(g.gate, g.passed) for g in both] == [
        ("search NDCG@10", True),
        ("recommend NDCG@10", False),
        ("p99 latency", True),
    ]
    assert "failed by 0.0400" in both[1].message
    one = gates.check_gates(_report(0.8, None), _report(0.8, 0.35), bench, ("c", "u"), tol)
    assert [g.gate for g in one] == ["search NDCG@10", "p99 latency"]


def test_recommendation_ndcg_is_evaluated_and_gated_with_sequences(
    setup: tuple[Registry, Path, AuditLog], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    from support.tinyshop import tiny_events

    reg, judgments, _ = setup
    by_user: dict[str, list[str]] = {}
    for e in sorted(tiny_events(), key=lambda e: e.timestamp):
        items = by_user.setdefault(e.user_id, [])
        if not items or items[-1] != e.item_id:
            items.append(e.item_id)
    seq_file = tmp_path / "sequences.txt"
    seq_file.write_text("".join(f"{u} {' '.join(items)}\n" for u, items in by_user.items() if len(items) >= 2))
    rec = gates.push(reg, tiny_static_artifacts, version_id="base", judgments=judgments, sequences=seq_file)
    recommend = rec["evaluations"][0]["recommend"]
    assert recommend is not None and recommend["users"] >= 1 and 0.0 <= recommend["ndcg@10"] <= 1.0
    gates.promote(reg, "base")
    gates.push(reg, good_copy(tiny_static_artifacts, tmp_path / "good"), version_id="good", judgments=judgments)
    clock = FakeTime()
    real = {v: load_version(v, reg.artifacts_path(v)) for v in ("good", "base")}
    assert real["good"].recommend is not None
    loaded = [Loaded(v, slowed(real[v].search, clock, 0.005), real[v].recommend) for v in ("good", "base")]
    done = gates.promote(reg, "good", judgments=judgments, sequences=seq_file, loaded=loaded, timer=clock)
    assert [g.gate for g in done.gates] == ["search NDCG@10", "recommend NDCG@10", "p99 latency"]
    assert done.reports["good"]["recommend"] == done.reports["base"]["recommend"]  # same models, same answers


def test_validation_labels_name_the_content(tmp_path: Path) -> None:
    from shoprec.errors import DataError
    from shoprec.pipeline.ltr import Group
    from shoprec.pipeline.validation import write_validation
    from shoprec.registry.evaluation import validation_groups

    for name in ("a", "b", "empty"):
        (tmp_path / name).mkdir()
    write_validation([Group("drill", {"A": 1.0})], tmp_path / "a" / "validation.jsonl")
    write_validation([Group("drill", {"A": 1.0})], tmp_path / "b" / "validation.jsonl")
    groups, label_a = validation_groups([tmp_path / "a"])
    _, label_b = validation_groups([tmp_path / "empty", tmp_path / "b"])  # falls through to b
    assert label_a == label_b and label_a.startswith("stored:") and groups[0].query == "drill"
    with pytest.raises(DataError, match="no validation set"):
        validation_groups([tmp_path / "empty"])
