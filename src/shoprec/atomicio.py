"""Atomic, durable writes: the one place shoprec replaces a file or a folder.

Every write goes to a fresh temporary sibling (created exclusively, with its final mode, so
a secret is never readable by others, not even for a moment), is flushed and fsynced, and
is then renamed over the target; the folder is fsynced after the rename, so the new name
survives a crash too. A reader sees the old content or the new, never a part of either;
after a crash the target holds one of them, and a failed write leaves the target untouched.

- :func:`write_bytes`, :func:`write_text`, :func:`write_json`, :func:`save_npy`: a whole file;
- :func:`create_bytes`: a whole file that must not exist yet (never replaces one);
- :func:`atomic_binary`, :func:`atomic_text`: a file written as a stream (CSV, JSON Lines);
- :func:`replacing`: a file that a library writes to a path of its own (an ONNX exporter);
- :func:`build_folder`: a folder built in a temporary sibling, every file fsynced, then
  renamed over the target.

The manifest of an artifacts folder is written by :func:`shoprec.artifacts.save_manifest`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from shoprec.errors import ArtifactError

BeforeReplace = Callable[[Path], None]


def fsync_dir(folder: Path) -> None:
    """Make the entries of ``folder`` (a rename into it) durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path | str) -> None:
    """Make a file's contents durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_bytes(path: Path, data: bytes, *, mode: int = 0o644, fsync: bool = True) -> None:
    """Append ``data`` to ``path`` (created with ``mode``) through an O_APPEND descriptor,
    looping over partial writes, and fsync it unless told not to: the append-only logs'
    durable write."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` (deepest first), and ``folder`` itself."""
    for root, _dirs, files in os.walk(folder, topdown=False):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                fsync_file(path)
        fsync_dir(Path(root))


def _temp_sibling(path: Path, mode: int) -> tuple[Path, int]:
    """A new file beside ``path``, created exclusively with ``mode`` (narrowed by the umask)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)


def _finish(tmp: Path, path: Path, before_replace: BeforeReplace | None) -> None:
    if before_replace is not None:
        before_replace(tmp)
    os.replace(tmp, path)


@contextmanager
def _atomic_file(
    path: Path, mode: int, before_replace: BeforeReplace | None, open_mode: str, **open_args: Any
) -> Iterator[IO[Any]]:
    path = Path(path)
    tmp, fd = _temp_sibling(path, mode)
    try:
        with os.fdopen(fd, open_mode, **open_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _finish(tmp, path, before_replace)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_binary(
    path: Path, *, mode: int = 0o644, before_replace: BeforeReplace | None = None
) -> AbstractContextManager[IO[bytes]]:
    """A binary file that appears at ``path``, durably, once the ``with`` block completes.

    ``before_replace`` is called with the fsynced temporary file just before the rename
    (tests use it to simulate a crash there)."""
    return _atomic_file(path, mode, before_replace, "wb")


def atomic_text(
    path: Path,
    *,
    newline: str | None = None,
    mode: int = 0o644,
    before_replace: BeforeReplace | None = None,
) -> AbstractContextManager[IO[str]]:
    """A UTF-8 text file that appears at ``path``, durably, once the ``with`` block completes
    (``newline`` as for :func:`open`)."""
    return _atomic_file(path, mode, before_replace, "w", encoding="utf-8", newline=newline)


@contextmanager
def replacing(path: Path, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that only takes a path; once the
    ``with`` block completes, the file written there is fsynced and renamed over ``path``."""
    path = Path(path)
    tmp, fd = _temp_sibling(path, mode)
    os.close(fd)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes(path: Path, data: bytes, *, mode: int = 0o644, before_replace: BeforeReplace | None = None) -> None:
    """Replace ``path`` with ``data``, atomically and durably."""
    with atomic_binary(path, mode=mode, before_replace=before_replace) as f:
        f.write(data)


def create_bytes(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` only if no file has that name (False, and nothing written,
    when one does), atomically and durably: the fsynced temporary file is hard-linked to the
    name, which fails rather than replace. For records written once under a chosen number."""
    path = Path(path)
    tmp, fd = _temp_sibling(path, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def write_text(path: Path, text: str, *, mode: int = 0o644, before_replace: BeforeReplace | None = None) -> None:
    """Replace ``path`` with ``text`` (UTF-8), atomically and durably."""
    write_bytes(path, text.encode("utf-8"), mode=mode, before_replace=before_replace)


def write_json(
    path: Path,
    data: Any,
    *,
    indent: int | None = None,
    sort_keys: bool = False,
    end: str = "",
    mode: int = 0o644,
    before_replace: BeforeReplace | None = None,
) -> None:
    """Replace ``path`` with ``json.dumps(data, indent=indent, sort_keys=sort_keys) + end``."""
    text = json.dumps(data, indent=indent, sort_keys=sort_keys) + end
    write_text(path, text, mode=mode, before_replace=before_replace)


def save_npy(path: Path, array: npt.NDArray[Any], *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``array`` in the ``.npy`` format (never pickled)."""
    with atomic_binary(path, mode=mode) as f:
        np.save(f, array, allow_pickle=False)


@contextmanager
def build_folder(out: Path, *, required: str | None = None, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it replaces ``out``.

    Every file under the folder is fsynced before the rename, and the parent after it. An
    existing ``out`` is moved aside first and removed after the rename (put back if the
    rename fails). On any exception, or when ``required`` is missing from the folder at the
    end, the temporary folder is removed and ``out`` is untouched. ``mode`` sets the folder's
    permissions (a temporary folder is private, 0700, until then).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        yield tmp
        if required is not None and not (tmp / required).exists():
            raise ArtifactError(f"{out}: finished without writing {required}")
        if mode is not None:
            os.chmod(tmp, mode)
        fsync_tree(tmp)
        old: Path | None = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}-{int(time.time() * 1000)}"
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            if old is not None:
                os.replace(old, out)
            raise
        fsync_dir(out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
