"""Signed and encrypted artifact folders (shoprec.security.crypto)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from shoprec import artifacts
from shoprec.errors import ArtifactError, IntegrityError
from shoprec.security import crypto


def _build(out: Path, payload: bytes = b"\x93NUMPY weights") -> Path:
    with artifacts.write_artifacts(out) as tmp:
        (tmp / "embeddings.npy").write_bytes(payload)
        (tmp / "catalog.jsonl").write_text('{"id": "p1"}\n')
        (tmp / "ranker.txt").write_text("tree\n")
        (tmp / "encoder").mkdir()
        (tmp / "encoder" / "model.onnx").write_bytes(b"onnx-bytes")
        (tmp / "encoder" / "tokenizer.json").write_text("{}")
        artifacts.write_manifest(tmp, model_id="m", config={"a": 1}, metrics={"n": 2})
    return out


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return _build(tmp_path / "artifacts")


@pytest.fixture
def signing_key(tmp_path: Path) -> tuple[Path, Path]:
    return crypto.generate_signing_key(tmp_path / "keys" / "release")


def _clock() -> float:
    return 1_700_000_000.0


# --- signing keys ---------------------------------------------------------------------------


def test_keygen_writes_private_0600_and_a_pub_file(signing_key: tuple[Path, Path]) -> None:
    private, public = signing_key
    assert public.name == "release.pub" and "pub" in public.name
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    priv = crypto.load_private_key(private)
    pub = crypto.load_public_key(public)
    assert crypto.key_id(priv.public_key()) == crypto.key_id(pub)
    assert len(crypto.key_id(pub)) == 16


def test_keygen_refuses_to_overwrite(signing_key: tuple[Path, Path]) -> None:
    private, _ = signing_key
    before = private.read_bytes()
    with pytest.raises(crypto.KeyFileError, match="refusing to overwrite"):
        crypto.generate_signing_key(private)
    assert private.read_bytes() == before
    crypto.generate_signing_key(private, overwrite=True)
    assert private.read_bytes() != before


def test_swapped_key_files_are_named(signing_key: tuple[Path, Path], tmp_path: Path) -> None:
    private, public = signing_key
    with pytest.raises(crypto.KeyFileError, match="public key; signing needs the private"):
        crypto.load_private_key(public)
    with pytest.raises(crypto.KeyFileError, match="private key; pass the public key"):
        crypto.load_public_key(private)
    with pytest.raises(crypto.KeyFileError, match="not found"):
        crypto.load_public_key(tmp_path / "nope.pub")


# --- sign and verify ------------------------------------------------------------------------


def test_sign_then_verify(folder: Path, signing_key: tuple[Path, Path]) -> None:
    private, public = signing_key
    record = crypto.sign_artifacts(folder, private, signer="ci", clock=_clock)
    on_disk = json.loads((folder / "manifest.sig").read_text())
    assert on_disk == record
    assert record["algorithm"] == "ed25519" and record["signer"] == "ci"
    assert record["signed_at"] == "2023-11-14T22:13:20Z"
    assert len(base64.b64decode(record["signature"])) == 64
    result = crypto.verify_artifacts(folder, [public])
    assert result["key_id"] == record["key_id"] and result["signer"] == "ci"
    assert result["manifest"]["model_id"] == "m"
    # a loaded key works as well as a path, and the signature does not upset artifacts.verify
    assert crypto.verify_artifacts(folder, [crypto.load_public_key(public)])["key_id"]
    artifacts.verify(folder)


def test_tampered_weight_file_is_named(folder: Path, signing_key: tuple[Path, Path]) -> None:
    private, public = signing_key
    crypto.sign_artifacts(folder, private)
    (folder / "encoder" / "model.onnx").write_bytes(b"evil-bytes")
    with pytest.raises(IntegrityError, match="encoder/model.onnx") as info:
        crypto.verify_artifacts(folder, [public])
    assert not isinstance(info.value, crypto.SignatureError)


def test_added_file_is_refused(folder: Path, signing_key: tuple[Path, Path]) -> None:
    private, public = signing_key
    crypto.sign_artifacts(folder, private)
    (folder / "backdoor.onnx").write_bytes(b"x")
    with pytest.raises(IntegrityError, match="backdoor.onnx"):
        crypto.verify_artifacts(folder, [public])


def test_tampered_manifest_is_a_bad_signature(folder: Path, signing_key: tuple[Path, Path]) -> None:
    private, public = signing_key
    crypto.sign_artifacts(folder, private)
    # An attacker swaps a weight file and fixes its checksum in the manifest.
    (folder / "embeddings.npy").write_bytes(b"evil")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["embeddings.npy"] = artifacts.sha256_file(folder / "embeddings.npy")
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    artifacts.verify(folder)  # checksums alone are fooled
    with pytest.raises(crypto.BadSignatureError, match="bad signature"):
        crypto.verify_artifacts(folder, [public])


def test_whitespace_change_to_manifest_is_a_bad_signature(folder: Path, signing_key: tuple[Path, Path]) -> None:
    private, public = signing_key
    crypto.sign_artifacts(folder, private)
    (folder / "manifest.json").write_bytes((folder / "manifest.json").read_bytes() + b"\n")
    with pytest.raises(crypto.BadSignatureError):
        crypto.verify_artifacts(folder, [public])


def test_unsigned_folder_is_refused_clearly(folder: Path, signing_key: tuple[Path, Path]) -> None:
    _, public = signing_key
    with pytest.raises(crypto.UnsignedError, match="unsigned: no manifest.sig"):
        crypto.verify_artifacts(folder, [public])
    result = crypto.verify_artifacts(folder, [public], require_signature=False)
    assert result["key_id"] is None and result["manifest"]["model_id"] == "m"


def test_untrusted_signer_is_refused_clearly(folder: Path, signing_key: tuple[Path, Path], tmp_path: Path) -> None:
    private, _ = signing_key
    _, other_public = crypto.generate_signing_key(tmp_path / "keys" / "other")
    record = crypto.sign_artifacts(folder, private, signer="mallory")
    with pytest.raises(crypto.UntrustedSignerError, match="untrusted signer") as info:
        crypto.verify_artifacts(folder, [other_public])
    assert record["key_id"] in info.value.message and "mallory" in info.value.message
    # Not even with require_signature=False: a present signature is checked.
    with pytest.raises(crypto.UntrustedSignerError):
        crypto.verify_artifacts(folder, [other_public], require_signature=False)


def test_forged_key_id_is_still_a_bad_signature(folder: Path, signing_key: tuple[Path, Path], tmp_path: Path) -> None:
    _, public = signing_key
    other_private, _ = crypto.generate_signing_key(tmp_path / "keys" / "other")
    crypto.sign_artifacts(folder, other_private)
    record = json.loads((folder / "manifest.sig").read_text())
    record["key_id"] = crypto.key_id(crypto.load_public_key(public))
    (folder / "manifest.sig").write_text(json.dumps(record))
    with pytest.raises(crypto.BadSignatureError):
        crypto.verify_artifacts(folder, [public])


def test_malformed_signature_file(folder: Path, signing_key: tuple[Path, Path]) -> None:
    _, public = signing_key
    (folder / "manifest.sig").write_text("{not json")
    with pytest.raises(crypto.SignatureError, match="malformed"):
        crypto.verify_artifacts(folder, [public])


def test_no_trusted_keys_is_a_config_error(folder: Path, signing_key: tuple[Path, Path]) -> None:
    crypto.sign_artifacts(folder, signing_key[0])
    with pytest.raises(crypto.KeyFileError, match="no trusted public keys"):
        crypto.verify_artifacts(folder, [])


def test_signing_refuses_a_folder_that_fails_its_checksums(folder: Path, signing_key: tuple[Path, Path]) -> None:
    (folder / "ranker.txt").write_text("changed")
    with pytest.raises(IntegrityError, match="ranker.txt"):
        crypto.sign_artifacts(folder, signing_key[0])
    assert not (folder / "manifest.sig").exists()


def test_errors_map_to_http_500() -> None:
    for cls in (crypto.UnsignedError, crypto.BadSignatureError, crypto.DecryptionError):
        assert issubclass(cls, IntegrityError) and cls.status_code == 500


# --- data keys ------------------------------------------------------------------------------

KEY = bytes(range(32))


@pytest.mark.parametrize(
    "value",
    [base64.b64encode(KEY).decode(), KEY.hex(), KEY.hex().upper(), " " + KEY.hex() + "\n"],
    ids=["base64", "hex", "HEX", "padded"],
)
def test_data_key_from_env(value: str) -> None:
    assert crypto.load_data_key(environ={"SHOPREC_DATA_KEY": value}) == KEY
    assert crypto.load_data_key(env_var="K", environ={"K": value}) == KEY


def test_data_key_from_file(tmp_path: Path) -> None:
    raw = tmp_path / "raw.key"
    raw.write_bytes(KEY)
    text = tmp_path / "text.key"
    text.write_text(base64.b64encode(KEY).decode() + "\n")
    assert crypto.load_data_key(key_file=raw, environ={}) == KEY
    assert crypto.load_data_key(key_file=text, environ={}) == KEY
    # the file wins over the environment
    other = base64.b64encode(bytes(32)).decode()
    assert crypto.load_data_key(key_file=raw, environ={"SHOPREC_DATA_KEY": other}) == KEY


def test_generated_data_key_is_0600_base64(tmp_path: Path) -> None:
    out = crypto.generate_data_key(tmp_path / "data.key")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = crypto.load_data_key(key_file=out, environ={})
    assert len(key) == 32 and base64.b64decode(out.read_text()) == key
    with pytest.raises(crypto.KeyFileError, match="refusing to overwrite"):
        crypto.generate_data_key(out)


@pytest.mark.parametrize(
    "value",
    [base64.b64encode(bytes(16)).decode(), bytes(31).hex(), bytes(33).hex(), "not a key!"],
    ids=["16-bytes", "31-bytes", "33-bytes", "garbage"],
)
def test_wrong_length_or_garbage_key_is_refused(value: str) -> None:
    with pytest.raises(crypto.KeyFileError, match="AES-256 needs exactly 32|neither base64"):
        crypto.load_data_key(environ={"SHOPREC_DATA_KEY": value})


def test_missing_data_key_says_how_to_set_it(tmp_path: Path) -> None:
    with pytest.raises(crypto.KeyFileError, match=r"no data key: set \$SHOPREC_DATA_KEY"):
        crypto.load_data_key(environ={})
    with pytest.raises(crypto.KeyFileError, match="not found"):
        crypto.load_data_key(key_file=tmp_path / "missing.key")


# --- encryption -----------------------------------------------------------------------------


def test_encrypt_decrypt_round_trip() -> None:
    blob = crypto.encrypt_bytes(KEY, b"secret weights", aad=b"embeddings.npy")
    assert blob.startswith(b"SREC1") and len(blob) == 5 + 12 + len(b"secret weights") + 16
    assert b"secret weights" not in blob
    assert crypto.decrypt_bytes(KEY, blob, aad=b"embeddings.npy") == b"secret weights"
    # a fresh nonce each time
    assert crypto.encrypt_bytes(KEY, b"x", aad=b"a") != crypto.encrypt_bytes(KEY, b"x", aad=b"a")


def test_wrong_key_is_a_clear_decryption_error() -> None:
    blob = crypto.encrypt_bytes(KEY, b"secret", aad=b"embeddings.npy")
    with pytest.raises(crypto.DecryptionError, match="wrong key or corrupted file: embeddings.npy"):
        crypto.decrypt_bytes(bytes(32), blob, aad=b"embeddings.npy")


def test_tampering_renaming_or_truncation_does_not_decrypt() -> None:
    blob = crypto.encrypt_bytes(KEY, b"secret", aad=b"a.npy")
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(crypto.DecryptionError, match="wrong key or corrupted file: a.npy"):
        crypto.decrypt_bytes(KEY, flipped, aad=b"a.npy")
    with pytest.raises(crypto.DecryptionError, match="wrong key or corrupted file: b.npy"):
        crypto.decrypt_bytes(KEY, blob, aad=b"b.npy")
    with pytest.raises(crypto.DecryptionError, match="truncated"):
        crypto.decrypt_bytes(KEY, blob[:20], aad=b"a.npy")
    with pytest.raises(crypto.DecryptionError, match="not an encrypted shoprec file"):
        crypto.decrypt_bytes(KEY, b"plain text", aad=b"a.npy")


def test_encrypt_file_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "vectors.faiss"
    src.write_bytes(b"index bytes")
    dst = crypto.encrypt_file(KEY, src, tmp_path / "vectors.faiss.enc")
    assert crypto.is_encrypted(dst) and not crypto.is_encrypted(src)
    assert not crypto.is_encrypted(tmp_path / "absent")
    assert crypto.decrypt_file_to_memory(KEY, dst) == b"index bytes"
    with pytest.raises(crypto.DecryptionError, match="wrong key or corrupted file: vectors.faiss"):
        crypto.decrypt_file_to_memory(bytes(32), dst)


def test_encrypt_artifacts_keeps_checksums_valid_and_removes_plaintext(folder: Path) -> None:
    plain = {
        rel: (folder / rel).read_bytes()
        for rel in ("embeddings.npy", "catalog.jsonl", "ranker.txt", "encoder/model.onnx")
    }
    manifest = crypto.encrypt_artifacts(folder, KEY)
    for rel in plain:
        assert not (folder / rel).exists()
        assert crypto.is_encrypted(folder / f"{rel}.enc")
    assert (folder / "encoder" / "tokenizer.json").read_text() == "{}"  # not matched
    assert manifest["encryption"] == {
        "algorithm": "AES-256-GCM",
        "format": "SREC1",
        "key_id": crypto.data_key_id(KEY),
        "files": sorted(f"{rel}.enc" for rel in plain),
    }
    assert artifacts.verify(folder) == manifest
    assert set(manifest["files"]) == {f"{rel}.enc" for rel in plain} | {"encoder/tokenizer.json"}
    for rel, data in plain.items():
        assert crypto.read_artifact_bytes(folder, rel, KEY) == data
    assert crypto.read_artifact_bytes(folder, "encoder/tokenizer.json", None) == b"{}"
    with pytest.raises(crypto.KeyFileError, match="is encrypted; a data key is needed"):
        crypto.read_artifact_bytes(folder, "embeddings.npy", None)
    # a file moved to another name does not decrypt under that name
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_file_to_memory(KEY, folder / "encoder" / "model.onnx.enc")
    moved = folder / "encoder" / "model.onnx.enc"
    data = crypto.decrypt_file_to_memory(KEY, moved, relative_name="encoder/model.onnx")
    assert data == plain["encoder/model.onnx"]
    assert not [p for p in folder.rglob(".*tmp*")]


def test_encrypt_then_sign_then_verify(folder: Path, signing_key: tuple[Path, Path]) -> None:
    private, public = signing_key
    crypto.encrypt_artifacts(folder, KEY)
    crypto.sign_artifacts(folder, private)
    assert crypto.verify_artifacts(folder, [public])["manifest"]["encryption"]["files"]
    # signing first and encrypting after would void the signature: refused
    with pytest.raises(ArtifactError, match="encrypt first, sign after"):
        crypto.encrypt_artifacts(folder, KEY)


def test_encrypt_artifacts_again_is_a_no_op_and_a_new_key_is_refused(folder: Path) -> None:
    first = crypto.encrypt_artifacts(folder, KEY)
    assert crypto.encrypt_artifacts(folder, KEY)["files"] == first["files"]
    with pytest.raises(ArtifactError, match="already encrypted with data key"):
        crypto.encrypt_artifacts(folder, bytes(32))


def test_encrypt_artifacts_checks_checksums_first(folder: Path) -> None:
    (folder / "embeddings.npy").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="embeddings.npy"):
        crypto.encrypt_artifacts(folder, KEY)
    assert not list(folder.rglob("*.enc"))


def test_encrypt_with_a_short_key_is_refused() -> None:
    with pytest.raises(crypto.KeyFileError, match="exactly 32"):
        crypto.encrypt_bytes(b"short", b"x", aad=b"a")
