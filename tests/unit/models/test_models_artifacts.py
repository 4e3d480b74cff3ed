import json
from pathlib import Path

import pytest

from shoprec.errors import ArtifactError, IntegrityError
from shoprec.models import artifacts


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
