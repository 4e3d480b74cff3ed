"""Self-describing artifact folders: ``manifest.json`` + files, checksummed, written atomically.

Layout of an artifacts folder::

    manifest.json          format version, shoprec version, model id, config, build metrics,
                           {relative path: sha256} for every other file
    catalog.jsonl          the products, in index order
    encoder/               model.onnx, tokenizer.json, encoder.json
    embeddings.npy         product vectors, float32 [n, dim], L2-normalised
    vectors.faiss          the FAISS index over the same vectors
    lexical/               the BM25 index (.npy + JSON)
    ranker.txt             LightGBM model in its text format (optional)
    popularity.npy         per-product popularity from events (optional)

Never pickle. :func:`write_artifacts` builds in a temporary sibling folder and renames it
over the target, so a failed build leaves the previous artifacts intact. :func:`verify`
recomputes every checksum; any mismatch, missing or unlisted file is refused with
:class:`~shoprec.errors.IntegrityError` naming the file. :func:`save_manifest` is the one
writer of ``manifest.json`` (atomic and fsynced, through :mod:`shoprec.atomicio`).

The format sits below every package that reads or writes artifacts: ``models`` loads them,
``security`` signs and encrypts them, ``training``, ``optimize`` and ``pipeline`` write them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shoprec import __version__
from shoprec.atomicio import build_folder, write_text
from shoprec.errors import ArtifactError, IntegrityError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Files that sit beside the manifest but are not covered by it (added by later layers,
# e.g. the signature over the manifest itself).
UNCHECKED = frozenset({MANIFEST, "manifest.sig"})


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> Iterator[Path]:
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.relative_to(folder).as_posix() not in UNCHECKED:
            yield p


def safe_path(folder: Path, relative: str) -> Path:
    """Resolve ``relative`` inside ``folder``; refuse anything that escapes it."""
    root = folder.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise ArtifactError(f"artifact path escapes its folder: {relative!r}")
    return target


@contextmanager
def write_artifacts(out: Path) -> Iterator[Path]:
    """Yield a temporary folder to build into; on success rename it to ``out``.

    On any exception the temporary folder is removed and ``out`` is untouched. The folder
    must hold a manifest by the end.
    """
    with build_folder(out, required=MANIFEST) as tmp:
        yield tmp


def write_manifest(
    folder: Path,
    *,
    model_id: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Checksum every file under ``folder`` and write ``manifest.json`` (see :func:`save_manifest`)."""
    files = {p.relative_to(folder).as_posix(): sha256_file(p) for p in _files(folder)}
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "shoprec_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model_id": model_id,
        "config": config,
        "metrics": metrics,
        "files": files,
    }
    if extra:
        manifest.update(extra)
    save_manifest(folder, manifest)
    return manifest


def save_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest`` as ``folder/manifest.json``, atomically and fsynced: the one writer
    of the file, so every manifest has the same layout (sorted keys, two-space indent)."""
    write_text(Path(folder) / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{folder}: no {MANIFEST}; not an artifacts folder (run `shoprec build`)")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise ArtifactError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ArtifactError(f"{path}: malformed manifest (no 'files' table)")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{path}: format version {version!r}, this shoprec reads {FORMAT_VERSION}")
    return manifest


def verify(folder: Path, *, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Check every file against the manifest; return the manifest or raise IntegrityError."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    listed: dict[str, str] = manifest["files"]
    for rel, digest in listed.items():
        path = safe_path(folder, rel)
        if not path.is_file():
            raise IntegrityError(f"{folder}: file listed in the manifest is missing: {rel}")
        if progress is not None:
            progress(rel)
        actual = sha256_file(path)
        if actual != digest:
            raise IntegrityError(f"{folder}: checksum mismatch for {rel}: manifest {digest[:12]}…, file {actual[:12]}…")
    present = {p.relative_to(folder).as_posix() for p in _files(folder)}
    unlisted = sorted(present - set(listed))
    if unlisted:
        raise IntegrityError(f"{folder}: files not in the manifest: {', '.join(unlisted[:5])}")
    return manifest
