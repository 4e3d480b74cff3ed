"""The artifacts folder format (shoprec.artifacts) and the atomic writes under it (shoprec.atomicio)."""

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from shoprec import artifacts, atomicio
from shoprec.errors import ArtifactError, IntegrityError


def _build(out: Path, payload: str = "weights") -> None:
    with artifacts.write_artifacts(out) as tmp:
        (tmp / "weights.npy").write_text(payload)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "vocab.json").write_text("{}")
        artifacts.write_manifest(tmp, model_id="m", config={"a": 1}, metrics={"n": 2})


def test_manifest_lists_every_file_with_sha256(tmp_path: Path) -> None:
    out = tmp_path / "a"
    _build(out)
    m = artifacts.verify(out)
    assert set(m["files"]) == {"weights.npy", "sub/vocab.json"}
    assert m["format_version"] == artifacts.FORMAT_VERSION and m["model_id"] == "m"
    assert m["files"]["weights.npy"] == artifacts.sha256_file(out / "weights.npy")


def test_tampered_file_is_refused_naming_it(tmp_path: Path) -> None:
    out = tmp_path / "a"
    _build(out)
    (out / "sub" / "vocab.json").write_text('{"x": 1}')
    with pytest.raises(IntegrityError, match="sub/vocab.json"):
        artifacts.verify(out)


def test_missing_and_unlisted_files_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "a"
    _build(out)
    (out / "extra.bin").write_text("x")
    with pytest.raises(IntegrityError, match="extra.bin"):
        artifacts.verify(out)
    (out / "extra.bin").unlink()
    (out / "weights.npy").unlink()
    with pytest.raises(IntegrityError, match="missing: weights.npy"):
        artifacts.verify(out)


def test_failed_build_leaves_previous_artifacts_intact(tmp_path: Path) -> None:
    out = tmp_path / "a"
    _build(out, "v1")
    with pytest.raises(RuntimeError), artifacts.write_artifacts(out) as tmp:
        (tmp / "weights.npy").write_text("v2")
        raise RuntimeError("encoder crashed")
    assert (out / "weights.npy").read_text() == "v1"
    artifacts.verify(out)
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no temp folders left behind


def test_build_without_manifest_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError), artifacts.write_artifacts(tmp_path / "b") as tmp:
        (tmp / "x").write_text("x")
    assert not (tmp_path / "b").exists()


def test_paths_cannot_escape_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "a"
    _build(out)
    m = json.loads((out / "manifest.json").read_text())
    m["files"]["../../etc/passwd"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="escapes"):
        artifacts.verify(out)


def test_unreadable_or_foreign_manifest(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no manifest.json"):
        artifacts.verify(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        artifacts.verify(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 99, "files": {}}))
    with pytest.raises(ArtifactError, match="format version"):
        artifacts.verify(tmp_path)


def test_the_manifest_writer_is_the_one_layout(tmp_path: Path) -> None:
    out = tmp_path / "a"
    _build(out)
    m = artifacts.verify(out)
    m["ladder"] = {"levels": []}
    artifacts.save_manifest(out, m)
    assert (out / "manifest.json").read_text() == json.dumps(m, indent=2, sort_keys=True)
    assert artifacts.verify(out)["ladder"] == {"levels": []}  # the manifest is not a listed file
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "sub", "weights.npy"]  # no temp left


def test_atomic_writes_replace_whole_files_with_the_mode_asked(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    atomicio.write_json(path, {"b": 1, "a": [1, 2]}, indent=2, sort_keys=True, end="\n")
    assert path.read_text() == json.dumps({"a": [1, 2], "b": 1}, indent=2, sort_keys=True) + "\n"
    atomicio.write_bytes(path, b"secret", mode=0o600)
    assert path.read_bytes() == b"secret"
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0  # created private, never widened
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    atomicio.save_npy(tmp_path / "a.npy", array)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy", allow_pickle=False), array)
    with atomicio.atomic_text(tmp_path / "rows.csv", newline="") as f:
        f.write("a,b\r\n")
    assert (tmp_path / "rows.csv").read_bytes() == b"a,b\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "f.json", "rows.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "CURRENT"
    atomicio.write_text(path, "old")

    def crash(tmp: Path) -> None:
        assert tmp.read_text() == "new" and tmp.parent == path.parent
        raise OSError("crashed before the rename")

    with pytest.raises(OSError, match="before the rename"):
        atomicio.write_text(path, "new", before_replace=crash)
    assert path.read_text() == "old"
    with pytest.raises(RuntimeError), atomicio.replacing(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the exporter failed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["CURRENT"]


def test_build_folder_replaces_a_folder_whole(tmp_path: Path) -> None:
    out = tmp_path / "store"
    with atomicio.build_folder(out, mode=0o755) as tmp:
        (tmp / "x").write_text("1")
    assert (out / "x").read_text() == "1" and stat.S_IMODE(out.stat().st_mode) == 0o755
    with atomicio.build_folder(out) as tmp:
        (tmp / "y").write_text("2")
    assert [p.name for p in out.iterdir()] == ["y"]
    assert [p.name for p in tmp_path.iterdir()] == ["store"]  # the old folder is gone too
