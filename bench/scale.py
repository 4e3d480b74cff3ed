"""Scaling out: one ``shoprec serve`` against the same app as Ray Serve replicas, side by side.

    .venv/bin/python bench/scale.py [--json] [--artifacts DIR] [--replicas 1,2[,4,8]]
                                    [--duration-s S] [--refine N] [--failover-s S] [--skip ladder,failover]
                                    [--router [--router-s S]] [--node-stop]

Runs itself (and Ray, and its load) in a network namespace of its own with only loopback up
(``unshare -rn``; it re-executes itself there) and checks from inside, with everything
started, that nothing listens outside loopback. Serves the optimized Home Depot build
(``bench/serve_artifacts.py``; ``--artifacts`` another), caches off, distinct queries, with
the open-loop generator of ``bench/loadgen.py``, one system at a time:

- ``single``: ``shoprec serve`` (one uvicorn process);
- ``ray_N``: ``shoprec.cluster.ray_serve`` with N replicas (1 CPU each) behind Ray's proxy,
  for each N of ``--replicas``;

each at full quality (the ladder held at its best level) and, unless ``--skip ladder``,
``single`` and the largest replica count with the degradation ladder on (as served by
default). Per system: the throughput (the highest
rate with p99 <= 50 ms, doubling from 10/s then bisecting ``--refine`` times; failures count
as infinitely slow) and the sustainable rate (kept up with, whatever the latency).

- proxy overhead: p50 of ``/readyz`` (a trivial routed endpoint) at 50/s through Ray's proxy
  to one replica minus the same on ``shoprec serve``, and the same difference for a search;
- routers (with ``--router``): two replicas, one starved of CPU (SIGSTOP for 40 ms of
  every 60 ms), at half of their full-quality throughput for ``--router-s`` seconds each:
  Ray's default router (power of two choices on queue length) against
  ``LatencyAwareRouter`` (two choices on recent latency x queue length);
- node stop (with ``--node-stop``): two Ray nodes on this machine (``ray.cluster_utils``,
  what a second ``ray start`` gives), one replica each, a steady load through the head's
  proxy for ``--failover-s``; a third of the way in the second node is stopped (its raylet
  and workers killed): failed requests, p99, and whether the head's replica answered
  everything from 5 s after;
- failover (unless ``--skip failover``), right after the two-replica sweep: two replicas
  under a steady load at half of their full-quality throughput for ``--failover-s`` seconds;
  a third of the way in one replica is SIGKILLed. Reported: the failed fraction of the
  window's requests, the window's p99, and the time until Ray had a replacement replica
  running (``failover_recovery_s``).

With ``--json`` the last stdout line is one JSON object: ``single_rps``, ``ray_rps`` (by
replica count), ``proxy_overhead_ms``, ``failover_failed_fraction``,
``failover_recovery_s``, the ladder variants (``single_ladder_rps``, ``ray_ladder_rps``),
the ratios, every step's row, and the loopback check. The defaults take about 7 min on
2 (shared) cores; ``--router --node-stop`` adds about 3;
``--duration-s 8 --refine 2 --failover-s 60 --router-s 30`` is the longer run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402
from serve import BENCH_ENV, CACHE_OFF_ENV, FULL_QUALITY_ENV, Processes, free_port, load_queries, wait_ready  # noqa: E402
from serve_artifacts import served_artifacts  # noqa: E402

from shoprec.cluster import loopback  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
INNER = "SHOPREC_SCALE_BENCH_INNER"
LADDER_ENV = {"SHOPREC_DEGRADE_UNDER_LOAD": "true"}
P99_MS = 50.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    ap.add_argument("--artifacts", help="artifacts folder (default: the optimized Home Depot build)")
    ap.add_argument("--replicas", default="1,2", help="replica counts to measure (e.g. 1,2,4,8 on a 16-core machine)")
    ap.add_argument("--duration-s", type=float, default=3.0, help="measured seconds per step")
    ap.add_argument("--warmup-s", type=float, default=1.0)
    ap.add_argument("--first-warmup-s", type=float, default=3.0)
    ap.add_argument("--start-rate", type=float, default=10.0)
    ap.add_argument("--refine", type=int, default=1, help="bisections of the p99 <= 50 ms knee")
    ap.add_argument("--connections", type=int, default=128)
    ap.add_argument("--failover-s", type=float, default=20.0, help="the failover window (the issue asks for 60)")
    ap.add_argument("--router-s", type=float, default=10.0, help="each router's window, one replica starved")
    ap.add_argument("--router", action="store_true", help="also compare the routers with one replica starved")
    ap.add_argument("--node-stop", action="store_true", help="also stop one of two Ray nodes under load")
    ap.add_argument("--skip", default="", help="comma-separated: ladder, failover")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


# --- the namespace --------------------------------------------------------------------------


def run_in_namespace(argv: Sequence[str]) -> int:
    """Re-run this script inside its own network namespace (only ``lo`` up); pass its output on."""
    env = {**os.environ, INNER: "1", "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(loopback.namespace_command([PY, str(Path(__file__).resolve()), *argv]), env=env, cwd=ROOT)
    return proc.returncode


# --- systems --------------------------------------------------------------------------------


@contextmanager
def single(procs: Processes, artifacts: Path, env: dict[str, str], logdir: Path) -> Iterator[int]:
    port = free_port()
    log = logdir / "single.log"
    cmd = [str(ROOT / ".venv" / "bin" / "shoprec"), "serve", "--artifacts", str(artifacts), "--port", str(port)]
    proc = procs.start(cmd, env={**os.environ, **BENCH_ENV, **env}, log=log)
    wait_ready(proc, port, 300, "shoprec serve", log)
    try:
        yield port
    finally:
        procs.stop(proc)


class RayCluster:
    """Ray started here, the application (re)deployed with each configuration."""

    def __init__(self, port: int, temp_dir: str) -> None:
        import ray
        from ray import serve

        from shoprec.cluster import ray_serve

        self.ray, self.serve, self.rs, self.port = ray, serve, ray_serve, port
        ray.init(
            num_cpus=max(os.cpu_count() or 1, 2),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            _temp_dir=temp_dir,
        )
        serve.start(http_options={"host": "127.0.0.1", "port": port})

    def deploy(self, artifacts: Path, env: dict[str, str], replicas: int, router: str = "pow2") -> float:
        t0 = time.perf_counter()
        environ = self.rs.settings_environ({**BENCH_ENV, **env}, artifacts=str(artifacts))
        scale = self.rs.Scale(replicas=replicas, replica_cpus=1.0, router=router)
        self.serve.run(self.rs.application(environ, scale), name=self.rs.APP_NAME, route_prefix="/")
        return time.perf_counter() - t0

    def running(self) -> int:
        return int(self.rs.replica_count())

    def close(self) -> None:
        self.serve.shutdown()
        self.ray.shutdown()


def replica_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"ServeReplica:shoprec:shoprec" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return sorted(pids)


# --- load -----------------------------------------------------------------------------------


def sweep(port: int, args: argparse.Namespace, queries: list[str], offset: int) -> list[dict[str, object]]:
    return asyncio.run(
        loadgen.sweep(
            "127.0.0.1",
            port,
            "/v1/search?q={q}&k=10",
            queries[offset:] + queries[:offset],
            mode="distinct",
            rates=None,
            duration_s=args.duration_s,
            start_rate=args.start_rate,
            max_rate=6400,
            refine=args.refine,
            connections=args.connections,
            seed=args.seed,
            warmup_s=args.warmup_s,
            first_warmup_s=args.first_warmup_s,
            sustain_refine=0,
        )
    )


def p50(port: int, path: str, n: int = 150, rate: float = 50.0) -> float:
    step = asyncio.run(loadgen.run_step("127.0.0.1", port, [path] * n, rate, connections=8))
    lat = sorted((s.done - s.intended) * 1000 for s in step.samples[20:] if s.status == 200)
    return round(lat[len(lat) // 2], 3) if lat else float("nan")


def failover(cluster: RayCluster, rate: float, window_s: float, queries: list[str]) -> dict[str, Any]:
    """Steady load on two replicas; SIGKILL one a third of the way in."""
    before = replica_pids()
    n = max(1, int(rate * window_s))
    paths = loadgen.make_paths("/v1/search?q={q}&k=10", loadgen.distinct_stream(queries, n, offset=7, seed=1))
    found: dict[str, Any] = {}

    def kill() -> None:
        time.sleep(window_s / 3)  # the scenario's schedule: the kill lands a third of the way into the window
        victim = before[0]
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        found["killed_at_s"] = round(window_s / 3, 1)
        seen_down = False  # Ray's status may still count the killed replica for a moment
        while time.monotonic() - t_kill < window_s * 3:
            running = cluster.running()
            seen_down = seen_down or running < len(before)
            if seen_down and running == len(before) and set(replica_pids()) - set(before):
                found["recovery_s"] = round(time.monotonic() - t_kill, 2)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    step = asyncio.run(loadgen.run_step("127.0.0.1", cluster.port, paths, rate, connections=64, grace_s=10))
    killer.join(timeout=window_s * 3)
    row = step.summary(P99_MS)
    return {
        "rate": rate,
        "window_s": window_s,
        "requests": row["requests"],
        "failed": row["errors"],
        "failed_fraction": round(int(row["errors"]) / max(1, int(row["requests"])), 5),  # type: ignore[call-overload]
        "p99_ms": row["p99_ms"],
        "p50_ms": row["p50_ms"],
        "statuses": row["statuses"],
        **failures(step.samples),
        "recovery_s": found.get("recovery_s"),
        "replicas_before": before,
        "replicas_after": replica_pids(),
    }


def failures(samples: Sequence[Any]) -> dict[str, int]:
    """The failed requests split by who refused: shoprec sheds on purpose with a 503 carrying
    ``Retry-After`` (its front door or admission gate, e.g. while a replacement replica loads
    on the same cores); anything else (a 500 for a request lost with its replica, no answer)
    is a failure of the cluster."""
    failed = [s for s in samples if not 200 <= s.status < 300]
    shed = sum(1 for s in failed if s.status in (429, 503) and s.retry_after)
    return {"failed_shed_with_retry_after": shed, "failed_other": len(failed) - shed}


class Starver:
    """Starve one replica of CPU: SIGSTOP it for ``stop_ms`` of every ``period_ms`` (it runs at
    most the rest of the time, and stalls in between), until stopped; SIGCONT at the end."""

    def __init__(self, pid: int, stop_ms: float = 40.0, period_ms: float = 60.0) -> None:
        self.pid, self.stop_s, self.run_s = pid, stop_ms / 1000, (period_ms - stop_ms) / 1000
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            os.kill(self.pid, signal.SIGSTOP)
            self._done.wait(self.stop_s)
            os.kill(self.pid, signal.SIGCONT)
            self._done.wait(self.run_s)

    def __enter__(self) -> Starver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        os.kill(self.pid, signal.SIGCONT)


def routers(cluster: RayCluster, artifacts: Path, rate: float, window_s: float, queries: list[str]) -> dict[str, Any]:
    """Two replicas, one starved of CPU, at a fixed rate: Ray's default router against
    :class:`LatencyAwareRouter`, the same load for each."""
    found: dict[str, Any] = {"rate": rate, "window_s": window_s, "starved": "SIGSTOP 40 ms of every 60 ms"}
    n = max(1, int(rate * window_s))
    for router in ("pow2", "latency"):
        cluster.deploy(artifacts, {**CACHE_OFF_ENV, **FULL_QUALITY_ENV}, 2, router=router)
        paths = loadgen.make_paths("/v1/search?q={q}&k=10", loadgen.distinct_stream(queries, n, offset=11, seed=2))
        warm = paths[: max(1, int(rate * 2))]
        asyncio.run(loadgen.run_step("127.0.0.1", cluster.port, warm, rate, connections=64))
        with Starver(replica_pids()[0]):
            step = asyncio.run(loadgen.run_step("127.0.0.1", cluster.port, paths, rate, connections=64, grace_s=10))
        row = step.summary(P99_MS)
        found[router] = {k: row[k] for k in ("requests", "achieved_rps", "p50_ms", "p95_ms", "p99_ms", "errors")}
        print(f"[router {router}] {found[router]}", file=sys.stderr)
    a, b = found["pow2"]["p99_ms"], found["latency"]["p99_ms"]
    found["p99_latency_over_pow2"] = ratio(b, a)
    return found


def node_stop(artifacts: Path, rate: float, window_s: float, queries: list[str], temp_dir: str) -> dict[str, Any]:
    """Two Ray nodes on this machine (the second stands in for a second machine, as a second
    ``ray start`` would), one replica on each (``max_replicas_per_node=1``), a steady load
    through the head node's proxy; a third of the way in the second node is stopped at once
    (its raylet and every worker on it killed). The head node's replica carries the load."""
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from shoprec.cluster import ray_serve as rs

    # ray.cluster_utils writes the cluster's address to $RAY_TMPDIR/ray/ray_current_cluster
    # (default /tmp/ray) and does not create the folder: keep it inside this run's temp_dir
    os.environ["RAY_TMPDIR"] = temp_dir
    (Path(temp_dir) / "ray").mkdir(parents=True, exist_ok=True)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "temp_dir": temp_dir},
    )
    second = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    port = free_port()
    found: dict[str, Any] = {"rate": rate, "window_s": window_s}
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port, "location": "HeadOnly"})
        environ = rs.settings_environ({**BENCH_ENV, **CACHE_OFF_ENV, **FULL_QUALITY_ENV}, artifacts=str(artifacts))
        scale = rs.Scale(replicas=2, max_replicas_per_node=1, replica_cpus=1.0)
        serve.run(rs.application(environ, scale), name=rs.APP_NAME, route_prefix="/")
        nodes = {r["NodeID"] for r in ray.nodes() if r["Alive"]}
        found["nodes_before"], found["replicas_before"] = len(nodes), rs.replica_count()
        n = max(1, int(rate * window_s))
        paths = loadgen.make_paths("/v1/search?q={q}&k=10", loadgen.distinct_stream(queries, n, offset=13, seed=3))

        def stop_node() -> None:
            time.sleep(window_s / 3)  # the scenario's schedule: the node goes a third of the way in
            cluster.remove_node(second, allow_graceful=False)
            found["stopped_at_s"] = round(window_s / 3, 1)

        stopper = threading.Thread(target=stop_node, daemon=True)
        stopper.start()
        step = asyncio.run(loadgen.run_step("127.0.0.1", port, paths, rate, connections=64, grace_s=10))
        stopper.join()
        row = step.summary(P99_MS)
        t_stop = min(s.intended for s in step.samples) + window_s / 3
        after = [s for s in step.samples if s.intended >= t_stop + 5]
        found.update(
            requests=row["requests"],
            failed=row["errors"],
            **failures(step.samples),
            failed_fraction=round(int(row["errors"]) / max(1, int(row["requests"])), 5),  # type: ignore[call-overload]
            p99_ms=row["p99_ms"],
            answered_after_5s=sum(1 for s in after if s.status == 200),
            requests_after_5s=len(after),
            nodes_after=sum(1 for r in ray.nodes() if r["Alive"]),
            replicas_running_after=rs.replica_count(),
        )
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()
    return found


