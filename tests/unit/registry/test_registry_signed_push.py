"""Pushing signed artifacts: a trusted signature is required when trusted keys are given."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoprec import artifacts
from shoprec.models.bundle import Trust
from shoprec.registry.gates import verifier
from shoprec.registry.store import Registry
from shoprec.security.crypto import (
    BadSignatureError,
    UnsignedError,
    UntrustedSignerError,
    generate_signing_key,
    sign_artifacts,
)


def make_artifacts(folder: Path) -> Path:
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00\x01" * 64)
    artifacts.write_manifest(folder, model_id="m", config={}, metrics={})
    return folder


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    private, public = generate_signing_key(tmp_path / "keys" / "signer")
    _, other_public = generate_signing_key(tmp_path / "keys" / "other")
    return private, public, other_public


def test_a_trusted_signature_is_pushed_with_its_signature_file(tmp_path: Path, keys: tuple[Path, Path, Path]) -> None:
    private, public, _ = keys
    src = make_artifacts(tmp_path / "a")
    sign_artifacts(src, private, signer="release")
    reg = Registry(tmp_path / "reg")
    rec = reg.push(src, version_id="v1", verify=verifier(Trust(True, (public,))))
    assert rec["signed"] is True
    assert (reg.artifacts_path("v1") / "manifest.sig").read_bytes() == (src / "manifest.sig").read_bytes()


def test_unsigned_untrusted_and_tampered_pushes_are_refused(tmp_path: Path, keys: tuple[Path, Path, Path]) -> None:
    private, public, other_public = keys
    reg = Registry(tmp_path / "reg")
    unsigned = make_artifacts(tmp_path / "unsigned")
    with pytest.raises(UnsignedError):
        reg.push(unsigned, version_id="v1", verify=verifier(Trust(True, (public,))))
    signed = make_artifacts(tmp_path / "signed")
    sign_artifacts(signed, private)
    with pytest.raises(UntrustedSignerError):
        reg.push(signed, version_id="v1", verify=verifier(Trust(True, (other_public,))))
    manifest = signed / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"m"', '"evil"'))
    with pytest.raises(BadSignatureError):
        reg.push(signed, version_id="v1", verify=verifier(Trust(True, (public,))))
    assert reg.versions() == []
    # without trusted keys only checksums are checked: the unsigned folder is accepted
    assert reg.push(unsigned, version_id="v1", verify=verifier(None))["signed"] is False
