"""The event stream in Redis: what ``POST /v1/events`` appends to when ``events_backend=redis``.

:meth:`RedisEventStream.append` runs one Lua script per batch: if the stream holds
``max_backlog`` entries or more it appends nothing and the caller gets
:class:`~shoprec.errors.BacklogFullError` (503 + ``Retry-After``); otherwise it ``XADD``\\ s every
event, all or none. Workers trim the stream only past what every consumer group has
acknowledged (:func:`safe_trim_id`), so its length is the backlog not yet applied everywhere.

Durability of a 202: the reply is sent after Redis has executed the script, and with
``appendonly yes`` + ``appendfsync always`` Redis fsyncs its AOF before it answers, so an
acknowledged event survives a Redis crash or restart. :meth:`RedisEventStream.check_durability`
reads Redis's AOF settings on first use and refuses to acknowledge anything (503) when they
promise less than the ``events_durability`` setting asks for. See docs/EVENTS.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shoprec.adapters.redis import RedisStore, StreamCommands, next_id
from shoprec.core.nearline import encode_entry
from shoprec.errors import BacklogFullError, SharedStateError
from shoprec.types import Event

log = logging.getLogger(__name__)

_APPEND_BOUNDED = """
local stream = KEYS[1]
local bound = tonumber(ARGV[1])
local backlog = redis.call('XLEN', stream)
if backlog >= bound then return -1 - backlog end
for i = 2, #ARGV do redis.call('XADD', stream, '*', 'e', ARGV[i]) end
return #ARGV - 1
"""

_DURABILITY_RANK = {"unchecked": 0, "everysec": 1, "always": 2}


@dataclass(frozen=True)
class StreamKeys:
    """The Redis keys of one event stream, from the ``redis_prefix`` setting."""

    prefix: str

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}events:dead"

    @property
    def worker_stats(self) -> str:
        return f"{self.prefix}events:worker"


def promised_durability(appendonly: str | None, appendfsync: str | None) -> str:
    """What Redis's AOF settings promise for an acknowledged write: always / everysec / unchecked."""
    if appendonly != "yes":
        return "unchecked"
    return {"always": "always", "everysec": "everysec"}.get(appendfsync or "", "unchecked")


class RedisEventStream:
    """An :class:`~shoprec.types.EventSink` appending to a Redis Stream, bounded, checked durable."""

    def __init__(
        self,
        store: RedisStore,
        keys: StreamKeys,
        *,
        max_backlog: int,
        durability: str = "always",
        retry_after_s: float = 1.0,
    ) -> None:
        if durability not in _DURABILITY_RANK:
            raise ValueError(f"durability must be one of {list(_DURABILITY_RANK)}")
        self.store = store
        self.streams = StreamCommands(store)
        self.keys = keys
        self.max_backlog = max_backlog
        self.durability = durability
        self.retry_after_s = retry_after_s
        self._checked = durability == "unchecked"
        self._lock = threading.Lock()
        self._script = f"{keys.prefix}events-append"
        store.register_script(self._script, _APPEND_BOUNDED)

    def check_durability(self) -> None:
        """Raise :class:`SharedStateError` unless Redis's AOF promises ``durability`` (checked once)."""
        if self._checked:
            return
        appendonly = self.streams.config("appendonly")
        appendfsync = self.streams.config("appendfsync")
        if appendonly is None and appendfsync is None:
            log.warning("Redis does not say its AOF settings (CONFIG refused); assuming they are durable")
        else:
            promised = promised_durability(appendonly, appendfsync)
            if _DURABILITY_RANK[promised] < _DURABILITY_RANK[self.durability]:
                raise SharedStateError(
                    f"Redis at {self.store.url} has appendonly={appendonly} appendfsync={appendfsync}: an accepted "
                    f"event could be lost, and events_durability={self.durability} asks for more; refusing events"
                )
        with self._lock:
            self._checked = True

    def append(self, events: Sequence[Event]) -> int:
        """Append ``events`` (each with an ``event_id``), all or none; raise
        :class:`BacklogFullError` at the bound, :class:`SharedStateError` while Redis is away."""
        if not events:
            return 0
        self.check_durability()
        payloads = [encode_entry(e)["e"] for e in events]
        added = int(self.store.run_script(self._script, keys=[self.keys.events], args=[self.max_backlog, *payloads]))
        if added < 0:
            backlog = -1 - added
            raise BacklogFullError(
                f"the event stream holds {backlog} entries not yet applied (bound {self.max_backlog}); retry later",
                retry_after_s=self.retry_after_s,
            )
        return added

    def backlog(self) -> int:
        return self.streams.length(self.keys.events)

    def status(self) -> dict[str, Any]:
        """The stream's backlog, each consumer group, the dead letters and the workers' counters."""
        counters = self.store.call(lambda r: r.hgetall(self.keys.worker_stats))
        return {
            "backlog": self.backlog(),
            "max_backlog": self.max_backlog,
            "groups": [
                {
                    "name": str(g["name"]),
                    "consumers": int(g.get("consumers", 0)),
                    "pending": int(g.get("pending", 0)),
                    "last_delivered_id": str(g.get("last-delivered-id", "")),
                    "lag": None if g.get("lag") is None else int(g["lag"]),
                }
                for g in self.streams.groups(self.keys.events)
            ],
            "dead_letters": self.streams.length(self.keys.dead_letters),
            "dead_lettered": int(counters.get(b"dead_lettered", counters.get("dead_lettered", 0))),
        }


def safe_trim_id(groups: Sequence[tuple[int, str | None, str]]) -> str | None:
    """The id below which every group has acknowledged every entry, from each group's
    (pending count, oldest pending id, last delivered id); None without groups."""
    bounds: list[str] = []
    for pending, oldest_pending, last_delivered in groups:
        bounds.append(oldest_pending if pending and oldest_pending else next_id(last_delivered))
    if not bounds:
        return None
    return min(bounds, key=lambda i: tuple(int(p) for p in i.split("-")))
