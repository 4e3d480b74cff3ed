"""``shoprec rules``: the rule set's versions from the CLI, a rollback audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoprec.cli import main
from shoprec.security.audit import verify
from shoprec.serving.rulestore import RuleIn, RuleStore


def pin(rid: str, product: str) -> RuleIn:
    return RuleIn.model_validate(
        {
            "id": rid,
            "scope": {"type": "query_exact", "value": "drill"},
            "action": {"type": "pin", "product_id": product, "position": 1},
        }
    )


def test_versions_show_and_an_audited_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("SHOPREC_AUDIT_LOG", str(log))
    store = RuleStore(tmp_path / "rules")
    store.publish([pin("a", "T001")], author="key:k1", note="first")
    store.publish([pin("b", "T002")], author="key:k2")
    data_dir = ["--data-dir", str(tmp_path)]
    assert main(["rules", "versions", *data_dir, "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[-1]) == {"versions": [2, 1]} and "key:k1  1 rules  first" in out[1]
    assert main(["rules", "show", *data_dir]) == 0
    assert json.loads(capsys.readouterr().out)["rules"][0]["id"] == "b"
    assert main(["rules", "rollback", "1", *data_dir]) == 0
    assert "published version 3" in capsys.readouterr().out
    assert [r.id for r in RuleStore(tmp_path / "rules").current().index.rules] == ["a"]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["action"], e["details"]["version"], e["details"]["rollback_of"]) for e in entries] == [
        ("rules.rollback", 3, 1)
    ]
    assert entries[0]["actor"].startswith("cli:") and verify(log).ok
    assert main(["rules", "show", "9", *data_dir]) == 2  # no such version: an error, not a trace
