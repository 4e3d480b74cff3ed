"""Serving under load: shoprec against the peers a team would pick, on the same machine.

    .venv/bin/python bench/serve.py [--json] [--artifacts DIR | --products-limit N]
                                    [--duration-s S] [--rates R1,R2,…] [--skip ray,naive,…]
                                    [--workers N] [--max-rate R] [--sustain-refine N]
    .venv/bin/python bench/serve.py --overload [--sustainable-rps R] [--overload-s 60]

Builds (or reuses, cached under ``.shoprec/bench/``) artifacts for the Home Depot catalog and
passes them through ``shoprec optimize`` (the fastest encoder within the quality gate;
``--no-optimize`` serves the teacher build; the peers always search the teacher's product
vectors with the teacher), starts each system as a real server on loopback, and drives it
with the open-loop generator in ``bench/loadgen.py`` (fixed arrival rate, latency from the
intended send time) using the Home Depot queries:

- ``ceiling``: shoprec's trivial ``/healthz`` on the same server stack, answered on the same
  plain-ASGI fast path as the searches (and a check that the generator itself is not the
  bottleneck); ``ceiling_routed``: ``/readyz``, a trivial endpoint routed by FastAPI;
- ``shoprec``: ``/v1/search`` with caches off, distinct queries; the degradation ladder
  serves cheaper levels as the load rises;
- ``shoprec_no_metrics``: the same with ``SHOPREC_METRICS=false`` (no metrics kept, no
  ``/metrics``): with ``shoprec`` (metrics on, the default) it measures what the metrics cost;
- ``shoprec_full``: the same, its ladder held at full quality (``SHOPREC_DEGRADE_UNDER_LOAD=false``
  and ``SHOPREC_QUALITY_LOSS_BUDGET=0``, which admits only levels with no NDCG@10 loss, so it
  holds with a server that does not know the first setting); a server of its own;
- ``shoprec_cached``: caches on, Zipf-distributed repeats (plus the p50 of a cache hit);
- ``naive``: FastAPI + sentence-transformers per request + brute-force cosine;
- ``ray_serve``: the same model behind Ray Serve with ``@serve.batch``, run (with its
  load) in a network namespace of its own with only loopback up;
- ``floor`` and ``floor_trivial``: the cheapest level's search and ``/healthz`` on a bare ASGI
  callable on the same uvicorn (``bench/serve_peers/floor.py``): the most of the trivial
  endpoint's throughput a Python search request could reach, with nothing around it.

Every sweep doubles the rate from 10/s (200/s for the trivial endpoints) until the first
step the server does not keep up with (answered under 90 % of the offered rate, or 1 % of
the requests or more failed), whatever its p99, so the peers that miss p99 <= 50 ms even at
10/s still climb; then it bisects twice between the highest step with p99 <= 50 ms and the
next failing one, and, for the systems in ratios of sustainable rates (shoprec,
shoprec_full, naive, ray_serve; ``--sustain-refine``), twice between the highest step kept
up with and the next one not (``--rates`` measures just those rates instead). Each step:
1 s uncounted warm-up (5 s before a system's first), 8 s measured. Per system:

- throughput: the highest measured rate whose p99 stayed <= 50 ms (failed requests count as
  infinitely slow);
- sustainable rate: the highest measured rate kept up with, whatever the latency (answered
  = a 2xx before the step's 5 s grace after its last scheduled send ended; an error = a
  non-2xx or no answer). For the systems not bisected it is the highest such step of the
  p99 sweep, at most a doubling below the truth.

With ``--json`` the last stdout line is one JSON object. Besides per-system throughputs
(``throughput_rps``, ``ceiling_routed_rps``, ``floor_rps``, …), the per-step ``rows`` and
the run's settings, it holds:

- ``ratio_to_naive``, ``ratio_to_ray_serve``: shoprec's (caches off) throughput over each
  peer's; ``fraction_of_ceiling``: over its own ``/healthz``, information only, no longer a
  target (``fraction_of_routed_ceiling``, ``floor_fraction`` likewise);
- ``metrics_on_rps``, ``metrics_off_rps``, ``metrics_on_over_off``: shoprec's (caches off)
  throughput with metrics and shoprec_no_metrics's, and their ratio (the target: >= 0.95);
- ``full_quality_rps``: shoprec_full's throughput; ``full_quality_ratio_to_ray_serve``:
  shoprec_full's sustainable rate over Ray Serve's; ``full_quality_held`` says whether every
  answer it gave came from the ladder's best level (``full_quality_levels_served``);
- ``served_ndcg@10``: what shoprec (caches off) served at its throughput rate
  (``served_ndcg_rate``): each level's NDCG@10 from the manifest's ``ladder.levels``
  (``ladder_ndcg@10``), weighted by the answers that level gave at that step, read from
  each response's ``X-Degradation-Level`` header (else its ``degradation_level`` field; an
  explicit pipeline reports its own name); ``levels_by_step``: per system that reports
  levels, per step, the answers by level and their NDCG@10;
- ``sustainable_rps``: the sustainable rate of every system (null when not run);
  ``sustainable_ratio_to_naive``, ``sustainable_ratio_to_ray_serve``: shoprec's (caches off)
  over each peer's.

Every ratio is null when its denominator is missing or 0 (a peer that passed or kept up
with no rate); the printed table says which. A full run takes about 20 min with cached
artifacts (16 before shoprec_full and the sustainable bisections).

``--overload`` instead runs shoprec at 2x its throughput at p99 <= 50 ms (Zipf queries,
``--sustainable-rps`` there names that rate) for 60 s and reports 5xx other than
deliberate 503s, the admitted requests' p99 against the deadline, the degradation levels
seen, and the recovery to full quality afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402
from serve_artifacts import DATA, ensure_artifacts, ensure_optimized  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
SHOPREC = str(ROOT / ".venv" / "bin" / "shoprec")
SYSTEMS = (
    "ceiling",
    "ceiling_routed",
    "shoprec",
    "shoprec_no_metrics",
    "shoprec_full",
    "shoprec_cached",
    "naive",
    "ray_serve",
    "floor",
    "floor_trivial",
    "baseline",
    "baseline_full",
)
# The systems whose sustainable rate enters a ratio: their sweeps bisect it too (the others
# report the highest sustained step the p99 sweep measured, at most a doubling below the truth).
SUSTAIN_REFINED = frozenset({"shoprec", "shoprec_full", "naive", "ray_serve", "baseline", "baseline_full"})

# Server settings (SHOPREC_* environment variables) for each shoprec configuration. Names a
# Settings field does not have are ignored by the server; the run records which ones apply.
BENCH_ENV = {
    "SHOPREC_LOG_LEVEL": "warning",
    # the bench serves its own fresh build (checksums are still verified at load)
    "SHOPREC_REQUIRE_SIGNATURE": "false",
    # the peers do no authentication either; rate limits stay at their default (none)
    "SHOPREC_ANONYMOUS_READ": "true",
}
CACHE_OFF_ENV = {
    "SHOPREC_EMBEDDING_CACHE_ENTRIES": "0",  # query -> embedding, before the model
    "SHOPREC_RESULT_CACHE_ENTRIES": "0",  # (query, filters, segment) -> results, after it
}
CACHE_ON_ENV: dict[str, str] = {}  # the server's defaults
# shoprec_full: the degradation ladder held at its best level. The first setting keeps the
# ladder at its best level; the second admits only levels with no NDCG@10 loss against the
# best one, which holds it there on a server that does not know the first setting.
FULL_QUALITY_ENV = {"SHOPREC_DEGRADE_UNDER_LOAD": "false", "SHOPREC_QUALITY_LOSS_BUDGET": "0"}
# shoprec_no_metrics: shoprec with no metrics kept (shoprec keeps them, as it serves by default)
METRICS_OFF_ENV = {"SHOPREC_METRICS": "false"}


# --- processes ----------------------------------------------------------------------------


class Processes:
    """Every subprocess this run starts, each in its own session, stopped on exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: Sequence[str], *, env: dict[str, str] | None = None, log: Path | None = None) -> Any:
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed by the child's exit
        proc = subprocess.Popen(
            list(cmd), env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(proc: Any, port: int, timeout_s: float, what: str, log: Path) -> float:
    t0 = time.perf_counter()
    last = ""
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise SystemExit(f"{what} exited with {proc.returncode} before it was ready:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except urllib.error.HTTPError as exc:
            last = exc.read().decode(errors="replace")
            if "refused" in last or "Error:" in last:  # the artifacts were rejected: waiting will not help
                raise SystemExit(f"{what} will not become ready: {last}") from None
        except OSError:
            pass
        if time.perf_counter() - t0 > timeout_s:
            raise SystemExit(f"{what} was not ready after {timeout_s:.0f} s: {last}")
        time.sleep(0.25)


@contextmanager
def shoprec_server(
    procs: Processes,
    artifacts: Path,
    env: dict[str, str],
    logdir: Path,
    name: str,
    workers: int = 1,
    checkout: Path = ROOT,
) -> Iterator[int]:
    """``checkout``: the shoprec to serve with (another checkout, with its own ``.venv``, for
    the baseline systems)."""
    port = free_port()
    log = logdir / f"{name}.log"
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **BENCH_ENV, **env}
    shoprec = str(checkout / ".venv" / "bin" / "shoprec")
    cmd = [shoprec, "serve", "--artifacts", str(artifacts), "--port", str(port), "--workers", str(workers)]
    proc = procs.start(cmd, env=full_env, log=log)
    ready_s = wait_ready(proc, port, 300, f"shoprec ({name})", log)
    print(f"[{name}] shoprec ready on 127.0.0.1:{port} in {ready_s:.1f} s", file=sys.stderr)
    try:
        yield port
    finally:
        procs.stop(proc)


def setting_names() -> list[str]:
    """The fields of shoprec's Settings, in declaration order (a pydantic model or a dataclass)."""
    from shoprec.settings import Settings

    model_fields = getattr(Settings, "model_fields", None)
    if model_fields is not None:
        return list(model_fields)
    return [f.name for f in dataclasses.fields(Settings)]


def applied_settings(env: dict[str, str]) -> dict[str, str]:
    """The subset of ``env`` that names a real Settings field (the server ignores the rest)."""
    from shoprec.settings import ENV_PREFIX

    names = set(setting_names())
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX) :].lower() in names}


