"""The registry layout: immutable pushes, the atomic pointer, rollback, history, safe ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shoprec import artifacts
from shoprec.errors import ArtifactError, IntegrityError, NotFoundError, RequestError
from shoprec.registry.store import Registry, check_version_id


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def make_artifacts(folder: Path, payload: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "catalog.jsonl").write_text(payload)
    (folder / "sub").mkdir()
    (folder / "sub" / "weights.bin").write_bytes(payload.encode() * 3)
    artifacts.write_manifest(folder, model_id=f"model-{payload}", config={}, metrics={})
    return folder


@pytest.fixture()
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry", clock=FakeClock())


def test_push_copies_an_immutable_verified_version(reg: Registry, tmp_path: Path) -> None:
    src = make_artifacts(tmp_path / "a", "one")
    rec = reg.push(src, version_id="v1")
    assert rec["id"] == "v1" and rec["model_id"] == "model-one" and rec["evaluations"] == []
    copy = reg.artifacts_path("v1")
    assert artifacts.verify(copy)["model_id"] == "model-one"
    assert (copy / "sub" / "weights.bin").read_bytes() == b"oneoneone"
    assert reg.read_version("v1")["manifest_sha256"] == rec["manifest_sha256"]
    # the source may change afterwards; the version does not
    (src / "catalog.jsonl").write_text("changed")
    assert (copy / "catalog.jsonl").read_text() == "one"
    with pytest.raises(RequestError, match="already exists"):
        reg.push(make_artifacts(tmp_path / "b", "two"), version_id="v1")
    assert reg.history()[-1]["action"] == "push"
    assert reg.current_path() is None  # pushing does not promote


def test_push_generates_an_id_and_lists_in_push_order(reg: Registry, tmp_path: Path) -> None:
    a = reg.push(make_artifacts(tmp_path / "a", "one"))
    b = reg.push(make_artifacts(tmp_path / "b", "two"))
    assert a["id"].startswith("v") and a["manifest_sha256"][:8] in a["id"]
    assert [v["id"] for v in reg.versions()] == [a["id"], b["id"]]


def test_push_refuses_a_tampered_folder_and_leaves_nothing(reg: Registry, tmp_path: Path) -> None:
    src = make_artifacts(tmp_path / "a", "one")
    (src / "sub" / "weights.bin").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="sub/weights.bin"):
        reg.push(src, version_id="v1")
    assert not reg.exists("v1")
    assert list(reg.root.rglob("*")) == []  # no version, no temp folder left behind


def test_a_copy_that_fails_verification_leaves_no_version(reg: Registry, tmp_path: Path) -> None:
    src = make_artifacts(tmp_path / "a", "one")
    calls: list[Path] = []

    def verify_then_tamper(folder: Path) -> Any:
        calls.append(folder)
        if len(calls) == 2:  # the copy: simulate a file corrupted while copying
            (folder / "sub" / "weights.bin").chmod(0o644)
            (folder / "sub" / "weights.bin").write_bytes(b"corrupt")
        return artifacts.verify(folder)

    with pytest.raises(IntegrityError, match="sub/weights.bin"):
        reg.push(src, version_id="v1", verify=verify_then_tamper)
    assert calls[0] == src and calls[1] != src
    assert not reg.exists("v1") and list(reg.versions_dir.iterdir()) == []


def test_push_refuses_an_unlisted_file(reg: Registry, tmp_path: Path) -> None:
    src = make_artifacts(tmp_path / "a", "one")
    (src / "extra.py").write_text("import os")
    with pytest.raises(IntegrityError, match="extra.py"):
        reg.push(src, version_id="v1")


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "/abs", ".hidden", "", "a\\b", "x" * 81, "v1/../../etc", "a..b"])
def test_version_ids_that_could_escape_are_refused(reg: Registry, tmp_path: Path, bad: str) -> None:
    with pytest.raises(RequestError, match="bad version id"):
        check_version_id(bad)
    with pytest.raises(RequestError, match="bad version id"):
        reg.push(make_artifacts(tmp_path / "a", "one"), version_id=bad)
    with pytest.raises(RequestError):
        reg.artifacts_path(bad)


def test_a_pointer_naming_a_path_is_refused(reg: Registry) -> None:
    reg.root.mkdir(parents=True)
    (reg.root / "CURRENT").write_text(json.dumps({"version": "../../etc", "previous": []}))
    with pytest.raises(ArtifactError, match="malformed registry pointer"):
        reg.current_path()


def test_promote_and_rollback_move_the_pointer(reg: Registry, tmp_path: Path) -> None:
    for i, name in enumerate(["one", "two", "three"]):
        reg.push(make_artifacts(tmp_path / name, name), version_id=f"v{i + 1}")
    reg.set_current("v1", action="promote")
    reg.set_current("v2", action="promote")
    p = reg.set_current("v3", action="promote")
    assert (p.version, p.previous) == ("v3", ("v2", "v1"))
    assert reg.current_path() == reg.root / "versions" / "v3" / "artifacts"
    p, left = reg.rollback()
    assert (p.version, p.previous, left) == ("v2", ("v1",), "v3")
    p, left = reg.rollback()
    assert (p.version, p.previous, left) == ("v1", (), "v2")
    with pytest.raises(RequestError, match="nothing to roll back to"):
        reg.rollback()
    assert [h["action"] for h in reg.history()][-5:] == ["promote", "promote", "promote", "rollback", "rollback"]
    assert reg.history()[-1] | {"ts": None} == {"ts": None, "action": "rollback", "version": "v1", "previous": "v2"}


def test_set_current_needs_a_known_version(reg: Registry) -> None:
    with pytest.raises(NotFoundError):
        reg.set_current("nope", action="promote")
    with pytest.raises(RequestError, match="no version was promoted"):
        reg.rollback()


def test_a_crash_before_the_rename_leaves_the_old_pointer(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    reg = Registry(root, clock=FakeClock())
    reg.push(make_artifacts(tmp_path / "a", "one"), version_id="v1")
    reg.push(make_artifacts(tmp_path / "b", "two"), version_id="v2")
    reg.set_current("v1", action="promote")
    before = (root / "CURRENT").read_bytes()
    seen: list[Path] = []

    def crash(tmp: Path) -> None:
        seen.append(tmp)
        assert json.loads(tmp.read_text())["version"] == "v2"  # the new pointer was fully written
        raise OSError("simulated crash before os.replace")

    crashing = Registry(root, clock=FakeClock(), _before_pointer_replace=crash)
    with pytest.raises(OSError, match="simulated crash"):
        crashing.set_current("v2", action="promote")
    assert (root / "CURRENT").read_bytes() == before
    assert Registry(root).current_id() == "v1"
    assert seen and not seen[0].exists()
    assert sorted(p.name for p in root.iterdir()) == [".lock", "CURRENT", "history.jsonl", "versions"]


def test_add_evaluation_keeps_every_report(reg: Registry, tmp_path: Path) -> None:
    reg.push(make_artifacts(tmp_path / "a", "one"), version_id="v1")
    reg.add_evaluation("v1", {"context": "push", "search": {"ndcg@10": 0.5}})
    reg.add_evaluation("v1", {"context": "promote", "search": {"ndcg@10": 0.6}})
    assert [e["context"] for e in reg.read_version("v1")["evaluations"]] == ["push", "promote"]
    with pytest.raises(NotFoundError):
        reg.add_evaluation("v9", {})


def test_set_current_refuses_when_the_pointer_moved(reg: Registry, tmp_path: Path) -> None:
    for name in ("v1", "v2", "v3"):
        reg.push(make_artifacts(tmp_path / name, name), version_id=name)
    reg.set_current("v1", action="promote", expected_current=None)
    reg.set_current("v2", action="promote")  # someone else promoted meanwhile
    with pytest.raises(RequestError, match="current version changed to 'v2'"):
        reg.set_current("v3", action="promote", expected_current="v1")
    assert reg.current_id() == "v2"
    assert reg.set_current("v3", action="promote", expected_current="v2").previous == ("v2", "v1")


def test_the_serving_runtime_follows_the_pointer(reg: Registry, tmp_path: Path) -> None:
    from shoprec.registry_pointer import current_artifacts

    assert current_artifacts(reg.root) is None
    reg.push(make_artifacts(tmp_path / "a", "one"), version_id="v1")
    reg.set_current("v1", action="promote")
    assert current_artifacts(reg.root) == (reg.artifacts_path("v1"), "v1")
