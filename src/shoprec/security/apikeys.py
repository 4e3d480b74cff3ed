"""API keys with roles, stored only as salted hashes.

A key is shown once, at creation, as ``sr_<key_id>_<secret>``: ``key_id`` is 16 hex digits
(not secret: it names the key in lists and logs), ``secret`` is 32 random bytes in URL-safe
base64. The store keeps, per key, a random 16-byte salt and PBKDF2-HMAC-SHA256(secret, salt);
the secret itself is never written anywhere. Lookup is by ``key_id`` and the comparison is
:func:`hmac.compare_digest` (constant time).

Roles: ``search`` (read endpoints), ``events`` (post events), ``metrics`` (scrape
``/metrics``), ``admin`` (registry, reload, keys; admin implies the other three). See
:meth:`ApiKey.allows` and :func:`require`.

The store is one JSON file, written atomically (temporary file + rename, mode 0600) under an
exclusive ``flock`` on ``<store>.lock``, so the CLI and running servers may share it; a
:class:`KeyStore` notices when another process changed the file and re-reads it::

    {"version": 1,
     "keys": {"<key_id>": {"name": "...", "roles": ["search"], "rate_limit_per_s": 20.0,
                           "created_at": 1700000000.0, "revoked_at": null,
                           "kdf": "pbkdf2_sha256", "iterations": 10000,
                           "salt": "<base64>", "hash": "<base64>"}}}

Why only 10,000 PBKDF2 iterations by default: the secrets are 256 random bits, so stretching
adds nothing against guessing, while every first request with a key pays for it. After one
successful check a process remembers SHA-256(secret) for that key, so later requests (and
wrong secrets for that key) cost one SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import fcntl
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

from shoprec.atomicio import write_json
from shoprec.errors import ConfigError, NotFoundError, RequestError

Role = Literal["search", "events", "metrics", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
KEY_PREFIX: Final = "sr_"
STORE_VERSION: Final = 1
KDF: Final = "pbkdf2_sha256"
DEFAULT_ITERATIONS: Final = 10_000
SALT_BYTES: Final = 16
SECRET_BYTES: Final = 32
MAX_NAME_CHARS: Final = 200

_KEY_ID = re.compile(r"[0-9a-f]{16}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")


class KeyStoreError(ConfigError):
    """The key store file is unreadable or malformed."""

    code = "key_store_error"


class AuthenticationError(RequestError):
    """No API key, or one that is unknown, wrong or revoked."""

    status_code = 401
    code = "unauthorized"


class PermissionDeniedError(RequestError):
    """A valid API key without the role the endpoint needs."""

    status_code = 403
    code = "forbidden"


@dataclass(frozen=True)
class ApiKey:
    """An API key as the store knows it: everything but the secret."""

    key_id: str
    name: str
    roles: frozenset[Role]
    rate_limit_per_s: float | None
    created_at: float
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, role: Role) -> bool:
        """Whether this key may act as ``role``; ``admin`` implies every role."""
        return "admin" in self.roles or role in self.roles

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for listings (holds no secret)."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "roles": sorted(self.roles),
            "rate_limit_per_s": self.rate_limit_per_s,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def require(key: ApiKey | None, role: Role) -> ApiKey:
    """``key`` if it may act as ``role``; else 401 (no valid key) or 403 (missing role)."""
    if key is None:
        raise AuthenticationError("a valid API key is required")
    if not key.allows(role):
        raise PermissionDeniedError(f"API key {key.key_id} lacks the {role!r} role")
    return key


def parse_key(presented: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` from ``sr_<key_id>_<secret>``; None if it is not of that shape."""
    if not isinstance(presented, str) or not presented.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = presented[len(KEY_PREFIX) :].partition("_")
    if not sep or not _KEY_ID.fullmatch(key_id) or not _SECRET.fullmatch(secret):
        return None
    return key_id, secret


def _validate_roles(roles: Iterable[str]) -> frozenset[Role]:
    if isinstance(roles, str):
        roles = [roles]
    wanted = frozenset(roles)
    unknown = sorted(wanted - set(ROLES))
    if unknown:
        raise RequestError(f"unknown roles {unknown}; roles are {list(ROLES)}")
    if not wanted:
        raise RequestError(f"an API key needs at least one role of {list(ROLES)}")
    return cast(frozenset[Role], wanted)


def _validate_rate(rate_limit_per_s: float | None) -> float | None:
    if rate_limit_per_s is None:
        return None
    rate = float(rate_limit_per_s)
    if not math.isfinite(rate) or rate <= 0:
        raise RequestError(f"rate_limit_per_s must be a positive number, got {rate_limit_per_s!r}")
    return rate


def _hash_secret(secret: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, iterations)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@dataclass(frozen=True)
class _Record:
    key: ApiKey
    iterations: int
    salt: bytes
    digest: bytes

    def to_json(self) -> dict[str, Any]:
        d = self.key.to_dict()
        del d["key_id"]
        d.update(kdf=KDF, iterations=self.iterations, salt=_b64(self.salt), hash=_b64(self.digest))
        return d

    @classmethod
    def from_json(cls, key_id: str, d: Any) -> _Record:
        if not isinstance(d, dict):
            raise ValueError("not an object")
        if d.get("kdf") != KDF:
            raise ValueError(f"unknown kdf {d.get('kdf')!r}")
        revoked_at = d.get("revoked_at")
        rate = d.get("rate_limit_per_s")
        key = ApiKey(
            key_id=key_id,
            name=str(d["name"]),
            roles=_validate_roles(d["roles"]),
            rate_limit_per_s=None if rate is None else float(rate),
            created_at=float(d["created_at"]),
            revoked_at=None if revoked_at is None else float(revoked_at),
        )
        return cls(key, int(d["iterations"]), _unb64(d["salt"]), _unb64(d["hash"]))