# --- load ---------------------------------------------------------------------------------


def run_loadgen(
    port: int,
    args: argparse.Namespace,
    *,
    path: str,
    mode: str,
    queries_file: Path,
    start: float,
    sustain_refine: int = 0,
) -> Any:
    a = loadgen_args(args, path, mode, queries_file, sustain_refine)
    cmd = [PY, str(BENCH / "loadgen.py"), "--port", str(port), "--json", *a, "--start-rate", str(start)]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def loadgen_args(
    args: argparse.Namespace, path: str, mode: str, queries_file: Path, sustain_refine: int = 0
) -> list[str]:
    a = ["--path", path, "--mode", mode, "--queries-file", str(queries_file)]
    a += ["--duration-s", str(args.duration_s), "--warmup-s", str(args.warmup_s)]
    a += ["--first-warmup-s", str(args.first_warmup_s)]
    a += ["--connections", str(args.connections), "--seed", str(args.seed), "--max-rate", str(args.max_rate)]
    a += ["--sustain-refine", str(sustain_refine)]
    if args.rates:
        a += ["--rates", args.rates]
    return a


def hit_latency(port: int, query: str, n: int = 300, rate: float = 100.0) -> dict[str, Any]:
    """p50 of a repeated query (a cache hit after the first) at a low rate, client and server side."""
    paths = loadgen.make_paths("/v1/search?q={q}&k=10", [query] * n)

    async def go() -> tuple[list[float], list[float]]:
        step = await loadgen.run_step("127.0.0.1", port, paths, rate, connections=8, parse_level=False)
        client = [(s.done - s.intended) * 1000 for s in step.samples[1:] if s.status == 200]
        return client, []

    client, _ = asyncio.run(go())
    server: list[float] = []
    for _ in range(20):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{paths[0]}", timeout=5) as r:
            body = json.loads(r.read())
        t = body.get("timings_ms", {})
        if "total_ms" in t:
            server.append(float(t["total_ms"]))
    return {
        "query": query,
        "client_p50_ms": round(statistics.median(client), 3) if client else None,
        "server_total_p50_ms": round(statistics.median(server), 3) if server else None,
    }


