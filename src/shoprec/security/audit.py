"""An append-only, hash-chained audit log in JSON Lines.

Each line is one entry::

    {"action": "keys.create", "actor": "admin:3f9c...", "details": {...},
     "hash": "<64 hex>", "prev_hash": "<64 hex>", "seq": 1, "ts": 1700000000.0}

``seq`` counts from 1 and equals the line number. ``hash`` is the SHA-256 of the canonical
JSON (``sort_keys=True, separators=(",", ":")``, ASCII, no NaN) of the entry without
``hash``; ``prev_hash`` is the previous entry's ``hash``, ``"0" * 64`` for the first. So
editing, deleting, inserting or reordering any line breaks the chain at that line, and
:func:`verify` names it. Truncating the *end* of the log leaves a valid shorter chain: to
catch that, keep the head hash somewhere else and pass it as ``expected_head``.

Appends hold a :class:`threading.Lock` and an exclusive ``flock`` on the log, re-read the
chain head from the file when another process has appended since, write one line and
``fsync`` it; so a restarted process, or several processes, continue one chain. A log whose
last line is broken (e.g. torn by a crash) is refused rather than extended.

Search requests are many: :meth:`AuditLog.should_sample` keeps a ``sample_rate`` fraction
of them, deterministically with an injected :class:`random.Random`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from shoprec.errors import ConfigError, DataError, IntegrityError

GENESIS_HASH: Final = "0" * 64
FIELDS: Final = frozenset({"seq", "ts", "action", "actor", "details", "prev_hash", "hash"})
_TAIL_CHUNK_BYTES: Final = 64 * 1024


class AuditLogError(IntegrityError):
    """The audit log's last entry is broken, so it cannot be extended."""

    code = "audit_log_error"


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`.

    ``entries`` counts the valid entries before the first bad one (all of them when ``ok``);
    ``first_bad_line`` is 1-based; ``head_hash`` is the hash of the last valid entry
    (``GENESIS_HASH`` for an empty log).
    """

    ok: bool
    entries: int
    first_bad_line: int | None
    reason: str | None
    head_hash: str | None = None


def canonical_json(obj: Any) -> bytes:
    """The one serialisation that is hashed: sorted keys, no spaces, ASCII, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``entry`` without its ``hash`` field."""
    return hashlib.sha256(canonical_json({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def _check_entry(entry: Any, expected_seq: int, prev_hash: str) -> str | None:
    """Why ``entry`` does not continue the chain, or None if it does."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    if set(entry) != FIELDS:
        return f"fields {sorted(entry)}, expected {sorted(FIELDS)}"
    seq = entry["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq != expected_seq:
        return f"seq {seq!r}, expected {expected_seq} (a line was deleted, inserted or moved)"
    if entry["prev_hash"] != prev_hash:
        return "prev_hash is not the previous entry's hash (a line before it was changed or moved)"
    try:
        actual = entry_hash(entry)
    except ValueError:
        return "not canonical JSON (NaN or infinity)"
    if entry["hash"] != actual:
        return "hash does not match the entry's content (the line was edited)"
    return None


def verify(path: Path, *, expected_head: str | None = None) -> VerifyResult:
    """Check the whole chain; name the first line (1-based) that is edited, missing, moved or
    unparsable. With ``expected_head`` also check that the log ends at that hash."""
    path = Path(path)
    prev, count = GENESIS_HASH, 0
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return VerifyResult(False, 0, None, f"no audit log at {path}", None)
    with f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                return VerifyResult(False, count, line_no, "incomplete last line (torn write?)", prev)
            try:
                entry = json.loads(raw)
            except ValueError as exc:
                return VerifyResult(False, count, line_no, f"not valid JSON: {exc}", prev)
            problem = _check_entry(entry, count + 1, prev)
            if problem is not None:
                return VerifyResult(False, count, line_no, problem, prev)
            prev, count = entry["hash"], count + 1
    if expected_head is not None and prev != expected_head:
        return VerifyResult(
            False,
            count,
            count + 1,
            f"the log ends at {prev[:12]}…, expected {expected_head[:12]}… (truncated?)",
            prev,
        )
    return VerifyResult(True, count, None, None, prev)


def should_sample(sample_rate: float, rng: random.Random) -> bool:
    """True for a ``sample_rate`` fraction of calls; always for 1, never for 0."""
    if sample_rate >= 1.0:
        return True
    if sample_rate <= 0.0:
        return False
    return rng.random() < sample_rate


def _read_tail_line(fd: int, size: int) -> bytes:
    """The last line (with its newline) of a non-empty file open on ``fd``."""
    end = size - 1  # the final newline
    start = end
    while start > 0:
        chunk_start = max(0, start - _TAIL_CHUNK_BYTES)
        chunk = os.pread(fd, start - chunk_start, chunk_start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            start = chunk_start + newline + 1
            break
        start = chunk_start
    return os.pread(fd, size - start, start)


class AuditLog:
    """Appends entries to the hash-chained log at ``path``; see the module docstring.

    ``clock`` returns the current time in seconds (injected so tests use a fake clock).
    """

    def __init__(
        self,
        path: Path,
        clock: Callable[[], float],
        *,
        sample_rate: float = 1.0,
    ) -> None:
        if not (isinstance(sample_rate, int | float) and 0.0 <= sample_rate <= 1.0):
            raise ConfigError(f"audit sample_rate must be within [0, 1], got {sample_rate!r}")
        self.path = Path(path)
        self.clock = clock
        self.sample_rate = float(sample_rate)
        self._lock = threading.Lock()
        # (inode, size) of the file when we last saw its head, and that head (seq, hash).
        self._known: tuple[int, int] | None = None
        self._head: tuple[int, str] = (0, GENESIS_HASH)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Read the head now, so a broken log fails at start rather than on the first append.
        with self._lock, self._locked_fd() as fd:
            self._current_head(fd)

    def should_sample(self, rng: random.Random) -> bool:
        """Whether to log this search request, per ``sample_rate``."""
        return should_sample(self.sample_rate, rng)

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last entry, ``(0, GENESIS_HASH)`` for an empty log."""
        with self._lock, self._locked_fd() as fd:
            return self._current_head(fd)

    def append(self, action: str, actor: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Append one entry, fsync'd, and return it."""
        if not isinstance(action, str) or not action:
            raise DataError("an audit entry needs an action")
        ts = float(self.clock())
        if not math.isfinite(ts):
            raise DataError(f"the audit clock returned {ts!r}")
        entry: dict[str, Any] = {
            "seq": 0,
            "ts": ts,
            "action": action,
            "actor": str(actor),
            "details": dict(details or {}),
            "prev_hash": GENESIS_HASH,
        }
        try:
            canonical_json(entry["details"])
        except (TypeError, ValueError) as exc:
            raise DataError(f"audit details for {action!r} are not JSON-serialisable: {exc}") from exc
        with self._lock, self._locked_fd() as fd:
            seq, prev = self._current_head(fd)
            entry["seq"] = seq + 1
            entry["prev_hash"] = prev
            entry["hash"] = entry_hash(entry)
            data = canonical_json(entry) + b"\n"
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
            st = os.fstat(fd)
            self._known = (st.st_ino, st.st_size)
            self._head = (entry["seq"], entry["hash"])
        return entry

    def verify(self, *, expected_head: str | None = None) -> VerifyResult:
        """:func:`verify` on this log."""
        return verify(self.path, expected_head=expected_head)

    # --- internals --------------------------------------------------------------------------

    def _locked_fd(self) -> _FlockedFile:
        return _FlockedFile(self.path)

    def _current_head(self, fd: int) -> tuple[int, str]:
        """The chain head, re-read from the file if anyone appended since we last looked."""
        st = os.fstat(fd)
        if self._known == (st.st_ino, st.st_size):
            return self._head
        if st.st_size == 0:
            head = (0, GENESIS_HASH)
        else:
            raw = _read_tail_line(fd, st.st_size)
            if not raw.endswith(b"\n"):
                raise AuditLogError(
                    f"{self.path}: the last line is incomplete (a crash while writing?); "
                    "check it with `shoprec audit verify` before appending"
                )
            try:
                entry = json.loads(raw)
                valid = (
                    isinstance(entry, dict)
                    and set(entry) == FIELDS
                    and isinstance(entry["seq"], int)
                    and entry["hash"] == entry_hash(entry)
                )
            except ValueError:  # not JSON, or NaN in it
                valid = False
            if not valid:
                raise AuditLogError(
                    f"{self.path}: the last entry is broken; refusing to extend the chain "
                    "(check it with `shoprec audit verify`)"
                )
            head = (int(entry["seq"]), str(entry["hash"]))
        self._known = (st.st_ino, st.st_size)
        self._head = head
        return head


class _FlockedFile:
    """The log opened for append (created 0600), under an exclusive ``flock``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> int:
        self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the flock
