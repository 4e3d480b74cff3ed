"""A continuous-training run on a time split of the YOOCHOOSE training clicks.

    .venv/bin/python bench/continuous_training.py [--clicks CLICKS] [--base-share 0.5]
        [--max-train-s 60] [--max-events N] [--json]

1. The clicks in time order (a session is a user) are split: the first ``--base-share`` is the
   base; version 1 is built on it (catalog: the items, titled "item <id>"; recommenders:
   popularity, co-occurrence, SASRec) and promoted into a fresh registry.
2. The rest is appended to the event stream of a redis-server of its own (the sink
   ``POST /v1/events`` uses). The continuous trainer (``shoprec worker --train``'s
   ``ContinuousTrainer``, every N events = the streamed part) keeps them and queues a
   ``retrain`` job; a job runner (``shoprec worker --jobs``'s ``JobRunner``) runs it as a
   ``shoprec retrain`` process: build on the base and the streamed events but the last
   ``--holdout`` share, push, promote only through the registry's gates, scored side by side with
   version 1 on the held-out slice.
3. Reported: both versions' next-click HR@20 and NDCG@10 on the held-out slice, every gate and
   the decision (also in the audit log).

Search is not what this run is about: the gates' search set is a synthetic "item <id>" lookup
(the clicks have no queries), the same for both versions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from events import DEFAULT_DATA, free_port, read_clicks, redis_up, wait_until  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clicks", type=Path, default=DEFAULT_DATA / "clicks_train.tsv")
    ap.add_argument("--base-share", type=float, default=0.5)
    ap.add_argument("--holdout", type=float, default=0.2, help="share of the streamed events held out")
    ap.add_argument("--max-train-s", type=float, default=60.0, help="SASRec's training budget per build")
    ap.add_argument("--max-events", type=int, help="only the first N clicks")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from shoprec.adapters.eventlog import JsonlEventLog
    from shoprec.adapters.eventstream import RedisEventStream, StreamKeys
    from shoprec.adapters.jobs import JobQueue
    from shoprec.adapters.redis import RedisStore, StreamCommands
    from shoprec.background.jobs import JobRunner
    from shoprec.background.training import ContinuousTrainer
    from shoprec.core.jobs import RetrainSchedule
    from shoprec.pipeline.build import BuildOptions, build
    from shoprec.registry import gates
    from shoprec.registry.store import Registry
    from shoprec.security.audit import AuditLog
    from shoprec.types import Event, Product

    clicks = read_clicks(args.clicks)
    if args.max_events:
        clicks = clicks[: args.max_events]
    events = [Event(f"s{c.session}", c.item, "click", c.time, event_id=f"c{c.row}") for c in clicks]
    cut = int(len(events) * args.base_share)
    base, streamed = events[:cut], events[cut:]
    items = sorted({e.item_id for e in events})
    products = [Product(id=i, title=f"item {i}") for i in items]

    with tempfile.TemporaryDirectory(prefix="shoprec-continuous-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "products.jsonl").write_text(
            "".join(json.dumps({"id": p.id, "title": p.title}) + "\n" for p in products)
        )
        JsonlEventLog(tmp / "base.jsonl").append(base)
        judgments = tmp / "judgments.csv"
        # the exact item is relevant (3), its neighbour in id order is not (1): gains need a floor
        step = max(1, len(items) // 200)
        judgments.write_text(
            "query,product_id,relevance\n"
            + "".join(f"item {i},{i},3\nitem {i},{items[n - 1]},1\n" for n, i in enumerate(items) if n % step == 1)
        )
        options = BuildOptions(recommender_max_train_s=args.max_train_s, ladder=False)
        t = time.perf_counter()
        build(products, tmp / "v1", events=base, options=options, progress=False)
        registry = Registry(tmp / "registry")
        v1 = gates.push(registry, tmp / "v1", judgments=judgments)["id"]
        gates.promote(registry, v1, judgments=judgments)
        print(f"version 1 ({v1}) built on {len(base):,} clicks in {time.perf_counter() - t:.0f} s", file=sys.stderr)

        port = free_port()
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed")
        redis = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(tmp),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: redis_up(port), "redis-server", 30)
            store = RedisStore(f"redis://127.0.0.1:{port}/0", socket_timeout_s=10)
            keys, audit = StreamKeys("ct:"), AuditLog(tmp / "audit.jsonl", time.time)
            queue = JobQueue(store, "ct:")
            job_args = {
                "products": str(tmp / "products.jsonl"),
                "events": str(tmp / "recent.jsonl"),
                "base_events": str(tmp / "base.jsonl"),
                "registry": str(tmp / "registry"),
                "holdout": repr(args.holdout),
                "judgments": str(judgments),
                "work": str(tmp / "work"),
                "max_train_s": repr(args.max_train_s),
            }
            trainer = ContinuousTrainer(
                StreamCommands(store),
                keys,
                queue,
                JsonlEventLog(tmp / "recent.jsonl"),
                RetrainSchedule(every_events=len(streamed), every_s=1e9),
                job_args,
                audit=audit,
                job_timeout_s=3600,
            )
            trainer.setup()
            sink = RedisEventStream(store, keys, max_backlog=10**7, durability="always")
            for start in range(0, len(streamed), 500):
                sink.append(streamed[start : start + 500])
            while not trainer.submitted and trainer.step(block=False):
                pass
            print(f"streamed {len(streamed):,} clicks; retrain job {trainer.submitted}", file=sys.stderr)
            t = time.perf_counter()
            job = JobRunner(queue, "runner", reclaim_idle_ms=3_600_000).run_one(block_ms=1000)
            retrain_s = time.perf_counter() - t
        finally:
            redis.terminate()
            redis.wait(timeout=30)
        if job is None or job.status != "succeeded":
            raise SystemExit(f"the retrain job did not succeed: {job}")
        decision: dict[str, Any] = job.result
        entries = [json.loads(line) for line in (tmp / "audit.jsonl").read_text().splitlines()]
        # the job's own audit went to SHOPREC_AUDIT_LOG (unset here): the decision is its JSON result
        actions = [e["action"] for e in entries]

    ev = decision["evaluations"]
    cand, cur = decision["candidate"], decision["current"]
    print("| version | trained on | held-out users | HR@20 | NDCG@10 |\n|---|---|---|---|---|")
    print(
        f"| {cur} (current) | {len(base):,} clicks | {ev[cur]['users']} | "
        f"{ev[cur]['hr@20']:.4f} | {ev[cur]['ndcg@10']:.4f} |"
    )
    print(
        f"| {cand} (retrained) | {decision['train_events']:,} clicks | {ev[cand]['users']} | "
        f"{ev[cand]['hr@20']:.4f} | {ev[cand]['ndcg@10']:.4f} |"
    )
    print(f"decision: {'promoted' if decision['promoted'] else 'refused'}")
    for g in decision.get("gates", []):
        print(f"- {g['message']}")
    if not decision["promoted"]:
        print(decision["refusal"])
    summary = {
        "promoted": decision["promoted"],
        "current_hr@20": ev[cur]["hr@20"],
        "candidate_hr@20": ev[cand]["hr@20"],
        "current_ndcg@10": ev[cur]["ndcg@10"],
        "candidate_ndcg@10": ev[cand]["ndcg@10"],
        "holdout_users": decision["holdout_users"],
        "base_events": len(base),
        "train_events": decision["train_events"],
        "retrain_s": round(retrain_s, 1),
        "trainer_audit": actions,
    }
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
