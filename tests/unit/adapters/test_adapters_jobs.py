"""Background jobs and the continuous-training schedule against a real redis-server.

Job runs are injected where the test is about the queue (what a run returns is then exact);
the command runner itself is tested on real ``shoprec`` processes, one of which never ends."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from shoprec.adapters.eventlog import JsonlEventLog
from shoprec.adapters.jobs import GROUP, JobQueue
from shoprec.adapters.redis import RedisStore
from shoprec.background.jobs import JobRunner, RunOutcome, run_command
from shoprec.background.training import ContinuousTrainer
from shoprec.core.jobs import RetrainSchedule, job_argv, last_json_line
from shoprec.errors import DataError, NotFoundError
from shoprec.security.audit import AuditLog
from support.eventstreams import Pipeline, seeded_events


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A run function that answers from a script and records the commands it was given."""

    def __init__(self, *outcomes: RunOutcome) -> None:
        self.outcomes = list(outcomes)
        self.argv: list[list[str]] = []

    def __call__(self, argv: list[str], *, timeout_s: float, on_line: Any) -> RunOutcome:
        self.argv.append(list(argv))
        on_line("working")
        return self.outcomes.pop(0)


def queue(url: str, clock: Clock | None = None) -> JobQueue:
    return JobQueue(RedisStore(url, socket_timeout_s=5), "t:", clock=clock or Clock())


def test_job_arguments_are_checked_and_become_a_command() -> None:
    args = {"registry": "/r", "sequences": "/s.txt", "version": "v2"}
    assert job_argv("promote", args) == [
        "registry",
        "promote",
        "v2",
        "--registry",
        "/r",
        "--sequences",
        "/s.txt",
        "--json",
    ]
    assert job_argv("optimize", {"artifacts": "a", "out": "b", "steps": ["int8", "static"]})[-2:] == ["int8", "static"]
    assert job_argv("retrain", {"products": "p", "events": "e", "registry": "r", "base_events": "b"})[-2:] == [
        "--base-events",
        "b",
    ]
    for kind, bad, why in [
        ("shell", {}, "unknown job kind"),
        ("rebuild", {"products": "p"}, "needs out"),
        ("rebuild", {"products": "p", "out": "o", "command": "rm"}, "no argument command"),
        ("rebuild", {"products": "--help", "out": "o"}, "not starting with '-'"),
        ("optimize", {"artifacts": "a", "out": "b", "steps": "int8"}, "list of strings"),
    ]:
        with pytest.raises(DataError, match=why):
            job_argv(kind, bad)
    assert last_json_line('noise\n{"a": 1}\ntail') == {"a": 1} and last_json_line("none") is None


def test_a_job_runs_and_its_result_is_kept(redis_server) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    q = queue(redis_server.url, clock)
    job = q.submit("evaluate", {"artifacts": "/a", "judgments": "/j.csv"}, max_attempts=2, timeout_s=60)
    assert q.get(job.id).status == "queued"
    run = Scripted(RunOutcome(True, 'scoring\n{"ndcg@10": 0.5}'))
    done = JobRunner(q, "r1", reclaim_idle_ms=60_000, run=run, clock=clock).run_one(block_ms=1)
    assert done is not None and done.status == "succeeded" and done.result == {"ndcg@10": 0.5}
    stored = q.get(job.id)
    assert stored.status == "succeeded" and stored.attempts == 1 and stored.worker == "r1"
    assert stored.progress == "working" and run.argv == [
        ["eval", "search", "--artifacts", "/a", "--judgments", "/j.csv", "--json"]
    ]
    assert [j.id for j in q.list()] == [job.id]
    assert q.streams.groups(q.stream)[0]["pending"] == 0
    with pytest.raises(NotFoundError):
        q.get("0000")
    with pytest.raises(DataError):
        q.submit("rebuild", {}, max_attempts=1, timeout_s=1)
    assert len(q.list()) == 1  # nothing queued for the refused job


