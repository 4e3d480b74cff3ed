"""`shoprec registry push|list|promote|rollback` and `shoprec eval report`, end to end in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoprec.cli import main
from shoprec.security.audit import verify as verify_audit
from support.registryhelp import degraded_copy, good_copy, write_judgments

# Real wall-clock latency on a shared machine is noisy: here the latency gate runs and reports,
# with a minute of slack no measurement can exceed; its arithmetic and its refusal are tested
# with a fake clock in tests/unit/registry/test_registry_gates.py.
LOOSE_LATENCY = ["--latency-tolerance", "5", "--latency-slack-ms", "60000", "--repetitions", "2"]


def test_registry_lifecycle(
    tmp_path: Path, tiny_static_artifacts: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv("SHOPREC_AUDIT_LOG", str(audit))
    reg = tmp_path / "registry"
    judg = str(write_judgments(tmp_path / "judgments.jsonl"))
    common = ["--registry", str(reg), "--judgments", judg]

    assert main(["registry", "push", str(tiny_static_artifacts), "--id", "base", *common, "--json"]) == 0
    out = capsys.readouterr().out
    assert "pushed base: search NDCG@10" in out and json.loads(out.splitlines()[-1])["evaluated"] is True
    assert main(["registry", "promote", "base", *common]) == 0
    assert "promoted base (previous: none)" in capsys.readouterr().out

    assert (
        main(["registry", "push", str(degraded_copy(tiny_static_artifacts, tmp_path / "bad")), "--id", "bad", *common])
        == 0
    )
    capsys.readouterr()
    pointer = (reg / "CURRENT").read_bytes()
    assert main(["registry", "promote", "bad", *common, *LOOSE_LATENCY]) == 2
    err = capsys.readouterr().err
    assert "promotion of bad refused; base stays current" in err and "search NDCG@10 gate failed by" in err
    assert (reg / "CURRENT").read_bytes() == pointer

    assert (
        main(["registry", "push", str(good_copy(tiny_static_artifacts, tmp_path / "good")), "--id", "good", *common])
        == 0
    )
    assert main(["registry", "promote", "good", *common, *LOOSE_LATENCY, "--json"]) == 0
    out = capsys.readouterr().out
    assert "search NDCG@10 gate passed" in out and "p99 latency gate passed" in out
    assert json.loads(out.splitlines()[-1]) == {
        "version": "good",
        "previous": "base",
        "gates": ["search NDCG@10", "p99 latency"],
    }

    assert main(["registry", "list", "--registry", str(reg), "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[-1]) == {"current": "good", "versions": ["base", "bad", "good"]}
    current_line = next(line for line in out.splitlines() if " good " in line)
    assert current_line.startswith("*")

    assert main(["registry", "rollback", "--registry", str(reg)]) == 0
    assert "rolled back from good to base" in capsys.readouterr().out
    assert json.loads((reg / "CURRENT").read_text())["version"] == "base"

    report = tmp_path / "report.md"
    assert main(["eval", "report", "--registry", str(reg), "--version", "bad", "--out", str(report)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].startswith("version") and table.count("bad") >= 2
    md = report.read_text()
    lost = md.split("### Queries that lost most NDCG@10 against base")[1].split("### Lowest")[0]
    assert "| cordless drill |" in lost or "| couch |" in lost  # the shuffled catalog loses judged queries
    assert "### Lowest-NDCG@10 queries" in md
    html_out = tmp_path / "report.html"
    assert main(["eval", "report", "--registry", str(reg), "--out", str(html_out)]) == 0
    assert html_out.read_text().startswith("<!doctype html>")

    result = verify_audit(audit)
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    actions = [e["action"] for e in entries if e["action"].startswith("registry.")]
    assert actions == ["registry.push", "registry.promote", "registry.push", "registry.refuse", "registry.push",
                       "registry.promote", "registry.rollback"]  # fmt: skip
    assert result.ok and all(e["actor"].startswith("cli:") for e in entries if e["action"] in actions)
    refusal = next(e for e in entries if e["action"] == "registry.refuse")
    assert refusal["details"]["version"] == "bad" and not refusal["details"]["gates"][0]["passed"]


def test_cli_refusals_are_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_static_artifacts: Path
) -> None:
    reg = ["--registry", str(tmp_path / "registry")]
    assert main(["registry", "push", str(tiny_static_artifacts), "--id", "../escape", *reg]) == 2
    assert "bad version id" in capsys.readouterr().err
    assert not (tmp_path / "escape").exists()
    assert main(["registry", "rollback", *reg]) == 2
    assert "nothing to roll back" in capsys.readouterr().err
    assert main(["registry", "promote", "nope", *reg]) == 2
    assert "no version 'nope'" in capsys.readouterr().err
    tampered = good_copy(tiny_static_artifacts, tmp_path / "tampered")
    (tampered / "catalog.jsonl").write_text("{}\n")
    assert main(["registry", "push", str(tampered), *reg]) == 2
    assert "checksum mismatch for catalog.jsonl" in capsys.readouterr().err
