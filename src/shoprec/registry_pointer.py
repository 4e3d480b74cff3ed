"""The registry's ``CURRENT`` pointer and version ids: what the serving runtime and the
registry both read.

``<root>/CURRENT`` holds ``{"version": id, "previous": [older ids], "changed_at": ...}``
and names the version being served, whose artifacts are ``<root>/versions/<id>/artifacts``.
It lives below ``serving`` and ``registry`` so the runtime can follow promotions without
importing the registry (which imports serving); :mod:`shoprec.registry.store` owns the
rest of the layout and every write.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from shoprec.errors import ArtifactError, RequestError

VERSION_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
POINTER: Final = "CURRENT"
VERSIONS_DIR: Final = "versions"
ARTIFACTS_DIR: Final = "artifacts"


def check_version_id(version_id: str) -> str:
    """``version_id`` if it is a safe folder name; RequestError otherwise (no ``/``, no ``..``)."""
    if not isinstance(version_id, str) or not VERSION_ID.fullmatch(version_id) or ".." in version_id:
        raise RequestError(
            f"bad version id {version_id!r}: use 1-80 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return version_id


@dataclass(frozen=True)
class Pointer:
    """The content of ``CURRENT``."""

    version: str
    previous: tuple[str, ...]
    changed_at: str

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "previous": list(self.previous), "changed_at": self.changed_at}


def read_pointer(root: Path) -> Pointer | None:
    """The pointer of the registry at ``root``, or None when nothing was promoted yet.
    An unreadable or malformed pointer raises :class:`~shoprec.errors.ArtifactError`."""
    path = Path(root) / POINTER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable registry pointer: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("previous", []), list):
        raise ArtifactError(f"{path}: malformed registry pointer")
    try:
        version = check_version_id(data.get("version"))  # type: ignore[arg-type]
        previous = tuple(check_version_id(v) for v in data.get("previous", []))
    except RequestError as exc:
        raise ArtifactError(f"{path}: malformed registry pointer: {exc.message}") from exc
    return Pointer(version, previous, str(data.get("changed_at", "")))


def artifacts_path(root: Path, version_id: str) -> Path:
    """The artifacts folder of version ``version_id`` in the registry at ``root``."""
    return Path(root) / VERSIONS_DIR / check_version_id(version_id) / ARTIFACTS_DIR


def current_artifacts(root: Path) -> tuple[Path, str] | None:
    """``(artifacts folder, version id)`` the registry at ``root`` points to; None if none yet."""
    pointer = read_pointer(root)
    return None if pointer is None else (artifacts_path(root, pointer.version), pointer.version)