# --- the run --------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    artifacts = served_artifacts(args.artifacts).resolve()
    replica_counts = [int(r) for r in args.replicas.split(",") if r.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    tmp = Path(tempfile.mkdtemp(prefix="shoprec-scale-"))
    queries, _ = load_queries(tmp)
    modes = {"full": FULL_QUALITY_ENV, **({} if "ladder" in skip else {"ladder": LADDER_ENV})}
    results: dict[str, dict[str, Any]] = {}
    offset = 0
    procs = Processes()
    out: dict[str, Any] = {
        "artifacts": str(artifacts),
        "cpus": os.cpu_count(),
        "confinement_start": loopback.check().describe(),
    }
    try:
        for mode, env in modes.items():
            with single(procs, artifacts, {**CACHE_OFF_ENV, **env}, tmp) as port:
                name = f"single_{mode}"
                print(f"[{name}]", file=sys.stderr)
                if mode == "full":
                    out["single_readyz_p50_ms"] = p50(port, "/readyz")
                    out["single_search_p50_ms"] = p50(port, "/v1/search?q=cordless+drill&k=10", rate=10)
                rows = sweep(port, args, queries, offset)
                offset += 500
                results[name] = {
                    "rows": rows,
                    "rps": loadgen.throughput(rows),
                    "sustainable_rps": loadgen.sustainable(rows),
                }
        cluster = RayCluster(free_port(), str(tmp / "ray"))
        rate = max(5.0, round(0.5 * float(results["single_full"]["rps"] or 10.0), 1))
        try:
            for mode, env in modes.items():
                # the ladder side by side at the largest count only (each deploy reloads every replica)
                for n in replica_counts if mode == "full" else replica_counts[-1:]:
                    name = f"ray_{n}_{mode}"
                    ready_s = cluster.deploy(artifacts, {**CACHE_OFF_ENV, **env}, n)
                    print(f"[{name}] {cluster.running()} replica(s) ready in {ready_s:.1f} s", file=sys.stderr)
                    if n == 1 and mode == "full":
                        out["ray_readyz_p50_ms"] = p50(cluster.port, "/readyz")
                        out["ray_search_p50_ms"] = p50(cluster.port, "/v1/search?q=cordless+drill&k=10", rate=10)
                    if n == max(replica_counts) and mode == "full":
                        out["confinement"] = loopback.check().describe()
                    rows = sweep(cluster.port, args, queries, offset)
                    offset += 500
                    results[name] = {
                        "rows": rows,
                        "rps": loadgen.throughput(rows),
                        "sustainable_rps": loadgen.sustainable(rows),
                        "ready_s": round(ready_s, 1),
                    }
                    if name == "ray_2_full":
                        # the steady load of the failure scenarios: half of what two replicas sustain at p99 <= 50 ms
                        rate = max(5.0, round(0.5 * float(results[name]["rps"] or 10.0), 1))
                        if "failover" not in skip:
                            print(
                                f"[failover] 2 replicas, {rate}/s for {args.failover_s:.0f} s, one SIGKILLed",
                                file=sys.stderr,
                            )
                            out["failover"] = failover(cluster, rate, args.failover_s, queries)
                            print(f"[failover] {out['failover']}", file=sys.stderr)
            if args.router:
                out["routers"] = routers(cluster, artifacts, rate, args.router_s, queries)
                print(f"[routers] {out['routers']}", file=sys.stderr)
        finally:
            cluster.close()
        if args.node_stop:
            print(f"[node-stop] two nodes, one replica each, at {rate}/s; the second node stopped", file=sys.stderr)
            out["node_stop"] = node_stop(artifacts, rate, args.failover_s, queries, str(tmp / "ray-nodes"))
            print(f"[node-stop] {out['node_stop']}", file=sys.stderr)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)  # the queries file and Ray's session logs
    out["systems"] = results
    out["single_rps"] = results["single_full"]["rps"]
    out["ray_rps"] = {str(n): results[f"ray_{n}_full"]["rps"] for n in replica_counts}
    out["ray_sustainable_rps"] = {str(n): results[f"ray_{n}_full"]["sustainable_rps"] for n in replica_counts}
    out["single_sustainable_rps"] = results["single_full"]["sustainable_rps"]
    if "ladder" in modes:
        out["single_ladder_rps"] = results["single_ladder"]["rps"]
        out["ray_ladder_rps"] = {str(n): results[f"ray_{n}_ladder"]["rps"] for n in replica_counts[-1:]}
    out["ratio_to_single"] = {k: ratio(v, out["single_rps"]) for k, v in out["ray_rps"].items()}
    one = out["ray_rps"].get("1")
    out["ratio_to_one_replica"] = {k: ratio(v, one) for k, v in out["ray_rps"].items()}
    out["proxy_overhead_ms"] = round(out["ray_readyz_p50_ms"] - out["single_readyz_p50_ms"], 3)
    out["proxy_overhead_search_ms"] = round(out["ray_search_p50_ms"] - out["single_search_p50_ms"], 3)
    fo = out.get("failover") or {}
    out["failover_failed_fraction"] = fo.get("failed_fraction")
    out["failover_recovery_s"] = fo.get("recovery_s")
    out["failover_p99_ms"] = fo.get("p99_ms")
    rt = out.get("routers") or {}
    out["router_p99_ms"] = {k: rt[k]["p99_ms"] for k in ("pow2", "latency") if k in rt}
    out["only_loopback"] = bool(
        out["confinement_start"]["only_loopback"] and out.get("confinement", {}).get("only_loopback")
    )
    return out


