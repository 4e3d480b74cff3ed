"""The runtime's swap, lease, drain, refusal and registry pickup, with stand-in services."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shoprec.errors import ArtifactError, ArtifactRefusedError, IntegrityError, NotReadyError
from shoprec.registry_pointer import current_artifacts
from shoprec.security.audit import AuditLog
from shoprec.security.audit import verify as verify_log
from shoprec.serving.runtime import Runtime
from shoprec.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _bundle(folder: Path) -> Any:
    if (folder / "BAD").exists():
        raise IntegrityError(f"{folder}: checksum mismatch for embeddings.npy")
    version = (folder / "VERSION").read_text().strip()
    return SimpleNamespace(
        version=version, model_id="m", folder=folder, catalog=[1, 2], signer=None, read_root=None, extras={}
    )


def _services(bundle: Any) -> Any:
    return SimpleNamespace(bundle=bundle), None


def _version(root: Path, name: str, *, bad: bool = False) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "VERSION").write_text(name)
    if bad:
        (folder / "BAD").write_text("")
    return folder


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    settings = Settings.load(environ={}, require_signature=False, drain_timeout_s=5)
    audit = AuditLog(tmp_path / "audit.jsonl", FakeClock())
    return Runtime(settings, _services, audit=audit, clock=FakeClock(), loader=_bundle)


def test_nothing_loaded_is_not_ready_and_says_why(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(NotReadyError):
        runtime.require()
    with pytest.raises(ArtifactRefusedError, match="embeddings.npy"):
        runtime.load(_version(tmp_path, "broken", bad=True))
    with pytest.raises(NotReadyError, match="embeddings.npy"):
        runtime.require()
    with runtime.lease() as live:
        assert live is None


def test_swap_keeps_leased_requests_on_their_version_and_drains_the_old(runtime: Runtime, tmp_path: Path) -> None:
    v1 = runtime.load(_version(tmp_path, "v1"))
    with runtime.lease() as held:
        assert held is v1 and v1.inflight == 1
        v2 = runtime.load(_version(tmp_path, "v2"), actor="key:abc")
        assert runtime.current is v2 and held.version == "v1"  # the request finishes on v1
        assert not runtime.wait_drained(v1, timeout_s=0.0)
    assert v1.inflight == 0 and runtime.wait_drained(v1, timeout_s=0.0)
    with runtime.lease() as now:
        assert now is v2


def test_a_refused_version_leaves_the_current_one_serving_and_is_audited(runtime: Runtime, tmp_path: Path) -> None:
    v1 = runtime.load(_version(tmp_path, "v1"))
    with pytest.raises(ArtifactRefusedError, match="v1 keeps serving") as refused:
        runtime.load(_version(tmp_path, "evil", bad=True), actor="key:ops")
    assert "embeddings.npy" in str(refused.value)
    assert runtime.current is v1 and runtime.load_error is None
    assert runtime.audit is not None
    entries = [json.loads(x) for x in runtime.audit.path.read_text().splitlines()]
    assert [e["action"] for e in entries] == ["model.load", "artifact.refused"]
    assert entries[1]["actor"] == "key:ops" and entries[1]["details"]["error"] == "integrity_error"
    assert verify_log(runtime.audit.path).ok


def _point(root: Path, version: str) -> Path:
    folder = _version(root / "versions" / version, "artifacts")
    (folder / "VERSION").write_text(version)
    tmp = root / "CURRENT.tmp"
    tmp.write_text(json.dumps({"version": version}))
    tmp.replace(root / "CURRENT")
    return folder


def test_registry_promotions_and_rollbacks_are_picked_up(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    root.mkdir()
    settings = Settings.load(environ={}, require_signature=False, registry=root)
    rt = Runtime(settings, _services, clock=FakeClock(), loader=_bundle)
    assert rt.poll_registry() is None and rt.current is None  # no version yet
    _point(root, "a1")
    assert rt.poll_registry() is not None and rt.require().version == "a1"
    assert rt.poll_registry() is None  # unchanged pointer: nothing to do
    _point(root, "b2")
    assert rt.poll_registry() is not None and rt.require().registry_version == "b2"
    (root / "CURRENT").write_text(json.dumps({"version": "a1"}))  # a rollback
    assert rt.poll_registry() is not None and rt.require().version == "a1"
    bad = _point(root, "c3")
    (bad / "BAD").write_text("")
    assert rt.poll_registry() is None and rt.require().version == "a1"  # refused: a1 keeps serving
    assert rt.poll_registry() is None  # and not retried until the pointer moves


@pytest.mark.parametrize("pointer", ['{"version": "../x"}', '{"nope": 1}', "not json"])
def test_a_malformed_registry_pointer_is_refused(tmp_path: Path, pointer: str) -> None:
    (tmp_path / "CURRENT").write_text(pointer)
    with pytest.raises(ArtifactError, match="CURRENT: (unreadable|malformed) registry pointer"):
        current_artifacts(tmp_path)


def test_switching_verification_off_is_explicit_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="shoprec.serving.runtime"):
        Runtime(Settings.load(environ={}), _services, loader=_bundle)
    assert not caplog.records  # the default verifies: nothing to warn about
    with caplog.at_level("WARNING", logger="shoprec.serving.runtime"):
        Runtime(Settings.load(environ={"SHOPREC_REQUIRE_SIGNATURE": "false"}), _services, loader=_bundle)
    assert any("signature verification is OFF" in r.getMessage() for r in caplog.records)


def test_a_replaced_version_is_retired_once_drained(runtime: Runtime, tmp_path: Path) -> None:
    retired: list[str] = []
    drained = threading.Event()

    def on_retired(live: Any) -> None:
        retired.append(live.version)
        drained.set()

    runtime.on_retired = on_retired
    runtime.load(_version(tmp_path, "v1"))
    with runtime.lease() as held:
        runtime.load(_version(tmp_path, "v2"))
        assert held is not None and held.version == "v1"
        assert retired == []  # a request still holds v1: not retired under it
    assert drained.wait(timeout=30)
    assert retired == ["v1"]
