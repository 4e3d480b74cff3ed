"""The background job queue in Redis: submitted by ``shoprec jobs submit`` and ``POST
/v1/admin/jobs``, run by ``shoprec worker --jobs``, shown by ``shoprec jobs list|show`` and
``GET /v1/admin/jobs``.

Keys (``P`` is the ``redis_prefix`` setting)::

    P jobs            STREAM  one entry per run to make: {"id": job id}; consumer group "runners"
    P job:<id>        HASH    the job's record (:class:`shoprec.core.jobs.JobRecord`)
    P jobs:index      ZSET    job id -> created_at, for listing

Why Redis Streams and not a job library: Redis is already the shared tier and redis-py has one
owner here; a consumer group gives the same at-least-once delivery, pending-entry reclaim
(``XAUTOCLAIM``) and dead-consumer handling the event stream uses, so both queues share one
tested mechanism. RQ stores jobs with pickle (nothing in shoprec is pickled), Celery brings a
broker abstraction and result backends larger than this whole module, and Dramatiq would be a
second Redis client outside the adapter. Jobs here are a handful a day, each minutes long:
what they need is a record that says what happened, retries, and a timeout, not throughput.

A runner takes an entry, marks the job running and runs it; when the run ends it rewrites the
record and acknowledges the entry in one MULTI, adding a new entry for a retry. A runner that
dies leaves its entry pending: another runner claims it once it has been idle for longer than
the job's timeout and runs the job again (attempts counts it).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from shoprec.adapters.redis import RedisStore, StreamCommands
from shoprec.core.jobs import JobRecord, job_argv
from shoprec.errors import NotFoundError

log = logging.getLogger(__name__)

GROUP = "runners"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class JobQueue:
    def __init__(self, store: RedisStore, prefix: str, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.streams = StreamCommands(store)
        self.prefix = prefix
        self.clock = clock
        self.stream = f"{prefix}jobs"
        self.index = f"{prefix}jobs:index"
        self._group_ready = False

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def submit(self, kind: str, args: Mapping[str, Any], *, max_attempts: int, timeout_s: float) -> JobRecord:
        """Queue a job (its arguments are checked first: a bad one raises DataError, nothing queued)."""
        job_argv(kind, args)
        job = JobRecord(
            id=uuid.uuid4().hex[:16],
            kind=kind,
            args=dict(args),
            max_attempts=max_attempts,
            timeout_s=timeout_s,
            created_at=self.clock(),
        )

        def run(r: Any) -> None:
            pipe = r.pipeline(transaction=True)
            pipe.hset(self._key(job.id), mapping=job.to_fields())
            pipe.zadd(self.index, {job.id: job.created_at})
            pipe.xadd(self.stream, {"id": job.id})
            pipe.execute()

        self.store.call(run)
        return job

    def get(self, job_id: str) -> JobRecord:
        raw = self.store.call(lambda r: r.hgetall(self._key(job_id)))
        if not raw:
            raise NotFoundError(f"no job with id {job_id!r}")
        return JobRecord.from_fields({_text(k): _text(v) for k, v in raw.items()})

    def list(self, limit: int = 50) -> list[JobRecord]:
        """The most recent jobs, newest first."""
        raw: Any = self.store.call(lambda r: r.zrevrange(self.index, 0, limit - 1))
        ids = [_text(i) for i in raw]
        return [self.get(i) for i in ids]

    def save(self, job: JobRecord) -> None:
        fields: Any = job.to_fields()
        self.store.call(lambda r: r.hset(self._key(job.id), mapping=fields))

    def progress(self, job_id: str, line: str) -> None:
        self.store.call(lambda r: r.hset(self._key(job_id), "progress", line[-500:]))

    def take(self, runner: str, *, block_ms: int, reclaim_idle_ms: int) -> tuple[str, JobRecord] | None:
        """The next job to run and its entry: a dead runner's first (idle past ``reclaim_idle_ms``), else a new one."""
        if not self._group_ready:
            self.streams.create_group(self.stream, GROUP, "0")
            self._group_ready = True
        _, claimed = self.streams.autoclaim(self.stream, GROUP, runner, min_idle_ms=reclaim_idle_ms, count=1)
        entries = claimed or self.streams.read_group(self.stream, GROUP, runner, count=1, block_ms=block_ms)
        if not entries:
            return None
        entry_id, fields = entries[0]
        try:
            return entry_id, self.get(fields.get("id", ""))
        except NotFoundError:
            log.error("job entry %s names no job (%s); dropped", entry_id, fields)
            self.streams.ack(self.stream, GROUP, [entry_id])
            return None

    def finish(self, entry_id: str, job: JobRecord) -> None:
        """Store the record after a run and acknowledge its entry; queue it again when it goes back to queued."""

        def run(r: Any) -> None:
            pipe = r.pipeline(transaction=True)
            pipe.hset(self._key(job.id), mapping=job.to_fields())
            if job.status == "queued":
                pipe.xadd(self.stream, {"id": job.id})
            pipe.xack(self.stream, GROUP, entry_id)
            pipe.execute()

        self.store.call(run)