def print_table(out: dict[str, Any]) -> None:
    print(
        f"\nshoprec scale-out, caches off, {out['cpus']} CPUs, p99 <= {P99_MS:.0f} ms "
        "(all in one loopback-only namespace)"
    )
    print(f"{'system':<16} {'throughput/s':>12} {'sustainable/s':>13} {'x single':>9}")
    single_rps = out["single_rps"]
    for name, r in out["systems"].items():
        print(f"{name:<16} {r['rps']:>12} {r['sustainable_rps']:>13} {ratio(r['rps'], single_rps) or '-':>9}")
    print(
        f"proxy overhead p50: /readyz {out['proxy_overhead_ms']} ms "
        f"({out['single_readyz_p50_ms']} -> {out['ray_readyz_p50_ms']}), search {out['proxy_overhead_search_ms']} ms"
    )
    rt = out.get("routers")
    if rt:
        for name in ("pow2", "latency"):
            r = rt[name]
            print(
                f"router {name:<8} one replica starved, {rt['rate']}/s: p50 {r['p50_ms']} p95 {r['p95_ms']} "
                f"p99 {r['p99_ms']} ms, errors {r['errors']}"
            )
    ns = out.get("node_stop")
    if ns:
        print(
            f"node stop: {ns['failed']} of {ns['requests']} failed ({ns['failed_fraction']:.3%}), "
            f"p99 {ns['p99_ms']} ms; "
            f"from 5 s after: {ns['answered_after_5s']} of {ns['requests_after_5s']} answered by the other node"
        )
    fo = out.get("failover")
    if fo:
        print(
            f"failover: {fo['failed']} of {fo['requests']} requests failed ({fo['failed_fraction']:.3%}) "
            f"at {fo['rate']}/s "
            f"over {fo['window_s']:.0f} s, p99 {fo['p99_ms']} ms, replacement running after {fo['recovery_s']} s"
        )
    print(f"nothing listens outside loopback: {out['only_loopback']}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get(INNER) != "1":
        return run_in_namespace(argv)
    args = parse_args(argv)
    out = benchmark(args)
    print_table(out)
    if not out["only_loopback"]:
        print("something listened outside loopback: see confinement", file=sys.stderr)
    if args.json:
        print(json.dumps(out))
    return 0 if out["only_loopback"] else 1


if __name__ == "__main__":
    sys.exit(main())
