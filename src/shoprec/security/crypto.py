"""Signed and encrypted artifacts. The only module that imports ``cryptography``.

Signatures (Ed25519)
    :func:`sign_artifacts` first checks every checksum against ``manifest.json``, then signs
    the exact bytes of ``manifest.json`` and writes ``manifest.sig`` beside it::

        {"algorithm": "ed25519", "key_id": "<16 hex>", "signer": "<name or null>",
         "signed_at": "2025-01-01T00:00:00Z", "manifest_sha256": "<64 hex>",
         "signature": "<base64 of 64 bytes>"}

    Because the manifest holds the SHA-256 of every other file, one signature covers the
    whole folder. Only the manifest bytes are signed: ``signer`` and ``signed_at`` are
    informative and not authenticated. The signature can be checked without shoprec::

        python -c "import json,base64,sys; sys.stdout.buffer.write(base64.b64decode(
            json.load(open('manifest.sig'))['signature']))" > sig.bin
        openssl pkeyutl -verify -pubin -inkey key.pub -rawin -in manifest.json -sigfile sig.bin

    :func:`verify_artifacts` refuses, each with its own error: an unsigned folder
    (:class:`UnsignedError`), a signature by a key that is not trusted
    (:class:`UntrustedSignerError`), a manifest that does not match its signature
    (:class:`BadSignatureError`) and a file that does not match the manifest
    (:class:`~shoprec.errors.IntegrityError` naming the file).

Encryption at rest (AES-256-GCM)
    An encrypted file is ``b"SREC1"`` + a 12-byte random nonce + the ciphertext with its
    16-byte tag. The associated data is ``b"SREC1"`` + the file's name relative to its
    artifacts folder (``lexical/x.npy``), so a file renamed or swapped with another one does
    not decrypt. One-shot AES-GCM limits a file to 2 GiB - 1 byte.

    :func:`encrypt_artifacts` replaces each matching ``name`` by ``name.enc`` and rewrites the
    manifest: the checksum table then lists the encrypted files, and
    ``"encryption": {"algorithm": "AES-256-GCM", "format": "SREC1", "key_id": ..., "files":
    [...]}`` records which files are encrypted and a fingerprint of the data key.
    **Encrypt first, sign after**: encryption rewrites the manifest, which would void a
    signature, so :func:`encrypt_artifacts` refuses a folder that is already signed. The
    order is ``shoprec build`` → encrypt → ``shoprec sign``.

Key files
    Signing keys: the private key is PKCS8 PEM, unencrypted, mode 0600; the public key is
    SubjectPublicKeyInfo PEM in ``<private>.pub``. A data key is 32 random bytes, held in
    a file (raw bytes, or base64 or hex text) or in ``$SHOPREC_DATA_KEY`` (base64 or hex).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Final

from shoprec import artifacts
from shoprec.atomicio import fsync_dir, write_bytes
from shoprec.errors import ArtifactError, ConfigError, DependencyError, IntegrityError

try:
    from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise DependencyError(
        "signing and encrypting artifacts needs the 'cryptography' package: pip install 'cryptography>=42'"
    ) from exc

SIGNATURE: Final = "manifest.sig"
SIGNATURE_ALGORITHM: Final = "ed25519"
ENCRYPTION_ALGORITHM: Final = "AES-256-GCM"
MAGIC: Final = b"SREC1"
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
DATA_KEY_BYTES: Final = 32
ENCRYPTED_SUFFIX: Final = ".enc"
# cryptography's one-shot AEAD takes at most 2**31 - 1 bytes.
MAX_PLAINTEXT_BYTES: Final = 2**31 - 1 - TAG_BYTES
DEFAULT_PATTERNS: Final = ("*.npy", "*.onnx", "*.faiss", "*.jsonl", "ranker.txt")
DATA_KEY_ENV: Final = "SHOPREC_DATA_KEY"

TrustedKey = Path | str | Ed25519PublicKey
"""A trusted public key: a path to a PEM ``.pub`` file, or a loaded key."""


class KeyFileError(ConfigError):
    """A key file or key variable is missing, unreadable, of the wrong kind or length."""

    code = "key_error"


class SignatureError(IntegrityError):
    """The signature over an artifacts folder is missing, untrusted, malformed or wrong."""

    code = "signature_error"


class UnsignedError(SignatureError):
    """The folder has no ``manifest.sig`` but a signature is required."""

    code = "unsigned"


class UntrustedSignerError(SignatureError):
    """The folder is signed by a key that is not among the trusted keys."""

    code = "untrusted_signer"


class BadSignatureError(SignatureError):
    """``manifest.json`` does not match its signature: the manifest or signature was altered."""

    code = "bad_signature"


class DecryptionError(IntegrityError):
    """An encrypted file does not decrypt: the wrong key, or the file was altered."""

    code = "decryption_error"


# --- files ----------------------------------------------------------------------------------


def _read_key_bytes(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _refuse_overwrite(*paths: Path) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise KeyFileError(
            f"refusing to overwrite an existing key: {', '.join(existing)} (move it away first, or pass overwrite=True)"
        )


def _iso_utc(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# --- signing keys ---------------------------------------------------------------------------


def public_key_path(private_key_path: Path) -> Path:
    """Where the public half of ``private_key_path`` lives: the same name plus ``.pub``."""
    private_key_path = Path(private_key_path)
    return private_key_path.with_name(private_key_path.name + ".pub")


def generate_signing_key(out: Path, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Create an Ed25519 key pair: the private key at ``out`` (PKCS8 PEM, unencrypted, 0600)
    and the public key at ``out`` + ``.pub``. Returns ``(private_path, public_path)``.

    Refuses to overwrite an existing key unless ``overwrite``: losing a signing key is
    not something to do by accident.
    """
    out = Path(out)
    if out.name.endswith(".pub"):
        raise KeyFileError(f"{out}: the private key's name must not end in .pub")
    pub = public_key_path(out)
    if not overwrite:
        _refuse_overwrite(out, pub)
    out.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    write_bytes(out, private_pem, mode=0o600)
    write_bytes(pub, public_pem, mode=0o644)
    return out, pub


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an unencrypted PKCS8 PEM Ed25519 private key."""
    data = _read_key_bytes(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(f"{path}: the private key is password-protected; shoprec reads unencrypted keys") from None
    except (ValueError, UnsupportedAlgorithm):
        if b"PUBLIC KEY" in data:
            raise KeyFileError(
                f"{path}: this is a public key; signing needs the private key (the file without .pub)"
            ) from None
        raise KeyFileError(f"{path}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a PEM (SubjectPublicKeyInfo) Ed25519 public key, e.g. a ``.pub`` file."""
    data = _read_key_bytes(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        if b"PRIVATE KEY" in data:
            raise KeyFileError(
                f"{path}: this is a private key; pass the public key (the .pub file) "
                "and keep the private key where it is"
            ) from None
        raise KeyFileError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: a {type(key).__name__}, not an Ed25519 key")
    return key


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _as_public_key(key: TrustedKey) -> Ed25519PublicKey:
    if isinstance(key, Ed25519PublicKey):
        return key
    return load_public_key(Path(key))


# --- signatures -----------------------------------------------------------------------------


def _read_manifest_bytes(folder: Path) -> bytes:
    artifacts.read_manifest(folder)  # the standard errors for a missing or foreign manifest
    return (folder / artifacts.MANIFEST).read_bytes()


def sign_artifacts(
    folder: Path,
    private_key_path: Path,
    *,
    signer: str | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Check every checksum, then sign the bytes of ``manifest.json`` into ``manifest.sig``.

    Returns the signature record written. Sign after :func:`encrypt_artifacts`, never before.
    """
    folder = Path(folder)
    key = load_private_key(private_key_path)
    manifest_bytes = _read_manifest_bytes(folder)
    manifest = artifacts.verify(folder)
    if manifest != json.loads(manifest_bytes):
        raise ArtifactError(f"{folder}: manifest.json changed while it was being signed")
    record: dict[str, Any] = {
        "algorithm": SIGNATURE_ALGORITHM,
        "key_id": key_id(key.public_key()),
        "signer": signer,
        "signed_at": _iso_utc(clock()),
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "signature": base64.b64encode(key.sign(manifest_bytes)).decode("ascii"),
    }
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    write_bytes(folder / SIGNATURE, text.encode("utf-8"))
    return record


def read_signature(folder: Path) -> dict[str, Any]:
    """Read and validate the shape of ``manifest.sig``; raise :class:`UnsignedError` if absent."""
    path = Path(folder) / SIGNATURE
    if not path.is_file():
        raise UnsignedError(f"{folder}: unsigned: no {SIGNATURE} (sign it with `shoprec sign {folder} --key K`)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureError(f"{path}: malformed signature file: {exc}") from exc
    if not isinstance(record, dict):
        raise SignatureError(f"{path}: malformed signature file: not a JSON object")
    if record.get("algorithm") != SIGNATURE_ALGORITHM:
        raise SignatureError(
            f"{path}: signature algorithm {record.get('algorithm')!r}, shoprec checks {SIGNATURE_ALGORITHM!r}"
        )
    for field in ("key_id", "signature", "manifest_sha256"):
        if not isinstance(record.get(field), str):
            raise SignatureError(f"{path}: malformed signature file: no {field!r}")
    try:
        signature = base64.b64decode(record["signature"], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{path}: malformed signature file: signature is not base64") from None
    if len(signature) != 64:
        raise SignatureError(f"{path}: malformed signature file: an Ed25519 signature is 64 bytes")
    return record


def verify_artifacts(
    folder: Path,
    trusted_keys: Sequence[TrustedKey],
    *,
    require_signature: bool = True,
) -> dict[str, Any]:
    """Check the signature over ``manifest.json`` against ``trusted_keys``, then every checksum.

    Returns ``{"manifest": ..., "key_id": ..., "signer": ...}``. With
    ``require_signature=False`` an unsigned folder (or an empty ``trusted_keys``) gets only
    the checksum check and ``key_id`` and ``signer`` are None; a signature that is present
    is still checked when trusted keys are given.
    """
    folder = Path(folder)
    signed = (folder / SIGNATURE).is_file()
    if not require_signature and (not signed or not trusted_keys):
        return {"manifest": artifacts.verify(folder), "key_id": None, "signer": None}
    record = read_signature(folder)
    if not trusted_keys:
        raise KeyFileError("no trusted public keys given: cannot check the signature")
    trusted = {key_id(k): k for k in map(_as_public_key, trusted_keys)}
    kid: str = record["key_id"]
    signer = record.get("signer")
    public = trusted.get(kid)
    if public is None:
        raise UntrustedSignerError(
            f"{folder}: untrusted signer: signed by key {kid} (signer {signer!r}), which is not "
            f"among the trusted keys ({', '.join(sorted(trusted))})"
        )
    manifest_bytes = _read_manifest_bytes(folder)
    bad = (
        f"{folder}: bad signature: manifest.json does not match {SIGNATURE} (key {kid}); "
        "the manifest or its signature was altered after signing"
    )
    try:
        public.verify(base64.b64decode(record["signature"]), manifest_bytes)
    except InvalidSignature:
        raise BadSignatureError(bad) from None
    if record["manifest_sha256"] != hashlib.sha256(manifest_bytes).hexdigest():
        raise BadSignatureError(bad)
    manifest = artifacts.verify(folder)
    if manifest != json.loads(manifest_bytes):
        raise BadSignatureError(f"{folder}: manifest.json changed while it was being verified")
    return {"manifest": manifest, "key_id": kid, "signer": signer}


# --- data keys ------------------------------------------------------------------------------

_HEX = re.compile(r"[0-9a-fA-F]+")


def _decode_key_text(text: str, source: str) -> bytes:
    text = text.strip()
    if not text:
        raise KeyFileError(f"{source}: the data key is empty")
    if len(text) % 2 == 0 and _HEX.fullmatch(text):
        key = bytes.fromhex(text)
    else:
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            try:
                key = base64.urlsafe_b64decode(text)
            except (binascii.Error, ValueError):
                raise KeyFileError(
                    f"{source}: the data key is neither base64 nor hex (it must encode {DATA_KEY_BYTES} random bytes)"
                ) from None
    return _check_data_key(key, source)


def _check_data_key(key: bytes, source: str = "data key") -> bytes:
    if not isinstance(key, bytes | bytearray):
        raise KeyFileError(f"{source}: a data key is bytes, got {type(key).__name__}")
    if len(key) != DATA_KEY_BYTES:
        raise KeyFileError(
            f"{source}: the data key is {len(key)} bytes; AES-256 needs exactly "
            f"{DATA_KEY_BYTES} (make one with `shoprec keys new-data-key`)"
        )
    return bytes(key)


def load_data_key(
    *,
    key_file: Path | None = None,
    env_var: str = DATA_KEY_ENV,
    environ: Mapping[str, str] | None = None,
) -> bytes:
    """The 32-byte data key, from ``key_file`` if given, else from ``environ[env_var]``.

    A key file holds the raw 32 bytes, or their base64 or hex text; the variable holds base64
    or hex. ``environ`` defaults to ``os.environ``, read at call time.
    """
    if key_file is not None:
        data = _read_key_bytes(Path(key_file), "data key file")
        if len(data) == DATA_KEY_BYTES:
            return data
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise KeyFileError(
                f"{key_file}: the data key is {len(data)} raw bytes; AES-256 needs exactly "
                f"{DATA_KEY_BYTES}, or their base64 or hex text"
            ) from None
        return _decode_key_text(text, str(key_file))
    env = os.environ if environ is None else environ
    value = env.get(env_var)
    if not value:
        raise KeyFileError(
            f"no data key: set ${env_var} to the base64 or hex of {DATA_KEY_BYTES} random bytes, "
            "or pass a key file (make one with `shoprec keys new-data-key`)"
        )
    return _decode_key_text(value, f"${env_var}")


def generate_data_key(out: Path, *, overwrite: bool = False) -> Path:
    """Write a new random 32-byte data key to ``out`` as base64 text, mode 0600."""
    out = Path(out)
    if not overwrite:
        _refuse_overwrite(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = base64.b64encode(secrets.token_bytes(DATA_KEY_BYTES)).decode("ascii") + "\n"
    write_bytes(out, text.encode("ascii"), mode=0o600)
    return out


def data_key_id(key: bytes) -> str:
    """A fingerprint of a data key (16 hex), recorded in the manifest to name the key needed."""
    key = _check_data_key(key)
    return hashlib.sha256(b"shoprec data key id\x00" + key).hexdigest()[:16]


# --- encryption -----------------------------------------------------------------------------


def encrypt_bytes(key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    """``b"SREC1"`` + 12-byte random nonce + AES-256-GCM(plaintext) with its tag."""
    key = _check_data_key(key)
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ArtifactError(
            f"{aad.decode('utf-8', 'replace')}: {len(plaintext)} bytes is over the "
            f"{MAX_PLAINTEXT_BYTES} bytes one encrypted file can hold"
        )
    nonce = secrets.token_bytes(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, MAGIC + aad)


def decrypt_bytes(key: bytes, blob: bytes, *, aad: bytes) -> bytes:
    """Undo :func:`encrypt_bytes`; :class:`DecryptionError` on the wrong key or any change."""
    key = _check_data_key(key)
    name = aad.decode("utf-8", "replace")
    header = len(MAGIC) + NONCE_BYTES
    if not blob.startswith(MAGIC):
        raise DecryptionError(f"not an encrypted shoprec file (no {MAGIC.decode()} header): {name}")
    if len(blob) < header + TAG_BYTES:
        raise DecryptionError(f"wrong key or corrupted file: {name} (truncated)")
    nonce = blob[len(MAGIC) : header]
    try:
        return AESGCM(key).decrypt(nonce, blob[header:], MAGIC + aad)
    except InvalidTag:
        raise DecryptionError(f"wrong key or corrupted file: {name}") from None


def _plain_name(path: Path) -> str:
    name = Path(path).name
    return name[: -len(ENCRYPTED_SUFFIX)] if name.endswith(ENCRYPTED_SUFFIX) else name


def encrypt_file(key: bytes, src: Path, dst: Path, *, relative_name: str | None = None) -> Path:
    """Encrypt ``src`` into ``dst`` atomically; ``src`` is left in place.

    The associated data is ``relative_name``: the plaintext file's name relative to its
    artifacts folder. It defaults to ``dst``'s name without ``.enc``.
    """
    src, dst = Path(src), Path(dst)
    aad = (relative_name or _plain_name(dst)).encode("utf-8")
    blob = encrypt_bytes(key, src.read_bytes(), aad=aad)
    write_bytes(dst, blob, mode=src.stat().st_mode & 0o777)
    return dst


def decrypt_file_to_memory(key: bytes, path: Path, *, relative_name: str | None = None) -> bytes:
    """Decrypt ``path`` into memory; never writes plaintext to disk.

    ``relative_name`` must be the one given at encryption (default: the name without ``.enc``).
    """
    path = Path(path)
    name = relative_name or _plain_name(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"encrypted file not found: {path}") from None
    return decrypt_bytes(key, blob, aad=name.encode("utf-8"))


def is_encrypted(path: Path) -> bool:
    """Whether ``path`` is a file that starts with the ``SREC1`` header."""
    try:
        with Path(path).open("rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except (FileNotFoundError, IsADirectoryError):
        return False


def read_artifact_bytes(folder: Path, relative: str, key: bytes | None) -> bytes:
    """The plaintext of artifact ``relative``, whether stored plain or as ``relative.enc``.

    For loaders: ``np.load(io.BytesIO(read_artifact_bytes(folder, "embeddings.npy", key)))``.
    Does not check checksums; verify the folder first.
    """
    folder = Path(folder)
    encrypted = artifacts.safe_path(folder, relative + ENCRYPTED_SUFFIX)
    if encrypted.is_file():
        if key is None:
            raise KeyFileError(
                f"{folder}: {relative} is encrypted; a data key is needed (set ${DATA_KEY_ENV} or pass a key file)"
            )
        return decrypt_file_to_memory(key, encrypted, relative_name=relative)
    plain = artifacts.safe_path(folder, relative)
    if not plain.is_file():
        raise ArtifactError(f"{folder}: no {relative} (nor {relative}{ENCRYPTED_SUFFIX})")
    return plain.read_bytes()


def encrypt_artifacts(folder: Path, key: bytes, *, patterns: Sequence[str] = DEFAULT_PATTERNS) -> dict[str, Any]:
    """Encrypt the files matching ``patterns`` in place (``name`` → ``name.enc``).

    Checks every checksum first, writes each ``.enc`` atomically, then rewrites the manifest
    (checksums of the encrypted files, plus its ``"encryption"`` record) atomically, and only
    then removes the plaintext files. A pattern matches the end of the relative path
    (``*.npy`` matches ``lexical/x.npy``). Returns the new manifest.

    Refuses a signed folder: sign after encrypting, since encryption rewrites the manifest.
    """
    folder = Path(folder)
    key = _check_data_key(key)
    if (folder / SIGNATURE).exists():
        raise ArtifactError(
            f"{folder}: already signed; encrypting rewrites the manifest and would void the "
            f"signature. Remove {SIGNATURE}, encrypt, then sign again (encrypt first, sign after)"
        )
    manifest = artifacts.verify(folder)
    files: dict[str, str] = dict(manifest["files"])
    previous = manifest.get("encryption") or {}
    kid = data_key_id(key)
    if previous and previous.get("key_id") != kid:
        raise ArtifactError(
            f"{folder}: already encrypted with data key {previous.get('key_id')}, "
            f"not with this one ({kid}); one folder uses one key"
        )
    targets = sorted(
        rel
        for rel in files
        if not rel.endswith(ENCRYPTED_SUFFIX) and any(PurePosixPath(rel).match(p) for p in patterns)
    )
    clash = [rel for rel in targets if rel + ENCRYPTED_SUFFIX in files]
    if clash:
        raise ArtifactError(f"{folder}: both plain and encrypted copies of {', '.join(clash)}")
    written: list[Path] = []
    try:
        for rel in targets:
            src = artifacts.safe_path(folder, rel)
            dst = encrypt_file(key, src, src.with_name(src.name + ENCRYPTED_SUFFIX), relative_name=rel)
            written.append(dst)
            del files[rel]
            files[rel + ENCRYPTED_SUFFIX] = artifacts.sha256_file(dst)
        encrypted = sorted({*previous.get("files", []), *(r + ENCRYPTED_SUFFIX for r in targets)})
        manifest["files"] = dict(sorted(files.items()))
        manifest["encryption"] = {
            "algorithm": ENCRYPTION_ALGORITHM,
            "format": MAGIC.decode("ascii"),
            "key_id": kid,
            "files": encrypted,
        }
        artifacts.save_manifest(folder, manifest)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    for rel in targets:
        artifacts.safe_path(folder, rel).unlink()
    fsync_dir(folder)
    return manifest
