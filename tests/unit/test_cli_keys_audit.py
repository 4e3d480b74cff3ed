"""Key changes from the CLI land in the audit log named by the settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoprec.cli import main
from shoprec.security.audit import verify


def test_key_create_and_revoke_are_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "audit.jsonl"
    store = tmp_path / "keys.json"
    monkeypatch.setenv("SHOPREC_AUDIT_LOG", str(log))
    assert main(["keys", "create", "--store", str(store), "--name", "ops", "--role", "admin"]) == 0
    out = capsys.readouterr().out
    key_id = out.split("key id: ")[1].split()[0]
    plain = out.split("(shown once): ")[1].split()[0]
    assert main(["keys", "revoke", "--store", str(store), key_id]) == 0
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["action"] for e in entries] == ["keys.create", "keys.revoke"]
    assert entries[0]["details"]["key_id"] == key_id and entries[0]["details"]["roles"] == ["admin"]
    assert all(e["actor"].startswith("cli:") for e in entries)
    assert plain not in log.read_text()  # the secret never reaches the log
    assert verify(log).ok


def test_without_an_audit_log_setting_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SHOPREC_AUDIT_LOG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["keys", "create", "--store", "keys.json", "--name", "ops", "--role", "search"]) == 0
    capsys.readouterr()
    assert not list(tmp_path.rglob("*.jsonl"))