def load_queries(tmp: Path) -> tuple[list[str], Path]:
    with (DATA / "judgments_dev.csv").open(encoding="utf-8") as f:
        queries = sorted({row["query"].strip() for row in csv.DictReader(f) if row["query"].strip()})
    path = tmp / "queries.txt"
    path.write_text("".join(q.replace("\n", " ") + "\n" for q in queries), encoding="utf-8")
    return queries, path


def ray_in_namespace(args: argparse.Namespace, artifacts: Path, queries_file: Path, logdir: Path) -> Any:
    """Run the Ray Serve peer and its load inside ``unshare -rn`` (own network, only loopback up)."""
    if shutil.which("unshare") is None:
        raise SystemExit("the Ray Serve peer needs `unshare` (util-linux) for its own network namespace")
    ray_tmp = Path(tempfile.mkdtemp(prefix="shoprec-ray-"))
    inner = [
        PY,
        str(BENCH / "serve_peers" / "ray_peer.py"),
        "--artifacts",
        str(artifacts),
        "--temp-dir",
        str(ray_tmp),
        "--",
        *loadgen_args(args, "/v1/search?q={q}&k=10", "distinct", queries_file, args.sustain_refine),
        "--start-rate",
        str(args.start_rate_model),
    ]
    script = "ip link set lo up && exec " + " ".join(_sh_quote(c) for c in inner)
    # --pid --fork: when the peer's process exits, the kernel ends everything Ray left in the namespace
    cmd = ["unshare", "-rn", "--pid", "--fork", "--mount-proc", "sh", "-c", script]
    log = logdir / "ray_serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    try:
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
            try:
                out, _ = proc.communicate()
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        if proc.returncode != 0:
            raise SystemExit(f"the Ray Serve peer failed ({proc.returncode}); see {log}")
        return json.loads(out.decode().strip().splitlines()[-1])
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


# --- report -------------------------------------------------------------------------------


def fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.1f}" if abs(x) >= 100 else f"{x:.2f}"
    return str(x)


def fmt_levels(levels: Mapping[str, int] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted((levels or {}).items(), key=lambda kv: -kv[1])) or "—"


def yes_no(x: Any) -> str:
    return "—" if x is None else ("yes" if x else "no")


