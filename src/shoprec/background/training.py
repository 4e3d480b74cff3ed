"""``shoprec worker --train``: the continuous-training schedule.

The trainer reads the event stream through a consumer group of its own (``trainer``; the stream
is trimmed only past what it acknowledged too), appends every event to its recent-events log
(``<data_dir>/training/recent.jsonl``, fsync'd before the entry is acknowledged, each event id
once), and when :class:`~shoprec.core.jobs.RetrainSchedule` says so (every N new events, or T
seconds with any new event) queues a ``retrain`` job: build on the base and recent events but a
held-out recent slice, evaluate against the current version on that slice, promote only through
the registry's gates (:mod:`shoprec.registry.continuous`). Each scheduling is in the audit log;
the job adds its decision there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoprec.adapters.eventlog import JsonlEventLog
from shoprec.adapters.eventstream import StreamKeys
from shoprec.adapters.jobs import JobQueue
from shoprec.adapters.redis import RedisStore, StreamCommands, StreamEntry
from shoprec.core.jobs import RetrainSchedule
from shoprec.core.nearline import decode_entry
from shoprec.errors import ConfigError, DataError, SharedStateError
from shoprec.security.audit import AuditLog
from shoprec.settings import Settings

log = logging.getLogger(__name__)

GROUP = "trainer"


class ContinuousTrainer:
    def __init__(
        self,
        streams: StreamCommands,
        keys: StreamKeys,
        queue: JobQueue,
        recent: JsonlEventLog,
        schedule: RetrainSchedule,
        job_args: dict[str, Any],
        *,
        consumer: str = "trainer",
        job_timeout_s: float = 3600.0,
        job_max_attempts: int = 1,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.monotonic,
        batch: int = 1000,
        block_ms: int = 500,
    ) -> None:
        self.streams = streams
        self.keys = keys
        self.queue = queue
        self.recent = recent
        self.schedule = schedule
        self.job_args = job_args
        self.consumer = consumer
        self.job_timeout_s = job_timeout_s
        self.job_max_attempts = job_max_attempts
        self.audit = audit
        self._clock = clock
        self.batch = batch
        self.block_ms = block_ms
        self._ids = {e.event_id for e in recent.read() if e.event_id}
        self.new_events = 0
        self._since = clock()
        self._recovering = True
        self.submitted: list[str] = []

    def setup(self) -> None:
        self.streams.create_group(self.keys.events, GROUP, "0")

    def step(self, *, block: bool = True) -> int:
        """Take what is new (this consumer's unacknowledged entries first), keep it, maybe queue a
        retrain; returns how many entries were taken."""
        entries: list[StreamEntry] = []
        if self._recovering:
            entries = self.streams.read_own_pending(self.keys.events, GROUP, self.consumer, count=self.batch)
            self._recovering = bool(entries)
        if not entries:
            entries = self.streams.read_group(
                self.keys.events, GROUP, self.consumer, count=self.batch, block_ms=self.block_ms if block else None
            )
        fresh = []
        for entry_id, fields in entries:
            try:
                event = decode_entry(fields)
            except DataError as exc:  # the near-line worker dead-letters it; training just skips it
                log.warning("trainer skips entry %s: %s", entry_id, exc.message)
                continue
            if event.event_id and event.event_id not in self._ids:
                self._ids.add(event.event_id)
                fresh.append(event)
        self.recent.append(fresh)  # durable before the entries are acknowledged
        self.streams.ack(self.keys.events, GROUP, [eid for eid, _ in entries])
        self.new_events += len(fresh)
        self.maybe_submit()
        return len(entries)

    def maybe_submit(self) -> str | None:
        now = self._clock()
        if not self.schedule.due(self.new_events, now - self._since):
            return None
        job = self.queue.submit(
            "retrain", self.job_args, max_attempts=self.job_max_attempts, timeout_s=self.job_timeout_s
        )
        details = {"job": job.id, "new_events": self.new_events, "recent_events": len(self._ids)}
        log.info("retrain job %s queued after %d new events", job.id, self.new_events)
        if self.audit is not None:
            self.audit.append("training.scheduled", f"worker:{self.consumer}", details)
        self.new_events, self._since = 0, now
        self.submitted.append(job.id)
        return job.id

    def run(
        self, stop: threading.Event, *, until_idle: bool = False, sleep: Callable[[float], object] = time.sleep
    ) -> None:
        ready = False
        while not stop.is_set():
            try:
                if not ready:
                    self.setup()
                    ready = True
                if self.step(block=not until_idle) == 0 and until_idle:
                    return
            except SharedStateError as exc:
                log.warning("trainer waiting for Redis: %s", exc.message)
                self._recovering = True
                sleep(0.5)


def trainer_from_settings(
    settings: Settings,
    *,
    products: str | None,
    registry: str | None,
    base_events: str | None = None,
    consumer: str | None = None,
) -> ContinuousTrainer:
    if settings.redis_url is None:
        raise ConfigError("continuous training needs redis_url (SHOPREC_REDIS_URL)")
    products = products or None
    registry = registry or (str(settings.registry) if settings.registry else None)
    if products is None or registry is None:
        raise ConfigError("continuous training needs --products and --registry (or SHOPREC_REGISTRY)")
    store = RedisStore(settings.redis_url, socket_timeout_s=5.0)
    folder = Path(settings.data_dir) / "training"
    recent = JsonlEventLog(folder / "recent.jsonl")
    job_args: dict[str, Any] = {
        "products": str(Path(products).resolve()),
        "events": str(recent.path.resolve()),
        "registry": str(Path(registry).resolve()),
        "holdout": repr(settings.retrain_holdout_fraction),
        "work": str((folder / "work").resolve()),
    }
    if base_events:
        job_args["base_events"] = str(Path(base_events).resolve())
    audit = AuditLog(settings.audit_log, time.time) if settings.audit_log is not None else None
    return ContinuousTrainer(
        StreamCommands(store),
        StreamKeys(settings.redis_prefix),
        JobQueue(store, settings.redis_prefix),
        recent,
        RetrainSchedule(settings.retrain_every_events, settings.retrain_every_s),
        job_args,
        consumer=consumer or "trainer",
        job_timeout_s=settings.jobs_timeout_s,
        audit=audit,
    )
