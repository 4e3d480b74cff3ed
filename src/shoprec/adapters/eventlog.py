"""The embedded default event store: an append-only JSON Lines file on disk.

Each append writes whole lines under a lock and flushes + fsyncs before returning, so
an acknowledged event survives a process restart. A torn last line (a crash mid-write)
is skipped and reported on read instead of failing the whole log.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from shoprec.atomicio import append_bytes
from shoprec.catalog.loaders import event_from_json, event_to_json
from shoprec.types import Event

log = logging.getLogger(__name__)


class JsonlEventLog:
    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._lock = threading.Lock()

    def append(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        data = "".join(
            json.dumps(event_to_json(e), ensure_ascii=False, separators=(",", ":")) + "\n" for e in events
        ).encode("utf-8")
        with self._lock:
            append_bytes(self.path, data, mode=0o600, fsync=self._fsync)
        return len(events)

    def read(self) -> Iterator[Event]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield event_from_json(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("%s:%d: skipping unreadable event line: %s", self.path, lineno, exc)

    def count(self) -> int:
        return sum(1 for _ in self.read())
