"""``shoprec worker --jobs``: take queued jobs and run each as a ``shoprec`` command in a
process of its own, with a timeout, its output lines as progress, and retries.

The command runs in a new process group; at its timeout the whole group is killed (a build's
helper processes included) and the attempt counts as failed. A succeeded job's result is the
last JSON object its command printed (``--json`` commands print one), else its last line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shoprec.adapters.jobs import JobQueue
from shoprec.core.jobs import JobRecord, job_argv, last_json_line
from shoprec.errors import DataError, SharedStateError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    ok: bool
    output: str
    error: str | None = None


def run_command(
    argv: Sequence[str], *, timeout_s: float, on_line: Callable[[str], None], env: dict[str, str] | None = None
) -> RunOutcome:
    """Run ``python -m shoprec.cli ARGV`` with a timeout, passing each output line to ``on_line``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoprec.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env=env,
    )
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout or ():
            lines.append(line.rstrip("\n"))
            on_line(lines[-1])

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timed_out = False
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
        timed_out = True
    reader.join(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()
    if timed_out:
        return RunOutcome(False, "\n".join(lines), f"timed out after {timeout_s:g} s")
    output = "\n".join(lines)
    if code != 0:
        tail = lines[-1] if lines else ""
        return RunOutcome(False, output, f"exit status {code}: {tail}")
    return RunOutcome(True, output)


Runner = Callable[..., RunOutcome]


class JobRunner:
    """Runs the queue's jobs one at a time."""

    def __init__(
        self,
        queue: JobQueue,
        name: str,
        *,
        reclaim_idle_ms: int,
        run: Runner = run_command,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.name = name
        self.reclaim_idle_ms = reclaim_idle_ms
        self._run = run
        self._clock = clock

    def run_one(self, *, block_ms: int = 1000) -> JobRecord | None:
        """Take one job (waiting up to ``block_ms``), run it, store the outcome; None when none came."""
        taken = self.queue.take(self.name, block_ms=block_ms, reclaim_idle_ms=self.reclaim_idle_ms)
        if taken is None:
            return None
        entry_id, job = taken
        if job.status != "queued":  # a dead runner's entry, or a duplicate: the record says what is left
            if job.status == "running" and job.attempts < job.max_attempts:
                log.warning("job %s was running on %s, which stopped; running it again", job.id, job.worker)
            elif job.status == "running":
                job = job.failed(self._clock(), f"runner {job.worker} stopped during the last attempt")
                self.queue.finish(entry_id, job)
                return job
            else:
                self.queue.finish(entry_id, job)
                return job
        job = job.started(self._clock(), self.name)
        self.queue.save(job)
        log.info("job %s (%s) attempt %d of %d", job.id, job.kind, job.attempts, job.max_attempts)
        try:
            argv = job_argv(job.kind, job.args)
        except DataError as exc:
            job = job.failed(self._clock(), exc.message)  # no retry makes bad arguments good
            self.queue.finish(entry_id, job)
            return job
        last = [""]

        def on_line(line: str) -> None:
            if line.strip():
                last[0] = line[-500:]
                self._progress(job.id, last[0])

        outcome = self._run(argv, timeout_s=job.timeout_s, on_line=on_line)
        job = dataclasses.replace(job, progress=last[0])
        result = last_json_line(outcome.output) if outcome.ok else None
        if outcome.ok and result is None:
            result = (outcome.output.splitlines() or [""])[-1]
        job = job.ended(self._clock(), ok=outcome.ok, result=result, error=outcome.error)
        self.queue.finish(entry_id, job)
        log.info("job %s: %s", job.id, job.status)
        return job

    def _progress(self, job_id: str, line: str) -> None:
        with contextlib.suppress(SharedStateError):  # best effort: the outcome is stored when the run ends
            self.queue.progress(job_id, line)

    def run(self, stop: threading.Event, *, sleep: Callable[[float], object] = time.sleep) -> None:
        while not stop.is_set():
            try:
                self.run_one()
            except SharedStateError as exc:
                log.warning("job runner waiting for Redis: %s", exc.message)
                sleep(0.5)