def print_table(results: dict[str, Any]) -> None:
    cols = ("system", "rate", "achieved_rps", "p50_ms", "p95_ms", "p99_ms", "errors", "p99 ok", "kept up")
    print("| " + " | ".join((*cols, "levels served")) + " |")
    print("|" + "|".join("---" for _ in range(len(cols) + 1)) + "|")
    for system, res in results.items():
        for r in res["rows"]:
            vals = [system, r["rate"], r["achieved_rps"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["errors"]]
            vals += [yes_no(r["pass"]), yes_no(r.get("sustained"))]
            print("| " + " | ".join(fmt(v) for v in vals) + f" | {fmt_levels(r.get('levels'))} |")


def print_summary(out: dict[str, Any]) -> None:
    """One row per system, the ratios, and what shoprec served at each step."""
    print(
        "\n| system | throughput at p99 <= 50 ms (req/s) | sustainable (req/s) "
        "| p50 ms | p95 ms | p99 ms (at the throughput rate) |\n|---|---|---|---|---|---|"
    )
    for name, rows in out["rows"].items():
        top = passing_row(rows)
        lat = [top[k] if top else None for k in ("p50_ms", "p95_ms", "p99_ms")]
        vals = [name, loadgen.throughput(rows), out["sustainable_rps"].get(name), *lat]
        print("| " + " | ".join(fmt(v) for v in vals) + " |")
    sust = out["sustainable_rps"]
    tput = {**out["throughput_rps"], "shoprec_full": out["full_quality_rps"]}
    print("\n| ratio | value |\n|---|---|")
    for label, key, a, b, peer in (
        ("shoprec / naive, at p99 <= 50 ms", "ratio_to_naive", tput["shoprec"], tput["naive"], "naive"),
        ("shoprec / Ray Serve, at p99 <= 50 ms", "ratio_to_ray_serve", tput["shoprec"], tput["ray_serve"], "ray_serve"),
        ("shoprec / naive, sustainable", "sustainable_ratio_to_naive", sust["shoprec"], sust["naive"], "naive"),
        (
            "shoprec / Ray Serve, sustainable",
            "sustainable_ratio_to_ray_serve",
            sust["shoprec"],
            sust["ray_serve"],
            "ray_serve",
        ),
        (
            "shoprec_full (held at full quality) / Ray Serve, sustainable",
            "full_quality_ratio_to_ray_serve",
            sust["shoprec_full"],
            sust["ray_serve"],
            "ray_serve",
        ),
        (
            "shoprec (metrics on) / shoprec_no_metrics, at p99 <= 50 ms",
            "metrics_on_over_off",
            tput["shoprec"],
            out["metrics_off_rps"],
            "shoprec_no_metrics",
        ),
        (
            "shoprec / its /healthz ceiling (information only, not a target)",
            "fraction_of_ceiling",
            tput["shoprec"],
            tput["ceiling"],
            "ceiling",
        ),
    ):
        value = out[key]
        note = "" if value is not None else f" ({why_null(a, b, peer)})"
        print(f"| {label} (`{key}`) | {'null' if value is None else fmt(value)}{note} |")
    ndcg = out.get("ladder_ndcg@10") or {}
    ladder = ", ".join(f"{k} {v:.4f}" for k, v in ndcg.items()) or "no ladder in the manifest"
    base_ndcg = out.get("baseline_ladder_ndcg@10") or {}
    base_ladder = ", ".join(f"{k} {v:.4f}" for k, v in base_ndcg.items())
    for name in ("shoprec", "shoprec_full", "baseline", "baseline_full"):
        steps = out["levels_by_step"].get(name)
        if not steps:
            continue
        of = base_ladder if name.startswith("baseline") else ladder
        print(f"\n{name}: levels served and their NDCG@10 per step (ladder: {of})\n")
        print("| rate | p99 ok | kept up | levels served | served NDCG@10 |\n|---|---|---|---|---|")
        for st in steps:
            vals = [st["rate"], yes_no(st["pass"]), yes_no(st["sustained"]), fmt_levels(st["levels"])]
            print("| " + " | ".join(fmt(v) for v in vals) + f" | {fmt_ndcg(st['served_ndcg@10'])} |")
    print(
        f"\nserved NDCG@10 of shoprec at its throughput rate ({fmt(out['served_ndcg_rate'])}/s): "
        f"{fmt_ndcg(out['served_ndcg@10'])}; shoprec_full at {fmt(out['full_quality_rps'])}/s: "
        f"{fmt_ndcg(out['full_quality_served_ndcg@10'])}, held at {out['full_quality_level']} throughout: "
        f"{yes_no(out['full_quality_held'])} (levels {fmt_levels(out['full_quality_levels_served'])})"
    )
    if out.get("baseline_full_quality_rps") is not None or out.get("baseline_rps") is not None:
        print(
            f"against the baseline checkout ({(out.get('baseline') or {}).get('commit')}): full quality "
            f"{fmt(out['full_quality_rps'])}/s vs {fmt(out['baseline_full_quality_rps'])}/s "
            f"(x{fmt(out['full_quality_ratio_to_baseline'])}); "
            f"with the ladder {fmt(out['throughput_rps']['shoprec'])}/s "
            f"vs {fmt(out['baseline_rps'])}/s, served NDCG@10 {fmt_ndcg(out['served_ndcg@10'])} vs "
            f"{fmt_ndcg(out['baseline_served_ndcg@10'])}"
        )


def why_null(a: float | None, b: float | None, peer: str) -> str:
    if a is None:
        return "shoprec was not measured"
    if b is None:
        return f"{peer} was not measured"
    return f"{peer} reached no rate (0/s): nothing to divide by" if b <= 0 else ""


def fmt_ndcg(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` to two decimals; None (JSON null) when either is missing or ``b`` is 0."""
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 2)


def ladder_ndcg(manifest: Mapping[str, Any]) -> dict[str, float]:
    """Each degradation level's NDCG@10 by level name, as the artifacts' manifest measured it
    (``ladder.levels``, best level first; empty when the manifest has no ladder)."""
    levels = (manifest.get("ladder") or {}).get("levels") or []
    return {str(lv["name"]): float(lv["ndcg@10"]) for lv in levels if lv.get("ndcg@10") is not None}


def served_ndcg(levels: Mapping[str, int], ndcg: Mapping[str, float]) -> float | None:
    """NDCG@10 of what was served: each level's NDCG@10 weighted by the answers it gave. A level
    the ladder did not measure is left out; None when no answer came from a measured one."""
    rated = {name: n for name, n in levels.items() if name in ndcg and n > 0}
    total = sum(rated.values())
    return round(sum(ndcg[name] * n for name, n in rated.items()) / total, 4) if total else None


def passing_row(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The step at the throughput rate: the highest rate whose p99 stayed within the target."""
    return max((r for r in rows if r["pass"]), key=lambda r: float(r["rate"]), default=None)


def levels_by_step(rows: Sequence[Mapping[str, Any]], ndcg: Mapping[str, float]) -> list[dict[str, Any]]:
    """Per step, by rate: the answers each level gave and the NDCG@10 they add up to."""
    return [
        {
            "rate": r["rate"],
            "levels": dict(r.get("levels") or {}),
            "served_ndcg@10": served_ndcg(r.get("levels") or {}, ndcg),
            "pass": r["pass"],
            "sustained": r.get("sustained"),
        }
        for r in sorted(rows, key=lambda r: float(r["rate"]))
    ]


def benchmark(
    args: argparse.Namespace, procs: Processes, artifacts: Path, tmp: Path, peer_artifacts: Path
) -> dict[str, Any]:
    """``peer_artifacts``: whose ``embeddings.npy`` (teacher space) the peers search."""
    queries, qfile = load_queries(tmp)
    skip = set(args.skip)
    results: dict[str, Any] = {}
    manifest = json.loads((artifacts / "manifest.json").read_text(encoding="utf-8"))
    extra: dict[str, Any] = {
        "artifacts": str(artifacts),
        "encoder": manifest.get("model_id"),
        "peer_artifacts": str(peer_artifacts),
        "queries": len(queries),
    }
    t0 = time.perf_counter()

    def sweep(name: str, port: int, path: str, mode: str, start: float) -> None:
        print(f"[{name}] stepping the rate up ({mode} queries, {path.split('?')[0]})", file=sys.stderr)
        refine = args.sustain_refine if name in SUSTAIN_REFINED else 0
        results[name] = run_loadgen(
            port, args, path=path, mode=mode, queries_file=qfile, start=start, sustain_refine=refine
        )

    if {"ceiling", "ceiling_routed", "shoprec"} - skip:
        env = {**CACHE_OFF_ENV, **args.server_env}
        extra["settings_caches_off"] = applied_settings({**BENCH_ENV, **env})
        with shoprec_server(procs, artifacts, env, tmp, "shoprec", args.workers) as port:
            if "shoprec" not in skip:
                sweep("shoprec", port, "/v1/search?q={q}&k=10", "distinct", args.start_rate_model)
            if "ceiling" not in skip:
                sweep("ceiling", port, "/healthz", "fixed", args.start_rate_trivial)
            if "ceiling_routed" not in skip:
                sweep("ceiling_routed", port, "/readyz", "fixed", args.start_rate_trivial)
    if "shoprec_no_metrics" not in skip:  # the same as shoprec, without metrics: what they cost
        env = {**CACHE_OFF_ENV, **args.server_env, **METRICS_OFF_ENV}
        extra["settings_no_metrics"] = applied_settings({**BENCH_ENV, **env})
        with shoprec_server(procs, artifacts, env, tmp, "shoprec_no_metrics", args.workers) as port:
            sweep("shoprec_no_metrics", port, "/v1/search?q={q}&k=10", "distinct", args.start_rate_model)
    if "shoprec_full" not in skip:  # the same as shoprec, its ladder held at full quality
        env = {**CACHE_OFF_ENV, **args.server_env, **FULL_QUALITY_ENV}
        extra["settings_full_quality"] = applied_settings({**BENCH_ENV, **env})
        with shoprec_server(procs, artifacts, env, tmp, "shoprec_full", args.workers) as port:
            sweep("shoprec_full", port, "/v1/search?q={q}&k=10", "distinct", args.start_rate_model)
    if "shoprec_cached" not in skip:
        env = {**CACHE_ON_ENV, **args.server_env}
        extra["settings_caches_on"] = applied_settings({**BENCH_ENV, **env})
        with shoprec_server(procs, artifacts, env, tmp, "shoprec_cached", args.workers) as port:
            sweep("shoprec_cached", port, "/v1/search?q={q}&k=10", "zipf", args.start_rate_model)
            top = loadgen.zipf_stream(queries, 1, seed=args.seed)[0]
            extra["cache_hit"] = hit_latency(port, top)
    if "naive" not in skip:
        port = free_port()
        log = tmp / "naive.log"
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        cmd = [PY, str(BENCH / "serve_peers" / "naive.py"), "--artifacts", str(peer_artifacts), "--port", str(port)]
        proc = procs.start(cmd, env=env, log=log)
        try:
            wait_ready(proc, port, 300, "the naive peer", log)
            sweep("naive", port, "/v1/search?q={q}&k=10", "distinct", args.start_rate_model)
        finally:
            procs.stop(proc)
    if {"floor", "floor_trivial"} - skip:
        port = free_port()
        log = tmp / "floor.log"
        cmd = [PY, str(BENCH / "serve_peers" / "floor.py"), "--artifacts", str(artifacts), "--port", str(port)]
        proc = procs.start(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, log=log)
        try:
            wait_ready(proc, port, 300, "the floor", log)
            if "floor" not in skip:
                sweep("floor", port, "/v1/search?q={q}&k=10", "distinct", args.start_rate_model)
            if "floor_trivial" not in skip:
                sweep("floor_trivial", port, "/healthz", "fixed", args.start_rate_trivial)
        finally:
            procs.stop(proc)
    baseline_ndcg: dict[str, float] = {}
    if args.baseline and {"baseline", "baseline_full"} - skip:
        checkout, base_artifacts = baseline_checkout(args.baseline)
        baseline_ndcg = ladder_ndcg(json.loads((base_artifacts / "manifest.json").read_text(encoding="utf-8")))
        extra["baseline"] = {
            "checkout": str(checkout),
            "commit": git_commit(checkout),
            "artifacts": str(base_artifacts),
        }
        for name, quality in (("baseline", {}), ("baseline_full", FULL_QUALITY_ENV)):
            if name in skip:
                continue
            env = {**CACHE_OFF_ENV, **args.server_env, **quality}
            with shoprec_server(procs, base_artifacts, env, tmp, name, args.workers, checkout) as port:
                sweep(name, port, "/v1/search?q={q}&k=10", "distinct", args.start_rate_model)
    if "ray_serve" not in skip:
        print("[ray_serve] starting Ray Serve in its own network namespace", file=sys.stderr)
        res = ray_in_namespace(args, peer_artifacts, qfile, tmp)
        extra["ray_listeners"] = res.pop("listeners", None)
        results["ray_serve"] = res

    tput = {name: (results[name]["throughput_rps"] if name in results else None) for name in SYSTEMS}
    sust = {name: (loadgen.sustainable(results[name]["rows"]) if name in results else None) for name in SYSTEMS}
    ndcg = ladder_ndcg(manifest)
    by_step = {
        name: levels_by_step(res["rows"], baseline_ndcg if name.startswith("baseline") else ndcg)
        for name, res in results.items()
        if any(r.get("levels") for r in res["rows"])
    }
    base_served = passing_row(results["baseline"]["rows"]) if "baseline" in results else None
    served = passing_row(results["shoprec"]["rows"]) if "shoprec" in results else None
    full = passing_row(results["shoprec_full"]["rows"]) if "shoprec_full" in results else None
    full_levels: Counter[str] = Counter()
    for r in results.get("shoprec_full", {}).get("rows", []):
        full_levels.update(r.get("levels") or {})
    best_level = next(iter(ndcg), "full")  # the manifest lists the ladder best level first
    if "ceiling" in results:  # the generator keeps its schedule where the trivial endpoint does
        rows = results["ceiling"]["rows"]
        fastest = max(rows, key=lambda r: float(r["rate"]), default=None)
        extra["generator_send_lag_p99_ms_at_top_ceiling_rate"] = fastest["send_lag_p99_ms"] if fastest else None
    extra["wall_s"] = round(time.perf_counter() - t0, 1)
    return {
        "throughput_rps": {k: tput[k] for k in ("shoprec", "shoprec_cached", "naive", "ray_serve", "ceiling")},
        "ratio_to_naive": ratio(tput["shoprec"], tput["naive"]),
        "ratio_to_ray_serve": ratio(tput["shoprec"], tput["ray_serve"]),
        # information only, no longer a target (see the module docstring)
        "fraction_of_ceiling": ratio(tput["shoprec"], tput["ceiling"]),
        # the metrics' cost: shoprec (caches off, metrics on, as it serves by default) over the
        # same server without metrics, both at p99 <= 50 ms, in the same run
        "metrics_on_rps": tput["shoprec"],
        "metrics_off_rps": tput["shoprec_no_metrics"],
        "metrics_on_over_off": ratio(tput["shoprec"], tput["shoprec_no_metrics"]),
        # shoprec caches off with the ladder held at full: throughput at p99 <= 50 ms, and its
        # sustainable rate against Ray Serve's
        "full_quality_rps": tput["shoprec_full"],
        "full_quality_ratio_to_ray_serve": ratio(sust["shoprec_full"], sust["ray_serve"]),
        # what shoprec (caches off) served at its throughput rate: the levels' NDCG@10 weighted by
        # the answers each gave there
        "served_ndcg@10": served_ndcg(served["levels"], ndcg) if served else None,
        "served_ndcg_rate": served["rate"] if served else None,
        # the highest rate answered at >= 90 % with < 1 % errors, whatever the latency
        "sustainable_rps": sust,
        "sustainable_ratio_to_naive": ratio(sust["shoprec"], sust["naive"]),
        "sustainable_ratio_to_ray_serve": ratio(sust["shoprec"], sust["ray_serve"]),
        "levels_by_step": by_step,
        "ladder_ndcg@10": ndcg,
        "full_quality_level": best_level,
        "full_quality_levels_served": dict(full_levels),
        "full_quality_held": (set(full_levels) == {best_level}) if full_levels else None,
        "full_quality_served_ndcg@10": served_ndcg(full["levels"], ndcg) if full else None,
        # the same systems served by another checkout (--baseline: the code before a change)
        "baseline_rps": tput["baseline"],
        "baseline_full_quality_rps": tput["baseline_full"],
        "full_quality_ratio_to_baseline": ratio(tput["shoprec_full"], tput["baseline_full"]),
        "ratio_to_baseline": ratio(tput["shoprec"], tput["baseline"]),
        "baseline_served_ndcg@10": served_ndcg(base_served["levels"], baseline_ndcg) if base_served else None,
        "baseline_ladder_ndcg@10": baseline_ndcg or None,
        # a trivial endpoint routed by FastAPI (/readyz): what most FastAPI services answer at best
        "ceiling_routed_rps": tput["ceiling_routed"],
        "fraction_of_routed_ceiling": ratio(tput["shoprec"], tput["ceiling_routed"]),
        # the least a Python search request costs on this stack (bench/serve_peers/floor.py): the
        # cheapest level's search with nothing around it, against /healthz on the same bare app
        "floor_rps": tput["floor"],
        "floor_trivial_rps": tput["floor_trivial"],
        "floor_fraction": ratio(tput["floor"], tput["floor_trivial"]),
        "ratio_to_naive_cached": ratio(tput["shoprec_cached"], tput["naive"]),
        "ratio_to_ray_serve_cached": ratio(tput["shoprec_cached"], tput["ray_serve"]),
        "p99_target_ms": loadgen.P99_TARGET_MS,
        "duration_s_per_rate": args.duration_s,
        "warmup_s_per_rate": args.warmup_s,
        "warmup_s_first_rate": args.first_warmup_s,
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "max_rate": args.max_rate,
        "rows": {name: res["rows"] for name, res in results.items()},
        **extra,
    }


def baseline_checkout(folder: str) -> tuple[Path, Path]:
    """Another shoprec checkout (set up: its ``.venv``) and the optimized Home Depot build its
    own ``bench/serve_artifacts.py`` serves (built, or reused from its cache)."""
    checkout = Path(folder).resolve()
    python = checkout / ".venv" / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"{checkout}: no .venv (run its scripts/setup.sh first)")
    run = subprocess.run(
        [str(python), str(checkout / "bench" / "serve_artifacts.py"), "--optimized"],
        cwd=checkout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return checkout, Path(run.stdout.strip().splitlines()[-1])


def git_commit(checkout: Path) -> str | None:
    run = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return run.stdout.strip() or None


# --- overload -----------------------------------------------------------------------------


def deadline_ms() -> float | None:
    """The server's default request deadline, when its Settings have one."""
    from shoprec.settings import Settings

    s = Settings.load()
    names = [name for name in setting_names() if "deadline" in name and "max" not in name]
    names.sort(key=lambda n: ("default" not in n, len(n)))
    for name in names:
        value = getattr(s, name)
        if isinstance(value, (int, float)):
            return float(value) * 1000 if name.endswith("_s") else float(value)
    return None


def overload(
    args: argparse.Namespace, procs: Processes, artifacts: Path, tmp: Path, checkout: Path = ROOT
) -> dict[str, Any]:
    queries, qfile = load_queries(tmp)
    env = {**CACHE_ON_ENV, **args.server_env}
    report: dict[str, Any] = {"settings": applied_settings({**BENCH_ENV, **env}), "workers": args.workers}
    with shoprec_server(procs, artifacts, env, tmp, "overload", args.workers, checkout) as port:
        sustainable = args.sustainable_rps
        if sustainable is None:
            print("[overload] finding the sustainable rate (Zipf queries)", file=sys.stderr)
            sustainable = run_loadgen(
                port, args, path="/v1/search?q={q}&k=10", mode="zipf", queries_file=qfile, start=args.start_rate_model
            )["throughput_rps"]
            if not sustainable:
                raise SystemExit("no rate met p99 <= 50 ms: nothing to overload from")
        rate = 2 * float(sustainable)

        def phase(name: str, r: float, seconds: float, seed: int) -> loadgen.StepResult:
            qs = loadgen.zipf_stream(queries, max(1, int(r * seconds)), seed=seed)
            paths = loadgen.make_paths("/v1/search?q={q}&k=10", qs)
            print(f"[overload] {name}: {r:.0f}/s for {seconds:.0f} s", file=sys.stderr)
            return asyncio.run(
                loadgen.run_step("127.0.0.1", port, paths, r, connections=args.connections, parse_level=True)
            )

        # normal traffic before and after: an eighth of the sustainable rate (at most
        # --baseline-rps, light enough for full quality), 10 s so the ladder has measured the
        # per-request overhead before the overload starts
        light = min(sustainable / 8, args.baseline_rps)
        base = phase("baseline", light, 10, args.seed + 100)
        time.sleep(1)
        over = phase("overload", rate, args.overload_s, args.seed + 101)
        after = phase("recovery", light, args.recovery_s, args.seed + 102)  # back to the baseline load

    full_levels = Counter(s.level for s in base.samples if s.status == 200)
    full = full_levels.most_common(1)[0][0] if full_levels else None
    admitted = sorted((s.done - s.intended) * 1000 for s in over.samples if s.status == 200)
    statuses = Counter(s.status for s in over.samples)
    five_xx = sum(v for k, v in statuses.items() if 500 <= k < 600 and k != 503)
    shed = [s for s in over.samples if s.status == 503]
    t0 = after.samples[0].intended if after.samples else 0.0
    # recovery: the time after which every answered request was served at the full-quality level
    last_degraded = max((s.intended - t0 for s in after.samples if s.status == 200 and s.level != full), default=None)
    dl = deadline_ms()
    p99_admitted = loadgen._pct(admitted, 99)
    report.update(
        {
            "sustainable_rps": sustainable,
            "overload_rps": rate,
            "overload_s": args.overload_s,
            "requests": len(over.samples),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "no_answer": statuses.get(0, 0),
            "5xx_other_than_503": five_xx,
            "shed_503": len(shed),
            "shed_503_with_retry_after": sum(s.retry_after for s in shed),
            "admitted": len(admitted),
            "admitted_p50_ms": loadgen._round(loadgen._pct(admitted, 50)),
            "admitted_p99_ms": loadgen._round(p99_admitted),
            "admitted_server_p99_ms": loadgen._round(
                loadgen._pct(
                    sorted(s.server_ms for s in over.samples if s.status == 200 and s.server_ms == s.server_ms), 99
                )
            ),
            "deadline_ms": dl,
            "admitted_p99_within_deadline": (p99_admitted <= dl) if dl is not None and admitted else None,
            "full_quality_level": full,
            "levels_baseline": {str(k): v for k, v in full_levels.items()},
            "levels_overload": {
                str(k): v for k, v in Counter(s.level for s in over.samples if s.status == 200).items()
            },
            "levels_recovery": {
                str(k): v for k, v in Counter(s.level for s in after.samples if s.status == 200).items()
            },
            "recovered_after_s": None if last_degraded is None else round(last_degraded, 2),
            "recovered": full is not None
            and any(s.status == 200 for s in after.samples)
            and all(s.level == full for s in after.samples[-max(1, len(after.samples) // 4) :] if s.status == 200),
            "recovery_statuses": {str(k): v for k, v in sorted(Counter(s.status for s in after.samples).items())},
        }
    )
    if full is None:
        report["note"] = "responses carry no degradation_level field: the server has no degradation ladder yet"
    return report


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    ap.add_argument("--artifacts", help="serve this artifacts folder instead of the cached Home Depot build")
    ap.add_argument("--products-limit", type=int, help="build over the first N products only (faster)")
    ap.add_argument(
        "--no-optimize",
        action="store_true",
        help="serve the teacher build itself (default: its `shoprec optimize` output, cached beside it)",
    )
    ap.add_argument("--duration-s", type=float, default=8.0, help="seconds of load per rate step")
    ap.add_argument(
        "--warmup-s", type=float, default=1.0, help="seconds of the same load before each step, not counted"
    )
    ap.add_argument(
        "--first-warmup-s",
        type=float,
        default=5.0,
        help="the same before each system's first step (a fresh server's first seconds are not its steady state)",
    )
    ap.add_argument("--rates", help="comma-separated rates for every system (default: step up adaptively)")
    ap.add_argument("--start-rate-model", type=float, default=10.0, help="first rate for model-backed systems")
    ap.add_argument("--start-rate-trivial", type=float, default=200.0, help="first rate for /healthz")
    ap.add_argument(
        "--sustain-refine",
        type=int,
        default=2,
        help=f"bisections of the sustainable rate for {', '.join(sorted(SUSTAIN_REFINED))} (the others: none)",
    )
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument(
        "--max-rate",
        type=float,
        default=25600.0,
        help="the sweeps stop doubling here (past it the generator itself falls behind)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="`shoprec serve --workers N` for every shoprec server (the ceiling's included)",
    )
    ap.add_argument("--skip", default="", help=f"comma-separated systems to leave out: {','.join(SYSTEMS)}")
    ap.add_argument(
        "--server-env", action="append", default=[], metavar="SHOPREC_X=V", help="extra shoprec server setting"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overload", action="store_true", help="run the overload test instead")
    ap.add_argument("--sustainable-rps", type=float, help="overload: skip finding the sustainable rate")
    ap.add_argument("--overload-s", type=float, default=60.0)
    ap.add_argument("--recovery-s", type=float, default=20.0)
    ap.add_argument("--baseline-rps", type=float, default=40.0, help="overload: most normal load before and after")
    ap.add_argument("--keep-logs", help="copy server logs to this folder")
    ap.add_argument(
        "--baseline",
        help="another shoprec checkout (e.g. the commit before a change, set up with its scripts/setup.sh): "
        "also served, caches off, as the systems baseline and baseline_full (and overloaded with --overload)",
    )
    args = ap.parse_args(argv)
    aliases = {
        "ray": "ray_serve",
        "cached": "shoprec_cached",
        "full": "shoprec_full",
        "trivial": "ceiling",
        "routed": "ceiling_routed",
    }
    args.skip = {aliases.get(s.strip(), s.strip()) for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - set(SYSTEMS)
    if unknown:
        ap.error(f"unknown systems in --skip: {', '.join(sorted(unknown))}")
    env: dict[str, str] = {}
    for item in args.server_env:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("SHOPREC_"):
            ap.error(f"--server-env wants SHOPREC_NAME=VALUE, got {item!r}")
        env[key] = value
    args.server_env = env
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    procs = Processes()

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started in the background, where SIGINT is ignored
    tmp = Path(tempfile.mkdtemp(prefix="shoprec-serve-bench-"))
    try:
        if args.artifacts:
            artifacts = Path(args.artifacts).resolve()
            if not (artifacts / "manifest.json").is_file():
                raise SystemExit(f"{artifacts}: no manifest.json (not an artifacts folder)")
        else:
            artifacts = ensure_artifacts(DATA / "products.csv", DATA / "judgments_dev.csv", args.products_limit)
        peer_artifacts = artifacts
        if not args.artifacts and not args.no_optimize:
            artifacts = ensure_optimized(artifacts)
        if args.overload:
            out = overload(args, procs, artifacts, tmp)
            if args.baseline:
                checkout, base_artifacts = baseline_checkout(args.baseline)
                out["baseline"] = overload(args, procs, base_artifacts, tmp, checkout)
                out["baseline"]["checkout"] = f"{checkout} ({git_commit(checkout)})"
            for k, v in out.items():
                print(f"{k:>28}: {v}")
        else:
            out = benchmark(args, procs, artifacts, tmp, peer_artifacts)
            print(
                f"\nServing benchmark: {out['queries']} Home Depot queries, {os.cpu_count()} CPUs shared by "
                f"generator and server, {args.duration_s:g} s per rate, pass = p99 <= 50 ms\n"
            )
            print_table({name: {"rows": rows} for name, rows in out["rows"].items()})
            print_summary(out)
            print(
                f"\nfraction of the /healthz ceiling: {fmt(out['fraction_of_ceiling'])}, of the "
                f"FastAPI-routed /readyz: {fmt(out['fraction_of_routed_ceiling'])} (information only, not targets)"
            )
            print(
                f"the floor (a bare Python search, nothing around it) reaches {fmt(out['floor_rps'])}/s, "
                f"{fmt(out['floor_fraction'])} of its own /healthz ({fmt(out['floor_trivial_rps'])}/s)"
            )
            print(
                f"shoprec (caches on, Zipf) / naive: {fmt(out['ratio_to_naive_cached'])}x, / Ray Serve: "
                f"{fmt(out['ratio_to_ray_serve_cached'])}x; cache hit: {out.get('cache_hit')}"
            )
            if out.get("ray_listeners") is not None:
                print(f"Ray namespace listeners only on loopback: {out['ray_listeners']['only_loopback']}")
        if args.keep_logs:
            dest = Path(args.keep_logs)
            dest.mkdir(parents=True, exist_ok=True)
            for log in tmp.glob("*.log"):
                shutil.copy(log, dest / log.name)
        if args.json:
            print(json.dumps(out, default=str))
        return 0
    except KeyboardInterrupt:
        print("interrupted: stopping servers", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
