"""``shoprec worker``: the consumer that applies the event stream to the near-line state.

One :meth:`StreamWorker.step`:

0. recover: after the worker starts and after Redis was away, the entries already delivered to
   this consumer and not acknowledged (``XREADGROUP ... 0``) are applied before anything else
   (a worker restarted under the same ``--consumer`` name resumes where it stopped, in order);
1. claim: ``XAUTOCLAIM`` the entries some consumer of the group has held longer than
   ``claim_idle_ms`` (a consumer that died, or this one's own failures), and apply them first, so
   a replacement consumer finishes what a dead one had taken before it reads anything new;
   an entry delivered more than ``max_deliveries`` times is dead-lettered unread (whatever it
   does kills its consumers);
2. read: ``XREADGROUP >`` up to ``batch`` new entries (waiting up to ``block_ms``) and apply them;
3. trim, at most every ``trim_interval_s``: ``XTRIM MINID`` below the oldest entry some group
   has not acknowledged (:func:`~shoprec.adapters.eventstream.safe_trim_id`).

Applying is :meth:`NearlineStore.apply` (idempotent by event id), then ``XACK``. An entry that
cannot be decoded or applied stays pending and is retried when claimed again; at its
``max_deliveries``-th failed delivery it goes to the dead-letter stream with the error, the
entry's fields and its delivery count, is acknowledged and counted, in one MULTI.
A worker killed at any point leaves only entries that are pending (another claims them) or
applied and pending (the claim finds their ids applied): nothing lost, nothing twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shoprec.adapters.eventstream import StreamKeys, safe_trim_id
from shoprec.adapters.nearline import NearlineStore
from shoprec.adapters.redis import RedisStore, StreamCommands, StreamEntry
from shoprec.core.nearline import decode_entry
from shoprec.errors import ConfigError, DataError, SharedStateError
from shoprec.settings import Settings
from shoprec.types import Event

log = logging.getLogger(__name__)


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class WorkerOptions:
    group: str = "nearline"
    consumer: str = field(default_factory=default_consumer_name)
    batch: int = 500
    block_ms: int = 200
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    trim_interval_s: float = 1.0


@dataclass
class StepReport:
    """What one step did."""

    claimed: int = 0
    read: int = 0
    applied: int = 0
    acked: int = 0
    failed: int = 0
    dead_lettered: int = 0
    trimmed: int = 0

    @property
    def idle(self) -> bool:
        return self.claimed == 0 and self.read == 0

    def add(self, other: StepReport) -> None:
        for name in ("claimed", "read", "applied", "acked", "failed", "dead_lettered", "trimmed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class StreamWorker:
    """Consumes one stream through one consumer group into the near-line state."""

    def __init__(
        self,
        streams: StreamCommands,
        keys: StreamKeys,
        state: NearlineStore,
        options: WorkerOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.streams = streams
        self.keys = keys
        self.state = state
        self.options = options
        self._clock = clock
        self._claim_cursor = "0-0"
        self._recovering = True
        self._trimmed_at: float | None = None
        self.totals = StepReport()

    def setup(self) -> None:
        """Create the consumer group (reading the stream from its start) if it does not exist."""
        if self.streams.create_group(self.keys.events, self.options.group, "0"):
            log.info("created consumer group %s on %s", self.options.group, self.keys.events)

    def step(self, *, block: bool = True) -> StepReport:
        report = StepReport()
        opts = self.options
        if self._recovering:
            own = self.streams.read_own_pending(self.keys.events, opts.group, opts.consumer, count=opts.batch)
            if own:
                report.claimed = len(own)
                self._process(own, report, claimed_now=True)
                self.totals.add(report)
                return report
            self._recovering = False
        cursor, claimed = self.streams.autoclaim(
            self.keys.events,
            opts.group,
            opts.consumer,
            min_idle_ms=opts.claim_idle_ms,
            count=opts.batch,
            start_id=self._claim_cursor,
        )
        self._claim_cursor = cursor
        if claimed:
            report.claimed += len(claimed)
            self._process(claimed, report, claimed_now=True)
        # while claimed entries remain, finish them before reading new ones (stream order)
        if not claimed or cursor == "0-0":
            fresh = self.streams.read_group(
                self.keys.events, opts.group, opts.consumer, count=opts.batch, block_ms=opts.block_ms if block else None
            )
            report.read = len(fresh)
            self._process(fresh, report, claimed_now=False)
        report.trimmed = self.maybe_trim()
        self.totals.add(report)
        return report

    def _process(self, entries: Sequence[StreamEntry], report: StepReport, *, claimed_now: bool) -> None:
        if not entries:
            return
        opts = self.options
        if claimed_now:
            counts = self.streams.deliveries(self.keys.events, opts.group, [eid for eid, _ in entries])
            keep = []
            for eid, fields in entries:
                if counts.get(eid, 0) > opts.max_deliveries:
                    self._dead_letter(eid, fields, counts[eid], "delivered more often than allowed; its consumers died")
                    report.dead_lettered += 1
                else:
                    keep.append((eid, fields))
            entries = keep
        events: list[tuple[str, Event]] = []
        errors: dict[str, str] = {}
        for eid, fields in entries:
            try:
                events.append((eid, decode_entry(fields)))
            except DataError as exc:
                errors[eid] = exc.message
        applied, more_errors = self._apply(events)
        errors.update(more_errors)
        report.applied += applied
        done = [eid for eid, _ in events if eid not in errors]
        report.acked += self.streams.ack(self.keys.events, opts.group, done)
        if errors:
            report.failed += len(errors)
            counts = self.streams.deliveries(self.keys.events, opts.group, list(errors))
            by_id = dict(entries)
            for eid, error in errors.items():
                n = counts.get(eid, 0)
                if n >= opts.max_deliveries:
                    self._dead_letter(eid, by_id[eid], n, error)
                    report.dead_lettered += 1
                else:
                    log.warning("event %s failed (delivery %d of %d): %s", eid, n, opts.max_deliveries, error)

    def _apply(self, events: Sequence[tuple[str, Event]]) -> tuple[int, dict[str, str]]:
        """Apply as one batch; the entries the state refused, with why (Redis away: raises, all stay pending)."""
        if not events:
            return 0, {}
        result = self.state.apply([e for _, e in events])
        return result.applied, {events[i][0]: why for i, why in result.refused.items()}

    def _dead_letter(self, entry_id: str, fields: dict[str, str], deliveries: int, error: str) -> None:
        log.error("event %s dead-lettered after %d deliveries: %s", entry_id, deliveries, error)
        dead = {**fields, "entry_id": entry_id, "group": self.options.group, "deliveries": str(deliveries)}
        dead["error"] = error
        self.streams.dead_letter(
            self.keys.events,
            self.options.group,
            entry_id,
            self.keys.dead_letters,
            dead,
            (self.keys.worker_stats, "dead_lettered"),
        )

    def maybe_trim(self, *, force: bool = False) -> int:
        now = self._clock()
        if not force and self._trimmed_at is not None and now - self._trimmed_at < self.options.trim_interval_s:
            return 0
        self._trimmed_at = now
        groups = []
        for g in self.streams.groups(self.keys.events):
            pending = int(g.get("pending", 0))
            oldest = self.streams.oldest_pending(self.keys.events, str(g["name"])) if pending else None
            groups.append((pending, oldest, str(g.get("last-delivered-id", "0-0"))))
        below = safe_trim_id(groups)
        return 0 if below is None else self.streams.trim_before(self.keys.events, below)

    def run(
        self,
        stop: threading.Event,
        *,
        sleep: Callable[[float], object] = time.sleep,
        until_idle: bool = False,
        retry_s: float = 0.2,
    ) -> StepReport:
        """Step until ``stop`` is set (or, with ``until_idle``, until a step finds nothing to do);
        while Redis is away, wait ``retry_s`` between tries."""
        ready = False
        while not stop.is_set():
            try:
                if not ready:
                    self.setup()
                    ready = True
                report = self.step(block=not until_idle)
            except SharedStateError as exc:
                log.warning("worker waiting for Redis: %s", exc.message)
                self._recovering = True  # what this consumer held is read again first
                sleep(retry_s)
                continue
            if until_idle and report.idle:
                break
        return self.totals


def worker_from_settings(settings: Settings, *, consumer: str | None = None) -> StreamWorker:
    """The worker the settings describe (``redis_url``, ``redis_prefix``, ``worker_*``, ``nearline_*``)."""
    if settings.redis_url is None:
        raise ConfigError("the worker needs redis_url (SHOPREC_REDIS_URL)")
    # a blocking read must end before the socket gives up on it
    store = RedisStore(settings.redis_url, socket_timeout_s=settings.worker_block_ms / 1000 + 5.0)
    keys = StreamKeys(settings.redis_prefix)
    state = NearlineStore(
        store,
        prefix=settings.redis_prefix,
        max_history=settings.nearline_history_items,
        history_ttl_s=settings.nearline_history_ttl_s,
        dedupe_ttl_s=settings.events_dedupe_ttl_s,
        row_items=settings.nearline_row_items,
        popular_items=settings.nearline_popular_items,
    )
    options = WorkerOptions(
        group=settings.worker_group,
        consumer=consumer or default_consumer_name(),
        batch=settings.worker_batch,
        block_ms=settings.worker_block_ms,
        claim_idle_ms=settings.worker_claim_idle_ms,
        max_deliveries=settings.worker_max_deliveries,
        trim_interval_s=settings.worker_trim_interval_s,
    )
    return StreamWorker(StreamCommands(store), keys, state, options)
