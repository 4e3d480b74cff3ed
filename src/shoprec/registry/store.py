"""The registry's storage layout: immutable version folders plus one small pointer object.

Layout under ``root`` (plain files only, so a shared filesystem or an object store can hold
it: every version folder is written once under a temporary name and renamed into place, and
the only object that ever changes is ``CURRENT``)::

    versions/<id>/artifacts/     an immutable copy of the pushed artifacts folder
                                 (manifest.json, manifest.sig when signed, every file)
    versions/<id>/version.json   {"id", "pushed_at", "source", "manifest_sha256", "model_id",
                                  "evaluations": [evaluation report, ...]}
    CURRENT                      {"version": id, "previous": [older ids, most recent first],
                                  "changed_at": ...}, replaced atomically (temp file + os.replace);
                                 read through :mod:`shoprec.registry_pointer`
    history.jsonl                append-only: pushes, promotions, rollbacks, refusals

``version.json`` is the one file of a version that grows (each evaluation is appended to its
``evaluations`` list); it is rewritten whole, atomically, so a reader sees the old or the new
list, never half of one. Version ids are checked against :data:`VERSION_ID` before they touch
the filesystem, so an id can never name a path outside ``versions/``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from shoprec import artifacts
from shoprec.atomicio import append_bytes, fsync_dir, fsync_tree, write_json
from shoprec.errors import ArtifactError, NotFoundError, RequestError
from shoprec.registry_pointer import (
    ARTIFACTS_DIR,
    POINTER,
    VERSION_ID,
    VERSIONS_DIR,
    Pointer,
    check_version_id,
    read_pointer,
)

HISTORY: Final = "history.jsonl"
VERSION_FILE: Final = "version.json"
MAX_PREVIOUS: Final = 50


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _iso_ms(ts: float) -> str:
    """UTC with milliseconds, so pushes in the same second still sort in push order."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