def test_a_failing_job_is_retried_then_fails_with_every_error(redis_server) -> None:  # type: ignore[no-untyped-def]
    q = queue(redis_server.url)
    job = q.submit("evaluate", {"artifacts": "/a", "judgments": "/j.csv"}, max_attempts=3, timeout_s=60)
    run = Scripted(
        RunOutcome(False, "", "exit status 2: no artifacts"),
        RunOutcome(False, "", "timed out after 60 s"),
        RunOutcome(False, "", "exit status 1: boom"),
    )
    runner = JobRunner(q, "r1", reclaim_idle_ms=60_000, run=run)
    statuses = []
    for _ in range(3):
        ran = runner.run_one(block_ms=1)
        assert ran is not None
        statuses.append(ran.status)
    assert statuses == ["queued", "queued", "failed"]
    assert runner.run_one(block_ms=1) is None  # nothing left
    stored = q.get(job.id)
    assert stored.attempts == 3 and stored.finished_at is not None
    assert stored.errors == ("exit status 2: no artifacts", "timed out after 60 s", "exit status 1: boom")


def test_a_dead_runners_job_is_run_again_by_another(redis_server) -> None:  # type: ignore[no-untyped-def]
    q = queue(redis_server.url)
    job = q.submit("evaluate", {"artifacts": "/a", "judgments": "/j.csv"}, max_attempts=2, timeout_s=60)
    taken = q.take("dead", block_ms=1, reclaim_idle_ms=60_000)
    assert taken is not None
    q.save(taken[1].started(1.0, "dead"))  # it started the job and died
    assert JobRunner(q, "r2", reclaim_idle_ms=3_600_000, run=Scripted()).run_one(block_ms=1) is None  # not yet idle
    run = Scripted(RunOutcome(True, "{}"))
    done = JobRunner(q, "r2", reclaim_idle_ms=0, run=run).run_one(block_ms=1)
    assert done is not None and done.status == "succeeded" and done.attempts == 2
    assert q.get(job.id).worker == "r2" and q.streams.groups(q.stream)[0]["name"] == GROUP


def test_commands_run_in_their_own_process_and_time_out(redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPREC_")}
    failed = run_command(
        ["eval", "search", "--artifacts", str(tmp_path / "none"), "--judgments", str(tmp_path / "j.csv")],
        timeout_s=120,
        on_line=lines.append,
        env=env,
    )
    assert not failed.ok and failed.error is not None and failed.error.startswith("exit status 2")
    assert any("shoprec: error" in line for line in lines)
    # a worker never stops on its own: the timeout kills it
    env |= {"SHOPREC_REDIS_URL": redis_server.url, "SHOPREC_REDIS_PREFIX": "t:"}
    hung = run_command(["worker"], timeout_s=3, on_line=lines.append, env=env)
    assert not hung.ok and hung.error == "timed out after 3 s"
    assert sys.executable


def test_the_trainer_keeps_new_events_and_queues_a_retrain_every_n(redis_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = Pipeline(redis_server.url, "t:")
    q = JobQueue(p.store, "t:")
    audit = AuditLog(tmp_path / "audit.jsonl", lambda: 0.0)
    args = {"products": "p.csv", "events": str(tmp_path / "recent.jsonl"), "registry": "reg"}
    clock = Clock()

    def trainer() -> ContinuousTrainer:
        t = ContinuousTrainer(
            p.streams,
            p.keys,
            q,
            JsonlEventLog(tmp_path / "recent.jsonl"),
            RetrainSchedule(every_events=50, every_s=600),
            args,
            audit=audit,
            clock=clock,
            batch=40,
        )
        t.setup()
        return t

    events = seeded_events(120)
    p.sink.append(events[:100])
    first = trainer()
    while first.step(block=False):
        pass
    assert len(first.submitted) == 1 and first.new_events == 20  # batches of 40: due at 80, 20 since
    assert [j.kind for j in q.list()] == ["retrain"] and q.list()[0].args == args
    # a crash after keeping a batch and before acknowledging it: the restarted trainer keeps it once
    p.sink.append(events[100:])
    p.streams.read_group(p.keys.events, "trainer", "trainer", count=20, block_ms=None)
    second = trainer()
    while second.step(block=False):
        pass
    kept = [e.event_id for e in JsonlEventLog(tmp_path / "recent.jsonl").read()]
    assert kept == [e.event_id for e in events]
    assert second.new_events == 20 and not second.submitted
    clock.now += 600  # T minutes with new events: due
    assert second.maybe_submit() is not None
    actions = [json.loads(line)["action"] for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert actions == ["training.scheduled"] * 2
