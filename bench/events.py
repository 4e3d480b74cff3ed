"""The event stream under a steady replay: throughput, end-to-end lag, and next-click quality
of the near-line state against the batch-built models.

    .venv/bin/python bench/events.py [--train CLICKS] [--test CLICKS] [--rate 2500] [--batch 25]
        [--max-events N] [--appendfsync always|everysec|no] [--json]
    .venv/bin/python bench/events.py --durability-cost [--threads 8] [--batch 25] [--max-events N]

Defaults: the YOOCHOOSE sample in ../shared/data/yoochoose (read in place, never copied).

1. Artifacts for the items of both files (titles "item <id>", the MiniLM encoder; cached in
   .shoprec/bench-events), a redis-server of its own (AOF with ``--appendfsync``), a shoprec
   server (``events_backend=redis``) and one ``shoprec worker``, each in a process of its own.
2. The training clicks, in time order (a session is a user), are posted to ``POST /v1/events``
   at a fixed rate, ``--batch`` events a request, open loop (a slow answer does not slow the
   schedule; a 503 is retried after 50 ms, same event ids). Every ``--probe-every``-th request
   also carries a probe: a view by a new user of an item outside the catalog (it changes no
   real item's state), and ``GET /v1/recommend?user_id=<probe user>`` is polled every 5 ms until
   its ``history_length`` is 1. Lag = that moment - the 202's arrival.
3. Quality: every click after the first of each test session is predicted from the clicks
   before it (targets unseen in training are skipped, as for the batch models). Near-line: the
   rows and popularity the service reads (``NearlineStore.view_of``), ranked by
   ``shoprec.core.nearline.rank``. Batch: ``CoOccurrenceModel`` built from the same training
   clicks (and popularity, for reference), scored as ``shoprec eval sessions`` scores it.

The last stdout line of ``--json`` is one JSON object with ``events_per_s``, ``lag_p50_ms``,
``lag_p99_ms``, ``hr@20``, ``mrr@20``, ``batch_hr@20``, ``batch_mrr@20`` and more.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared/data/yoochoose"
PREFIX = "bench:"
KS = (20,)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Click:
    session: str
    item: str
    time: float
    row: int


def read_clicks(path: Path) -> list[Click]:
    """``SessionId  ItemId  Time`` rows (header optional), in time order (stable)."""
    from shoprec.core.sessions import parse_clicks

    lines = path.read_text(encoding="utf-8").splitlines()
    parse_clicks(lines, str(path))  # validates every row: a bad one stops here with file:line
    clicks = []
    for n, line in enumerate(lines):
        parts = line.split("\t")
        if len(parts) != 3 or parts[0].strip().lower() == "sessionid":
            continue
        clicks.append(Click(parts[0].strip(), parts[1].strip(), float(parts[2]), n))
    return sorted(clicks, key=lambda c: (c.time, c.row))


def sessions_of(clicks: list[Click]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in sorted(clicks, key=lambda c: (c.time, c.row)):
        out.setdefault(c.session, []).append(c.item)
    return out


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def build_artifacts(items: list[str], cache: Path) -> Path:
    """Artifacts over ``items`` (titles "item <id>"), built once per item set."""
    from shoprec.pipeline.build import BuildOptions, build
    from shoprec.types import Product

    digest = hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]
    out = cache / f"artifacts-{digest}"
    if (out / "manifest.json").is_file():
        return out
    products = [Product(id=i, title=f"item {i}") for i in items]
    options = BuildOptions(recommender=False, personalize=False, ladder=False)
    build(products, out, options=options, progress=False)
    return out


def wait_until(check: Any, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


class Processes:
    """redis-server, a shoprec server and a worker, stopped together."""

    def __init__(self, workdir: Path, artifacts: Path, appendfsync: str) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        redis_port, http_port = free_port(), free_port()
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.url = f"http://127.0.0.1:{http_port}"
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed")
        aof = ["--appendonly", "no"] if appendfsync == "no" else ["--appendonly", "yes", "--appendfsync", appendfsync]
        self._start([binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", *aof,
                     "--dir", str(workdir)])  # fmt: skip
        wait_until(self._redis_up, "redis-server", 30)
        from shoprec.security.apikeys import KeyStore

        keys = workdir / "keys.json"
        _, self.api_key = KeyStore(keys, time.time, iterations=1).create("bench", ("events", "search"))
        durability = {"always": "always", "everysec": "everysec", "no": "unchecked"}[appendfsync]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPREC_")} | {
            "SHOPREC_ARTIFACTS": str(artifacts),
            "SHOPREC_REQUIRE_SIGNATURE": "false",
            "SHOPREC_KEYS_FILE": str(keys),
            "SHOPREC_DATA_DIR": str(workdir),
            "SHOPREC_REDIS_URL": self.redis_url,
            "SHOPREC_REDIS_PREFIX": PREFIX,
            "SHOPREC_EVENTS_BACKEND": "redis",
            "SHOPREC_EVENTS_DURABILITY": durability,
            "SHOPREC_LOG_LEVEL": "warning",
            "OMP_WAIT_POLICY": "PASSIVE",
        }
        self._start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "shoprec.http.app:app_from_env",
                "--host",
                "127.0.0.1",
                "--port",
                str(http_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ]  # fmt: skip
        )
        wait_until(self._ready, "the shoprec server", 300)
        self._start([sys.executable, "-m", "shoprec.cli", "worker", "--consumer", "bench-worker"])

    def _start(self, argv: list[str]) -> None:
        log = (self.workdir / f"{len(self.procs)}.log").open("wb")
        self.procs.append(subprocess.Popen(argv, env=getattr(self, "env", None), stdout=log, stderr=log))

    def _redis_up(self) -> bool:
        return redis_up(int(self.redis_url.rsplit(":", 1)[1].split("/")[0]))

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# --------------------------------------------------------------------------- replay


@dataclass
class Replay:
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    first_send: float = 0.0
    last_accept: float = 0.0
    post_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    lost_probes: int = 0


async def replay(url: str, api_key: str, clicks: list[Click], *, rate: float, batch: int, probe_every: int) -> Replay:
    result = Replay()
    headers = {"X-API-Key": api_key}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:

        async def probe(user: str) -> None:
            accepted_at = time.perf_counter()
            deadline = accepted_at + 60
            while time.perf_counter() < deadline:
                r = await client.get("/v1/recommend", params={"user_id": user, "k": 1})
                if r.status_code == 200 and r.json()["history_length"] >= 1:
                    result.lag_ms.append((time.perf_counter() - accepted_at) * 1000)
                    return
                await asyncio.sleep(0.005)
            result.lost_probes += 1

        async def send(events: list[dict[str, Any]], probe_user: str | None) -> None:
            while True:
                t = time.perf_counter()
                r = await client.post("/v1/events", json={"events": events})
                if r.status_code == 202:
                    now = time.perf_counter()
                    result.post_ms.append((now - t) * 1000)
                    result.accepted += len(events) - (probe_user is not None)
                    result.last_accept = max(result.last_accept, now)
                    if probe_user is not None:
                        await probe(probe_user)
                    return
                if r.status_code != 503:
                    raise SystemExit(f"POST /v1/events answered {r.status_code}: {r.text[:300]}")
                result.refused += 1
                await asyncio.sleep(0.05)

        tasks = []
        result.first_send = start = time.perf_counter()
        for n, i in enumerate(range(0, len(clicks), batch)):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            events = [
                {"id": f"c{c.row}", "user_id": f"s{c.session}", "item_id": c.item, "type": "click", "timestamp": c.time}
                for c in clicks[i : i + batch]
            ]
            probe_user = None
            if n % probe_every == 0:
                probe_user = f"probe-{n}"
                events.append({"id": f"p{n}", "user_id": probe_user, "item_id": f"probe-item-{n}", "type": "view"})
            result.sent += len(events)
            tasks.append(asyncio.create_task(send(events, probe_user)))
        await asyncio.gather(*tasks)
    return result


# --------------------------------------------------------------------------- quality


def evaluate(redis_url: str, train: list[Click], test: list[Click]) -> dict[str, float]:
    from shoprec.adapters.nearline import NearlineStore
    from shoprec.adapters.redis import RedisStore
    from shoprec.core.nearline import rank
    from shoprec.core.sequences import target_ranks
    from shoprec.core.sessions import hit_and_mrr, next_click_cases
    from shoprec.models.recommender import CoOccurrenceModel, PopularityModel

    train_sessions = sessions_of(train)
    vocab = sorted({i for s in train_sessions.values() for i in s})
    index = {item: n + 1 for n, item in enumerate(vocab)}
    histories, targets, skipped = next_click_cases(sessions_of(test), index)
    train_ids = [[index[i] for i in s] for s in train_sessions.values()]
    out: dict[str, float] = {"cases": len(targets), "skipped_targets": skipped}

    def batch_metrics(model: Any) -> dict[str, float]:
        ranks = np.concatenate(
            [
                target_ranks(np.asarray(model.score_ids(histories[s : s + 512])), np.asarray(targets[s : s + 512]))
                for s in range(0, len(targets), 512)
            ]
        )
        return hit_and_mrr(ranks, KS)

    for name, model in (
        ("batch", CoOccurrenceModel.from_ids(train_ids, vocab)),
        ("popularity", PopularityModel.from_ids(train_ids, vocab)),
    ):
        for metric, value in batch_metrics(model).items():
            out[f"{name}_{metric}"] = value

    store = NearlineStore(RedisStore(redis_url, socket_timeout_s=10), prefix=PREFIX)
    popular = store.view_of([]).popular
    ranks = []
    for history, target in zip(histories, targets, strict=True):
        view = store.view_of([vocab[i - 1] for i in history], popular=False)
        view = type(view)(view.history, view.rows, popular)
        top = rank(view, store.rule, max(KS))
        want = vocab[target - 1]
        ranks.append(top.index(want) if want in top else max(KS))
    for metric, value in hit_and_mrr(np.asarray(ranks), KS).items():
        out[metric] = value
    return out


# --------------------------------------------------------------------------- durability cost


def durability_cost(clicks: list[Click], batch: int, threads: int) -> list[dict[str, Any]]:
    """The append alone (no HTTP, no worker): ``threads`` clients appending ``batch``-event
    batches to a redis-server under each AOF setting; events/s and per-batch p50/p99."""
    from concurrent.futures import ThreadPoolExecutor

    from shoprec.adapters.eventstream import RedisEventStream, StreamKeys
    from shoprec.adapters.redis import RedisStore
    from shoprec.types import Event

    events = [Event(f"s{c.session}", c.item, "click", c.time, event_id=f"c{c.row}") for c in clicks]
    batches = [events[i : i + batch] for i in range(0, len(events), batch)]
    rows = []
    for appendfsync in ("always", "everysec", "no"):
        with tempfile.TemporaryDirectory(prefix="shoprec-aof-") as tmp:
            port = free_port()
            aof = (
                ["--appendonly", "no"] if appendfsync == "no" else ["--appendonly", "yes", "--appendfsync", appendfsync]
            )
            redis = subprocess.Popen(
                [
                    shutil.which("redis-server") or "redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    *aof,
                    "--dir",
                    tmp,
                ],  # fmt: skip
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_until(lambda port=port: redis_up(port), "redis-server", 30)
                store = RedisStore(f"redis://127.0.0.1:{port}/0", socket_timeout_s=10)
                sink = RedisEventStream(store, StreamKeys(PREFIX), max_backlog=10**8, durability="unchecked")
                latencies: list[float] = []

                def append(b: list[Event], sink: RedisEventStream = sink, out: list[float] = latencies) -> None:
                    t = time.perf_counter()
                    sink.append(b)
                    out.append((time.perf_counter() - t) * 1000)

                start = time.perf_counter()
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(append, batches))
                elapsed = time.perf_counter() - start
            finally:
                redis.terminate()
                redis.wait(timeout=30)
        rows.append(
            {
                "appendfsync": appendfsync,
                "events_per_s": round(len(events) / elapsed),
                "batch_p50_ms": round(percentile(latencies, 50), 2),
                "batch_p99_ms": round(percentile(latencies, 99), 2),
            }
        )
    return rows


# --------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, default=DEFAULT_DATA / "clicks_train.tsv")
    ap.add_argument("--test", type=Path, default=DEFAULT_DATA / "clicks_test.tsv")
    ap.add_argument("--rate", type=float, default=2500.0, help="events per second offered")
    ap.add_argument("--batch", type=int, default=25, help="events per POST")
    ap.add_argument("--probe-every", type=int, default=10, help="a lag probe every N requests")
    ap.add_argument("--max-events", type=int, help="replay only the first N training clicks (the batch models too)")
    ap.add_argument("--appendfsync", choices=("always", "everysec", "no"), default="always")
    ap.add_argument("--cache", type=Path, default=REPO / ".shoprec/bench-events")
    ap.add_argument("--durability-cost", action="store_true", help="only time the append under each AOF setting")
    ap.add_argument("--threads", type=int, default=8, help="--durability-cost: concurrent appending clients")
    ap.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    args = ap.parse_args()

    train, test = read_clicks(args.train), read_clicks(args.test)
    if args.max_events:
        train = train[: args.max_events]
    if args.durability_cost:
        rows = durability_cost(train, args.batch, args.threads)
        print(
            f"| appendfsync | events/s ({args.threads} clients, {args.batch} a batch) | batch p50 ms | batch p99 ms |"
        )
        print("|---|---|---|---|")
        for r in rows:
            print(f"| {r['appendfsync']} | {r['events_per_s']:,} | {r['batch_p50_ms']} | {r['batch_p99_ms']} |")
        if args.json:
            print(json.dumps({"durability_cost": rows}))
        return 0
    items = sorted({c.item for c in train} | {c.item for c in test})
    t = time.perf_counter()
    artifacts = build_artifacts(items, args.cache)
    print(f"artifacts for {len(items)} items ready in {time.perf_counter() - t:.0f} s", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="shoprec-bench-events-") as tmp:
        procs = Processes(Path(tmp), artifacts, args.appendfsync)
        try:
            result = asyncio.run(
                replay(procs.url, procs.api_key, train, rate=args.rate, batch=args.batch, probe_every=args.probe_every)
            )
            from shoprec.adapters.nearline import NearlineStore
            from shoprec.adapters.redis import RedisStore

            state = NearlineStore(RedisStore(procs.redis_url, socket_timeout_s=10), prefix=PREFIX)
            wait_until(lambda: state.stats().get("applied", 0) >= result.sent, "the worker to apply everything", 600)
            drained = time.perf_counter()
            quality = evaluate(procs.redis_url, train, test)
        finally:
            procs.stop()

    elapsed = result.last_accept - result.first_send
    summary: dict[str, Any] = {
        "events": len(train),
        "offered_per_s": args.rate,
        "events_per_s": round(result.accepted / elapsed, 1) if elapsed > 0 else 0.0,
        "applied_per_s": round(result.sent / (drained - result.first_send), 1),
        "post_p50_ms": round(percentile(result.post_ms, 50), 2),
        "post_p99_ms": round(percentile(result.post_ms, 99), 2),
        "lag_p50_ms": round(percentile(result.lag_ms, 50), 1),
        "lag_p99_ms": round(percentile(result.lag_ms, 99), 1),
        "probes": len(result.lag_ms),
        "lost_probes": result.lost_probes,
        "refused_503": result.refused,
        "appendfsync": args.appendfsync,
        "hr@20": round(quality["hr@20"], 4),
        "mrr@20": round(quality["mrr@20"], 4),
        "batch_hr@20": round(quality["batch_hr@20"], 4),
        "batch_mrr@20": round(quality["batch_mrr@20"], 4),
        "popularity_hr@20": round(quality["popularity_hr@20"], 4),
        "hr_ratio": round(quality["hr@20"] / quality["batch_hr@20"], 4) if quality["batch_hr@20"] else 0.0,
        "cases": int(quality["cases"]),
        "skipped_targets": int(quality["skipped_targets"]),
    }
    rows = [
        ("events replayed", f"{summary['events']:,}"),
        ("offered / accepted events/s", f"{args.rate:,.0f} / {summary['events_per_s']:,.0f}"),
        ("applied events/s (to drained)", f"{summary['applied_per_s']:,.0f}"),
        ("POST p50 / p99 ms", f"{summary['post_p50_ms']} / {summary['post_p99_ms']}"),
        ("lag p50 / p99 ms", f"{summary['lag_p50_ms']} / {summary['lag_p99_ms']} ({summary['probes']} probes)"),
        ("503 answers", str(summary["refused_503"])),
        ("Redis appendfsync", args.appendfsync),
        ("near-line HR@20 / MRR@20", f"{summary['hr@20']:.4f} / {summary['mrr@20']:.4f}"),
        ("batch co-occurrence HR@20 / MRR@20", f"{summary['batch_hr@20']:.4f} / {summary['batch_mrr@20']:.4f}"),
        ("popularity HR@20", f"{summary['popularity_hr@20']:.4f}"),
        ("near-line / batch HR@20", f"{summary['hr_ratio']:.3f}"),
    ]
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
