"""The ``shoprec worker`` and ``shoprec jobs`` commands (registered by :mod:`shoprec.cli`):
the event-stream worker, the job runner, the continuous trainer, and the job queue's client."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from shoprec.core.jobs import JOB_KINDS
from shoprec.errors import ShoprecError
from shoprec.settings import Settings

if TYPE_CHECKING:
    from shoprec.adapters.jobs import JobQueue


def cmd_worker(args: argparse.Namespace) -> int:
    import signal
    import threading

    settings = Settings.load()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.jobs:
        from shoprec.background.jobs import JobRunner

        queue = _job_queue(settings)
        name = args.consumer or f"runner-{os.getpid()}"
        # a job runs as long as its timeout while its entry is pending: claim only past that
        runner = JobRunner(queue, name, reclaim_idle_ms=int((settings.jobs_timeout_s + 60) * 1000))
        print(f"job runner {name} on {queue.stream} ({settings.redis_url})", file=sys.stderr)
        runner.run(stop)
        return 0
    if args.train:
        from shoprec.background.training import trainer_from_settings

        trainer = trainer_from_settings(
            settings,
            products=args.products,
            registry=args.registry,
            base_events=args.base_events,
            consumer=args.consumer,
        )
        print(f"continuous training on {trainer.keys.events}: {trainer.schedule}", file=sys.stderr)
        trainer.run(stop, until_idle=args.until_idle)
        return 0
    from shoprec.adapters.worker import worker_from_settings

    worker = worker_from_settings(settings, consumer=args.consumer)
    print(
        f"worker {worker.options.consumer} of group {worker.options.group} on {worker.keys.events} "
        f"({settings.redis_url})",
        file=sys.stderr,
    )
    totals = worker.run(stop, until_idle=args.until_idle)
    print(json.dumps({"applied": totals.applied, "acked": totals.acked, "dead_lettered": totals.dead_lettered}))
    return 0


def _job_queue(settings: Settings) -> JobQueue:
    # imported here: building the command line must not load redis-py
    from shoprec.adapters.jobs import JobQueue
    from shoprec.adapters.redis import RedisStore

    if settings.redis_url is None:
        raise ShoprecError("jobs need Redis: set SHOPREC_REDIS_URL")
    return JobQueue(RedisStore(settings.redis_url, socket_timeout_s=5.0), settings.redis_prefix)


def cmd_jobs_submit(args: argparse.Namespace) -> int:
    settings = Settings.load()
    values: dict[str, Any] = {}
    for item in args.arg or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ShoprecError(f"--arg takes NAME=VALUE, got {item!r}")
        values[name] = value
    if args.steps:
        values["steps"] = list(args.steps)
    timeout_s = min(args.timeout_s or settings.jobs_timeout_s, settings.jobs_timeout_s)
    job = _job_queue(settings).submit(
        args.kind, values, max_attempts=args.max_attempts or settings.jobs_max_attempts, timeout_s=timeout_s
    )
    print(f"queued job {job.id} ({job.kind})", file=sys.stderr)
    print(json.dumps(job.public()))
    return 0


def cmd_jobs_list(args: argparse.Namespace) -> int:
    jobs = _job_queue(Settings.load()).list(args.limit)
    print(f"{'id':16}  {'kind':8}  {'status':9}  attempts  progress")
    for j in jobs:
        print(f"{j.id:16}  {j.kind:8}  {j.status:9}  {j.attempts}/{j.max_attempts}       {j.progress[:60]}")
    if args.json:
        print(json.dumps({"jobs": [j.public() for j in jobs]}))
    return 0


def cmd_jobs_show(args: argparse.Namespace) -> int:
    print(json.dumps(_job_queue(Settings.load()).get(args.id).public(), indent=None if args.json else 2))
    return 0


def add_worker_commands(sub: Any) -> None:
    """Register ``worker`` and ``jobs`` on the ``shoprec`` parser's subcommands."""
    p = sub.add_parser("worker", help="work off the request path: the event stream (default), jobs, or training")
    p.add_argument("--consumer", help="this consumer's name in its group (default: host-pid); keep it across restarts")
    p.add_argument("--until-idle", action="store_true", help="stop once nothing is pending or new")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--jobs", action="store_true", help="run queued background jobs instead")
    mode.add_argument("--train", action="store_true", help="continuous training: schedule retrain jobs on new events")
    p.add_argument("--products", help="--train: the catalog the retrained versions are built from")
    p.add_argument("--registry", help="--train: the registry the retrained versions are pushed to and promoted in")
    p.add_argument("--base-events", help="--train: events every retrain also learns from (the first training set)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("jobs", help="background jobs: submit, list, show")
    js = p.add_subparsers(dest="jobs_command", required=True)
    j = js.add_parser("submit", help="queue a job for `shoprec worker --jobs`")
    j.add_argument("kind", choices=JOB_KINDS)
    j.add_argument("--arg", action="append", metavar="NAME=VALUE", help="a job argument (see docs/EVENTS.md)")
    j.add_argument("--steps", nargs="*", help="optimize: the steps")
    j.add_argument("--max-attempts", type=int)
    j.add_argument("--timeout-s", type=float)
    j.set_defaults(func=cmd_jobs_submit)
    j = js.add_parser("list", help="the most recent jobs")
    j.add_argument("--limit", type=int, default=50)
    j.add_argument("--json", action="store_true")
    j.set_defaults(func=cmd_jobs_list)
    j = js.add_parser("show", help="one job's record: status, attempts, progress, result, errors")
    j.add_argument("id")
    j.add_argument("--json", action="store_true", help="one line")
    j.set_defaults(func=cmd_jobs_show)
