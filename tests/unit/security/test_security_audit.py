"""The hash-chained audit log (shoprec.security.audit)."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest

from shoprec.errors import ConfigError, DataError
from shoprec.security import audit
from shoprec.security.audit import GENESIS_HASH, AuditLog


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _log_of(path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(path, FakeClock())
    for i in range(n):
        log.append(f"action.{i}", f"actor-{i}", {"i": i, "text": "é"})
    return log


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_chain_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _log_of(path)
    entries = [json.loads(line) for line in _lines(path)]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(entries, entries[1:], strict=False))
    assert all(set(e) == audit.FIELDS for e in entries)
    result = audit.verify(path)
    assert result == audit.VerifyResult(True, 5, None, None, entries[-1]["hash"])
    assert log.head() == (5, entries[-1]["hash"])
    assert audit.verify(path, expected_head=entries[-1]["hash"]).ok


def test_append_returns_the_entry_written(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl", FakeClock(10.0))
    entry = log.append("keys.create", "admin", {"key_id": "k1"})
    assert entry == json.loads((tmp_path / "a.jsonl").read_text())
    assert entry["ts"] == 11.0 and entry["hash"] == audit.entry_hash(entry)


@pytest.mark.parametrize("line_no", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("field", ["actor", "details", "ts", "seq", "prev_hash", "hash"])
def test_editing_any_line_breaks_at_that_line(tmp_path: Path, line_no: int, field: str) -> None:
    path = tmp_path / "audit.jsonl"
    _log_of(path)
    lines = _lines(path)
    entry = json.loads(lines[line_no - 1])
    edits: dict[str, object] = {
        "actor": "someone-else",
        "details": {"i": 99},
        "ts": entry["ts"] + 1,
        "seq": entry["seq"] + 10,
        "prev_hash": "f" * 64,
        "hash": "e" * 64,
    }
    entry[field] = edits[field]
    lines[line_no - 1] = json.dumps(entry) + "\n"
    path.write_text("".join(lines))
    result = audit.verify(path)
    assert not result.ok and result.first_bad_line == line_no
    assert result.entries == line_no - 1 and result.reason


@pytest.mark.parametrize("line_no", [1, 2, 3, 4])
def test_deleting_a_line_breaks_at_that_line(tmp_path: Path, line_no: int) -> None:
    path = tmp_path / "audit.jsonl"
    _log_of(path)
    lines = _lines(path)
    del lines[line_no - 1]
    path.write_text("".join(lines))
    result = audit.verify(path)
    assert not result.ok and result.first_bad_line == line_no


def test_deleting_the_last_line_needs_the_expected_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = _log_of(path).head()[1]
    path.write_text("".join(_lines(path)[:-1]))
    assert audit.verify(path).ok  # a shorter chain is still a chain
    result = audit.verify(path, expected_head=head)
    assert not result.ok and result.first_bad_line == 5 and "truncated" in (result.reason or "")


def test_reordering_and_garbage_are_caught(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_of(path)
    lines = _lines(path)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_text("".join(lines))
    assert audit.verify(path).first_bad_line == 3
    lines = _lines(path)
    lines[2], lines[3] = lines[3], lines[2]
    lines.insert(1, "not json\n")
    path.write_text("".join(lines))
    result = audit.verify(path)
    assert result.first_bad_line == 2 and "not valid JSON" in (result.reason or "")


def test_missing_and_empty_logs(tmp_path: Path) -> None:
    missing = audit.verify(tmp_path / "none.jsonl")
    assert not missing.ok and "no audit log" in (missing.reason or "")
    (tmp_path / "empty.jsonl").write_text("")
    assert audit.verify(tmp_path / "empty.jsonl") == audit.VerifyResult(True, 0, None, None, GENESIS_HASH)


def test_restart_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first = _log_of(path, 3)
    last = first.head()
    again = AuditLog(path, FakeClock())  # a new process, after a restart
    entry = again.append("after.restart", "ops")
    assert entry["seq"] == 4 and entry["prev_hash"] == last[1]
    first.append("from.the.old.handle", "ops")  # it notices the other writer's entry
    result = audit.verify(path)
    assert result.ok and result.entries == 5


def test_a_broken_tail_is_not_extended(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log_of(path, 2)
    with path.open("a") as f:
        f.write('{"seq": 3, "torn')
    with pytest.raises(audit.AuditLogError, match="incomplete"):
        AuditLog(path, FakeClock())
    assert audit.verify(path).first_bad_line == 3
    lines = _lines(path)[:2]
    entry = json.loads(lines[1])
    entry["actor"] = "edited"
    path.write_text(lines[0] + json.dumps(entry) + "\n")
    with pytest.raises(audit.AuditLogError, match="last entry is broken"):
        AuditLog(path, FakeClock())


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    logs = [AuditLog(path, FakeClock()) for _ in range(2)]  # two "processes"

    def work(log: AuditLog) -> None:
        for i in range(25):
            log.append("search", "k", {"i": i})

    threads = [threading.Thread(target=work, args=(logs[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = audit.verify(path)
    assert result.ok and result.entries == 100


def test_details_must_be_json(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl", FakeClock())
    with pytest.raises(DataError, match="not JSON-serialisable"):
        log.append("x", "y", {"bad": object()})
    with pytest.raises(DataError):
        log.append("x", "y", {"nan": float("nan")})
    assert audit.verify(tmp_path / "a.jsonl").entries == 0


def test_sampling_is_deterministic(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl", FakeClock(), sample_rate=0.25)
    picks = [log.should_sample(random.Random(7)) for _ in range(3)]
    assert len(set(picks)) == 1  # the same seed, the same answer
    rng = random.Random(42)
    kept = sum(log.should_sample(rng) for _ in range(10_000))
    assert 2_300 < kept < 2_700
    always = AuditLog(tmp_path / "b.jsonl", FakeClock(), sample_rate=1.0)
    never = AuditLog(tmp_path / "c.jsonl", FakeClock(), sample_rate=0.0)
    assert all(always.should_sample(rng) for _ in range(100))
    assert not any(never.should_sample(rng) for _ in range(100))
    with pytest.raises(ConfigError):
        AuditLog(tmp_path / "d.jsonl", FakeClock(), sample_rate=1.5)
