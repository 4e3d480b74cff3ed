"""One continuous-training cycle on the tiny shop: a time split, a candidate built on the older
events, pushed, promoted only through the gates (scored on the held-out slice), audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoprec.core.sessions import time_split
from shoprec.errors import DataError
from shoprec.pipeline.build import BuildOptions, build
from shoprec.registry import gates
from shoprec.registry.continuous import retrain_cycle
from shoprec.registry.store import Registry
from shoprec.security.audit import AuditLog
from shoprec.security.audit import verify as verify_audit
from shoprec.types import Event
from support.tinyshop import tiny_events, tiny_judgments, tiny_products

OPTIONS = BuildOptions(recommender_max_train_s=5, ladder=False)


def test_time_split_holds_out_the_latest_events_as_next_clicks() -> None:
    events = [Event(f"u{i % 3}", f"i{i}", "click", float(i)) for i in range(10)]
    train, held = time_split(list(reversed(events)), 0.2)
    assert [e.item_id for e in train] == [f"i{i}" for i in range(8)]
    # u2 clicked i8 (held out) after i2 and i5; u0 clicked i9 after i0, i3, i6
    assert held == {"u2": ["i2", "i5", "i8"], "u0": ["i0", "i3", "i6", "i9"]}
    with pytest.raises(DataError):
        time_split(events, 1.0)


def test_a_retrain_cycle_goes_through_the_gates_and_is_audited(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    products, events = tiny_products(), tiny_events()
    half = len(events) // 2
    registry = Registry(tmp_path / "registry")
    audit = AuditLog(tmp_path / "audit.jsonl", lambda: 0.0)
    judgments = tmp_path / "judgments.csv"
    judgments.write_text(
        "query,product_id,relevance\n" + "".join(f"{j.query},{j.product_id},{j.relevance}\n" for j in tiny_judgments())
    )
    first = tmp_path / "v1"
    build(products, first, events=events[:half], encoder_dir=tiny_encoder_dir, options=OPTIONS, progress=False)
    v1 = gates.push(registry, first, judgments=judgments)["id"]
    gates.promote(registry, v1, judgments=judgments)

    decision = retrain_cycle(
        products,
        events[half:],
        registry,
        tmp_path / "work",
        base_events=events[:half],
        holdout_fraction=0.3,
        judgments=judgments,
        encoder_dir=tiny_encoder_dir,
        options=OPTIONS,
        tolerances=gates.Tolerances(latency_tolerance=10.0, latency_slack_ms=100.0),  # the machine's load cannot decide
        audit=audit,
    )
    candidate = decision["candidate"]
    assert decision["current"] == v1 and candidate != v1
    assert decision["holdout_events"] == len(events[half:]) - int(round(len(events[half:]) * 0.7))
    assert decision["holdout_users"] > 0
    for version in (candidate, v1):  # both scored on the held-out slice, HR@20 included
        assert 0.0 <= decision["evaluations"][version]["hr@20"] <= 1.0
    names = {g["gate"] for g in decision["gates"]} if decision["promoted"] else set()
    assert registry.current_id() == (candidate if decision["promoted"] else v1)
    if decision["promoted"]:
        assert {"search NDCG@10", "recommend NDCG@10"} <= names
    else:
        assert "refused" in decision["refusal"]
    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["action"] for e in entries][-1] == "training.decision"
    assert entries[-1]["details"]["candidate"] == candidate and verify_audit(tmp_path / "audit.jsonl").ok
    assert (tmp_path / "work" / "holdout_sequences.txt").read_text().count("\n") == decision["holdout_users"]