class KeyStore:
    """API keys persisted in one JSON file; see the module docstring for the format.

    ``clock`` returns the current time in seconds (``time.time`` in production, a fake in
    tests). Thread-safe; several processes may share the file.
    """

    def __init__(
        self,
        path: Path,
        clock: Callable[[], float],
        *,
        iterations: int = DEFAULT_ITERATIONS,
    ) -> None:
        if iterations < 1:
            raise ConfigError(f"iterations must be positive, got {iterations}")
        self.path = Path(path)
        self.clock = clock
        self.iterations = iterations
        self._lock = threading.RLock()
        self._records: dict[str, _Record] = {}
        self._stamp: tuple[int, int, int] | None = None
        # key_id -> SHA-256(secret) after one successful PBKDF2 check in this process.
        self._verified: dict[str, bytes] = {}
        with self._lock:
            self._refresh()

    # --- persistence ------------------------------------------------------------------------

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _refresh(self) -> None:
        """Re-read the file if it changed since we last read or wrote it."""
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._records = self._read() if stamp is not None else {}
        self._stamp = stamp
        self._verified = {
            k: v for k, v in self._verified.items() if k in self._records and not self._records[k].key.revoked
        }

    def _read(self) -> dict[str, _Record]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"{self.path}: unreadable key store: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
            raise KeyStoreError(f"{self.path}: malformed key store (no 'keys' table)")
        if data.get("version") != STORE_VERSION:
            raise KeyStoreError(
                f"{self.path}: key store version {data.get('version')!r}, this shoprec reads {STORE_VERSION}"
            )
        records: dict[str, _Record] = {}
        for key_id, d in data["keys"].items():
            try:
                records[key_id] = _Record.from_json(key_id, d)
            except (KeyError, TypeError, ValueError, binascii.Error, RequestError) as exc:
                raise KeyStoreError(f"{self.path}: malformed entry for key {key_id}: {exc}") from exc
        return records

    def _write(self) -> None:
        data = {
            "version": STORE_VERSION,
            "keys": {k: r.to_json() for k, r in sorted(self._records.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, data, indent=2, sort_keys=True, end="\n", mode=0o600)
        self._stamp = self._stat()

    @contextmanager
    def _mutating(self) -> Iterator[None]:
        """Hold the thread and file locks, with the latest file contents loaded."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self.path.with_name(self.path.name + ".lock")
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._refresh()
                yield
            finally:
                os.close(fd)  # closing releases the flock

    # --- the API ----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        roles: Iterable[Role],
        rate_limit_per_s: float | None = None,
    ) -> tuple[str, str]:
        """Create a key; return ``(key_id, plaintext_key)``. The plaintext is not kept."""
        name = str(name).strip()
        if not name or len(name) > MAX_NAME_CHARS:
            raise RequestError(f"a key name is 1 to {MAX_NAME_CHARS} characters")
        valid_roles = _validate_roles(roles)
        rate = _validate_rate(rate_limit_per_s)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        salt = secrets.token_bytes(SALT_BYTES)
        digest = _hash_secret(secret, salt, self.iterations)
        with self._mutating():
            key_id = secrets.token_hex(8)
            while key_id in self._records:  # pragma: no cover - 1 in 2**64
                key_id = secrets.token_hex(8)
            key = ApiKey(key_id, name, valid_roles, rate, created_at=self.clock())
            self._records[key_id] = _Record(key, self.iterations, salt, digest)
            self._write()
        return key_id, f"{KEY_PREFIX}{key_id}_{secret}"

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (idempotent: a revoked key keeps its first ``revoked_at``)."""
        with self._mutating():
            record = self._records.get(key_id)
            if record is None:
                raise NotFoundError(f"no API key {key_id!r}")
            self._verified.pop(key_id, None)
            if record.key.revoked:
                return record.key
            revoked = ApiKey(
                key_id=record.key.key_id,
                name=record.key.name,
                roles=record.key.roles,
                rate_limit_per_s=record.key.rate_limit_per_s,
                created_at=record.key.created_at,
                revoked_at=self.clock(),
            )
            self._records[key_id] = _Record(revoked, record.iterations, record.salt, record.digest)
            self._write()
            return revoked

    def get(self, key_id: str) -> ApiKey:
        """The key ``key_id`` (revoked or not); :class:`NotFoundError` if there is none."""
        with self._lock:
            self._refresh()
            record = self._records.get(key_id)
        if record is None:
            raise NotFoundError(f"no API key {key_id!r}")
        return record.key

    def list(self, *, include_revoked: bool = True) -> builtins.list[ApiKey]:
        """Every key, oldest first; never the secrets."""
        with self._lock:
            self._refresh()
            keys = [r.key for r in self._records.values()]
        keys = [k for k in keys if include_revoked or not k.revoked]
        return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    def authenticate(self, presented: str) -> ApiKey | None:
        """The key ``presented`` stands for, or None if malformed, unknown, wrong or revoked."""
        parsed = parse_key(presented)
        if parsed is None:
            return None
        key_id, secret = parsed
        quick = hashlib.sha256(secret.encode("utf-8")).digest()
        with self._lock:
            self._refresh()
            record = self._records.get(key_id)
            known = self._verified.get(key_id)
        if record is None or record.key.revoked:
            return None
        if known is not None:
            return record.key if hmac.compare_digest(known, quick) else None
        digest = _hash_secret(secret, record.salt, record.iterations)
        if not hmac.compare_digest(digest, record.digest):
            return None
        with self._lock:
            current = self._records.get(key_id)
            if current is None or current.key.revoked:
                return None
            self._verified[key_id] = quick
            return current.key