class Registry:
    """A registry rooted at ``root`` (created on first write). ``clock`` is wall time in seconds.

    ``_before_pointer_replace`` is a hook called with the temp file just before the pointer
    is renamed into place (tests use it to simulate a crash mid-write).
    """

    def __init__(
        self,
        root: Path,
        *,
        clock: Callable[[], float] = time.time,
        _before_pointer_replace: Callable[[Path], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.clock = clock
        self._before_pointer_replace = _before_pointer_replace

    # --- paths ----------------------------------------------------------------------------

    @property
    def versions_dir(self) -> Path:
        return self.root / VERSIONS_DIR

    def version_dir(self, version_id: str) -> Path:
        return self.versions_dir / check_version_id(version_id)

    def artifacts_path(self, version_id: str) -> Path:
        return self.version_dir(version_id) / ARTIFACTS_DIR

    # --- reading --------------------------------------------------------------------------

    def pointer(self) -> Pointer | None:
        """The current pointer, or None when nothing was promoted yet."""
        return read_pointer(self.root)

    def current_id(self) -> str | None:
        p = self.pointer()
        return None if p is None else p.version

    def current_path(self) -> Path | None:
        """The artifacts folder of the current version; None when nothing was promoted yet."""
        version = self.current_id()
        return None if version is None else self.artifacts_path(version)

    def exists(self, version_id: str) -> bool:
        return (self.version_dir(version_id) / VERSION_FILE).is_file()

    def read_version(self, version_id: str) -> dict[str, Any]:
        path = self.version_dir(version_id) / VERSION_FILE
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFoundError(f"no version {version_id!r} in the registry at {self.root}") from None
        except ValueError as exc:
            raise ArtifactError(f"{path}: not valid JSON: {exc}") from exc
        return data

    def versions(self) -> list[dict[str, Any]]:
        """Every version's record, oldest push first."""
        if not self.versions_dir.is_dir():
            return []
        out = []
        for d in self.versions_dir.iterdir():
            if d.is_dir() and VERSION_ID.fullmatch(d.name) and (d / VERSION_FILE).is_file():
                out.append(self.read_version(d.name))
        return sorted(out, key=lambda v: (str(v.get("pushed_at", "")), str(v.get("id"))))

    def history(self) -> list[dict[str, Any]]:
        path = self.root / HISTORY
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:  # a torn last line after a crash; the rest still reads
                    continue
        return rows

    # --- writing --------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the registry, so concurrent promotions serialize."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def record(self, action: str, **details: Any) -> dict[str, Any]:
        """Append one line to ``history.jsonl`` (one write on an O_APPEND file, fsync'd)."""
        self.root.mkdir(parents=True, exist_ok=True)
        row = {"ts": _iso(self.clock()), "action": action, **details}
        data = (json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        append_bytes(self.root / HISTORY, data)
        return row

    def write_pointer(self, pointer: Pointer) -> None:
        """Replace ``CURRENT`` atomically; a crash before the rename leaves the old pointer."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(
            self.root / POINTER,
            pointer.to_json(),
            indent=2,
            sort_keys=True,
            end="\n",
            before_replace=self._before_pointer_replace,
        )

    def _write_version(self, version_dir: Path, record: Mapping[str, Any]) -> None:
        write_json(version_dir / VERSION_FILE, record, indent=2, sort_keys=True, end="\n")

    def add_evaluation(self, version_id: str, report: Mapping[str, Any]) -> dict[str, Any]:
        """Append ``report`` to the version's ``evaluations`` (version.json rewritten atomically)."""
        with self._locked():
            record = self.read_version(version_id)
            record.setdefault("evaluations", []).append(dict(report))
            self._write_version(self.version_dir(version_id), record)
        return record

    def push(
        self,
        source: Path,
        *,
        version_id: str | None = None,
        verify: Callable[[Path], Mapping[str, Any]] = artifacts.verify,
    ) -> dict[str, Any]:
        """Copy the artifacts folder ``source`` in as a new immutable version; return its record.

        ``verify`` checks a folder and returns its manifest (checksums by default; pass a
        signature check to require a trusted signer). It runs on the source before copying
        and again on the copy before the version becomes visible, so a file changed during
        the copy is caught. The version appears by one rename of a complete folder.
        """
        source = Path(source)
        if version_id is not None:
            check_version_id(version_id)
        verify(source)
        manifest_sha = hashlib.sha256((source / artifacts.MANIFEST).read_bytes()).hexdigest()
        manifest = artifacts.read_manifest(source)
        now = self.clock()
        if version_id is None:
            version_id = f"v{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}-{manifest_sha[:8]}"
        target = self.version_dir(version_id)
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise RequestError(f"version {version_id!r} already exists in the registry; versions are immutable")
        tmp = Path(tempfile.mkdtemp(prefix=f".{version_id}.pushing-", dir=self.versions_dir))
        try:
            shutil.copytree(source, tmp / ARTIFACTS_DIR, symlinks=False)
            verify(tmp / ARTIFACTS_DIR)
            copied_sha = hashlib.sha256((tmp / ARTIFACTS_DIR / artifacts.MANIFEST).read_bytes()).hexdigest()
            if copied_sha != manifest_sha:
                raise ArtifactError(f"{source}: manifest.json changed while it was being pushed")
            record: dict[str, Any] = {
                "id": version_id,
                "pushed_at": _iso_ms(now),
                "source": str(source.resolve()),
                "manifest_sha256": manifest_sha,
                "model_id": str(manifest.get("model_id", "unknown")),
                "signed": (source / "manifest.sig").is_file(),
                "evaluations": [],
            }
            self._write_version(tmp, record)
            for p in sorted((tmp / ARTIFACTS_DIR).rglob("*"), reverse=True):
                if p.is_file():
                    p.chmod(0o444)
            fsync_tree(tmp)
            os.rename(tmp, target)  # fails if a concurrent push took the id
            fsync_dir(self.versions_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.record("push", version=version_id, manifest_sha256=manifest_sha, source=record["source"])
        return record

    def set_current(
        self, version_id: str, *, action: str, expected_current: str | None | bool = False, **details: Any
    ) -> Pointer:
        """Point ``CURRENT`` at ``version_id`` (pushing the old current onto ``previous``).

        With ``expected_current`` (an id, or None for "nothing promoted yet") the switch is
        refused when the pointer moved since the caller looked, e.g. while gates were running.
        """
        with self._locked():
            if not self.exists(version_id):
                raise NotFoundError(f"no version {version_id!r} in the registry at {self.root}")
            old = self.pointer()
            if expected_current is not False and (None if old is None else old.version) != expected_current:
                raise RequestError(
                    f"the current version changed to {None if old is None else old.version!r} while "
                    f"{version_id} was being checked against {expected_current!r}; promote again"
                )
            previous: list[str] = []
            if old is not None:
                previous = [old.version, *old.previous]
            previous = [v for v in previous if v != version_id][:MAX_PREVIOUS]
            new = Pointer(version_id, tuple(previous), _iso(self.clock()))
            self.write_pointer(new)
            self.record(action, version=version_id, previous=None if old is None else old.version, **details)
        return new

    def rollback(self, **details: Any) -> tuple[Pointer, str]:
        """Point ``CURRENT`` back at the most recent previous version; ``(new pointer, rolled-back id)``."""
        with self._locked():
            old = self.pointer()
            if old is None:
                raise RequestError("nothing to roll back: no version was promoted yet")
            if not old.previous:
                raise RequestError(f"nothing to roll back to: {old.version} has no previous version")
            target, rest = old.previous[0], old.previous[1:]
            if not self.exists(target):
                raise ArtifactError(f"the previous version {target!r} is missing from the registry")
            new = Pointer(target, tuple(rest), _iso(self.clock()))
            self.write_pointer(new)
            self.record("rollback", version=target, previous=old.version, **details)
        return new, old.version
