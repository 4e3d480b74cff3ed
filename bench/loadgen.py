"""An open-loop HTTP/1.1 load generator, cheap enough to share two cores with the server.

Requests are sent at a fixed arrival rate whatever the server does; each request's
latency runs from its *intended* send time, so a server that falls behind shows the
queueing it causes (no coordinated omission). Connections are raw asyncio streams with
keep-alive; a pool of workers takes requests from one queue, so when every connection
is busy the wait shows up in the latency. A failed request (non-2xx, broken connection,
or no answer before the step's grace period ends) counts as an infinitely slow one.

Each step is judged twice: it *passes* when its p99 stays within 50 ms, and it is
*sustained* when the server answered (2xx before the grace period ended) at least 90 % of
the offered rate and fewer than 1 % of the requests failed, whatever the latency. A sweep
reports both the throughput (the highest passing rate) and the sustainable rate (the
highest sustained one). Each answer's degradation level is read from the
``X-Degradation-Level`` header, or else the body's ``degradation_level`` field.

Used by ``bench/serve.py`` as a subprocess (so that it can run inside the network
namespace of the Ray Serve peer too):

    python bench/loadgen.py --port 8000 --queries-file q.txt --mode zipf --rates 50,100 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote_plus

P99_TARGET_MS = 50.0
LEVEL_RE = re.compile(rb'"degradation_level"\s*:\s*("?)([^",}]*)\1')
LEVEL_HEADER_RE = re.compile(rb"\r\nx-degradation-level:[ \t]*([^\r]*)", re.IGNORECASE)
ANSWERED_FRACTION = 0.9  # a sustained step answers at least this fraction of its offered rate
MAX_ERROR_FRACTION = 0.01  # ... and fails fewer than this fraction of its requests
TOTAL_MS_RE = re.compile(rb'"total_ms"\s*:\s*([0-9.eE+-]+)')


@dataclass
class Sample:
    intended: float
    sent: float = math.nan
    done: float = math.nan
    status: int = 0  # 0: no answer (broken connection or timed out)
    level: str | None = None  # the degradation level that answered (header, else body field)
    server_ms: float = math.nan  # the server's own timings_ms.total_ms, when parsed
    retry_after: bool = False


@dataclass
class StepResult:
    rate: float
    duration_s: float
    samples: list[Sample] = field(default_factory=list)

    def summary(self, target_ms: float = P99_TARGET_MS) -> dict[str, object]:
        n = len(self.samples)
        ok = [s for s in self.samples if 200 <= s.status < 300]
        # failures are infinitely slow: a step with >1 % failures cannot pass p99
        lat = sorted((s.done - s.intended) * 1000.0 if 200 <= s.status < 300 else math.inf for s in self.samples)
        lag = sorted((s.sent - s.intended) * 1000.0 for s in self.samples if not math.isnan(s.sent))
        statuses = Counter(s.status for s in self.samples)
        ok_done = [s.done for s in ok]
        span = (max(ok_done) - min(s.intended for s in self.samples)) if ok_done else math.nan
        p99 = _pct(lat, 99)
        achieved = len(ok) / span if ok_done and span > 0 else 0.0
        return {
            "rate": self.rate,
            "requests": n,
            "achieved_rps": round(achieved, 1),
            "p50_ms": _round(_pct(lat, 50)),
            "p95_ms": _round(_pct(lat, 95)),
            "p99_ms": _round(p99),
            "errors": n - len(ok),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "send_lag_p99_ms": _round(_pct(lag, 99)),
            "levels": dict(Counter(s.level for s in ok if s.level is not None)),
            "pass": bool(p99 <= target_ms),
            "sustained": sustained(self.rate, achieved, n - len(ok), n),
        }


def sustained(rate: float, achieved_rps: float, errors: int, requests: int) -> bool:
    """The server kept up, whatever the latency: it answered at least 90 % of the offered rate
    and fewer than 1 % of the requests failed (non-2xx, or no answer before the grace ended)."""
    return achieved_rps >= ANSWERED_FRACTION * rate and errors < MAX_ERROR_FRACTION * requests


def _pct(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    i = min(len(sorted_values) - 1, max(0, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[i]


def _round(x: float) -> float | None:
    """Rounded milliseconds; None when undefined or infinite (more failures than the percentile allows)."""
    return round(x, 2) if math.isfinite(x) else None


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str) -> tuple[int, bytes, bool, bytes | None]:
        """One GET; a kept-alive connection the server closed meanwhile (its idle timeout) is
        reopened and the request sent again once, as HTTP clients do for idempotent requests."""
        reused = self.writer is not None and not self.writer.is_closing()
        if reused and self.reader is not None and self.reader.at_eof():
            self.close()
            reused = False
        try:
            return await self._request(path)
        except (OSError, asyncio.IncompleteReadError):
            if not reused:
                raise
            self.close()
            return await self._request(path)

    async def _request(self, path: str) -> tuple[int, bytes, bool, bytes | None]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        retry_after = b"\r\nretry-after:" in lower
        level = None
        if b"\r\nx-degradation-level:" in lower:
            found = LEVEL_HEADER_RE.search(head)
            level = found.group(1).strip() if found else None
        m = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
        if m:
            body = await self.reader.readexactly(int(m.group(1)))
        elif b"transfer-encoding: chunked" in lower:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        else:
            body = b""
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body, retry_after, level

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run_step(
    host: str,
    port: int,
    paths: Sequence[str],
    rate: float,
    *,
    connections: int = 256,
    grace_s: float = 5.0,
    parse_level: bool = False,
) -> StepResult:
    """Send ``paths`` at ``rate`` per second (open loop) and time every answer."""
    clock = time.perf_counter  # the event loop's clock may tick in whole milliseconds (uvloop)
    queue: asyncio.Queue[tuple[Sample, str] | None] = asyncio.Queue()
    duration = len(paths) / rate
    result = StepResult(rate=rate, duration_s=duration)

    async def worker() -> None:
        conn = _Conn(host, port)
        try:
            while (item := await queue.get()) is not None:
                sample, path = item
                sample.sent = clock()
                try:
                    status, body, retry_after, level = await conn.request(path)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                    conn.close()
                    continue  # status stays 0: counted as a failure
                sample.done = clock()
                sample.status = status
                sample.retry_after = retry_after
                if parse_level and status == 200:
                    if level is not None:
                        sample.level = level.decode()
                    else:
                        m = LEVEL_RE.search(body)
                        sample.level = m.group(2).decode() if m else None
                    t = TOTAL_MS_RE.search(body)
                    sample.server_ms = float(t.group(1)) if t else math.nan
        finally:
            conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = clock() + 0.05
    for i, path in enumerate(paths):
        intended = start + i / rate
        delay = intended - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        sample = Sample(intended=intended)
        result.samples.append(sample)
        queue.put_nowait((sample, path))
    for _ in workers:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=max(0.0, start + duration + grace_s - clock()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return result


def zipf_stream(queries: Sequence[str], n: int, *, s: float = 1.0, seed: int = 0) -> list[str]:
    """``n`` draws where the query of popularity rank r has weight 1/r**s (ranks shuffled by seed)."""
    rng = random.Random(seed)
    order = list(queries)
    rng.shuffle(order)
    weights = [1.0 / (r**s) for r in range(1, len(order) + 1)]
    return rng.choices(order, weights=weights, k=n)


def distinct_stream(queries: Sequence[str], n: int, *, offset: int = 0, seed: int = 0) -> list[str]:
    """``n`` queries in a seeded order without repeats until the list is used up."""
    order = list(queries)
    random.Random(seed).shuffle(order)
    return [order[(offset + i) % len(order)] for i in range(n)]


def make_paths(template: str, queries: Sequence[str]) -> list[str]:
    return [template.replace("{q}", quote_plus(q)) for q in queries]


async def sweep(
    host: str,
    port: int,
    template: str,
    queries: Sequence[str],
    *,
    mode: str,
    rates: Sequence[float] | None,
    duration_s: float,
    start_rate: float,
    max_rate: float,
    refine: int,
    connections: int,
    seed: int,
    target_ms: float = P99_TARGET_MS,
    log: bool = True,
    warmup_s: float = 0.0,
    first_warmup_s: float = 0.0,
    sustain_refine: int = 0,
) -> list[dict[str, object]]:
    """Step the rate up; with no explicit ``rates``, double until the server falls behind the
    offered rate (the first step that is not sustained), then bisect ``refine`` times between
    the highest passing rate and the next failing one above it, then ``sustain_refine`` times
    between the highest sustained rate and the next unsustained one above it (halving instead
    while nothing was sustained, down to a quarter of ``start_rate``).
    Each step first sends ``warmup_s`` seconds of the same load, not counted: the measured
    requests follow on the same schedule, so queueing still shows, but a server's cold start
    after the pause between steps does not (every system gets the same warm-up)."""
    rows: list[dict[str, object]] = []
    offset = 0

    async def measure(rate: float) -> dict[str, object]:
        nonlocal offset
        # the first step warms longer: a freshly started server's first seconds (lazy
        # initialisation, cold caches, an idle VM's vCPUs) are not its steady state
        warm = int(round(rate * (max(warmup_s, first_warmup_s) if not rows else warmup_s)))
        n = warm + max(1, int(round(rate * duration_s)))
        if mode == "zipf":
            qs = zipf_stream(queries, n, seed=seed + len(rows))
        elif mode == "distinct":
            qs = distinct_stream(queries, n, offset=offset, seed=seed)
            offset += n
        else:
            qs = [""] * n
        step = await run_step(host, port, make_paths(template, qs), rate, connections=connections, parse_level=True)
        step.samples = step.samples[warm:]
        step.duration_s -= warm / rate
        row = step.summary(target_ms)
        rows.append(row)
        if log:
            print(
                f"  {rate:>8.1f}/s  achieved {row['achieved_rps']:>8}  p50 {row['p50_ms']}  p95 {row['p95_ms']}  "
                f"p99 {row['p99_ms']} ms  errors {row['errors']}  {'ok' if row['pass'] else 'over'}"
                f"{'' if row['sustained'] else '  not sustained'}",
                file=sys.stderr,
                flush=True,
            )
        await asyncio.sleep(1.0 if row["pass"] else 3.0)  # let a backlog drain before the next step
        return row

    if rates:
        for r in rates:
            await measure(r)
        return rows
    # Up: double while the server keeps up. A step that fails p99 without falling behind does
    # not end the climb: on a machine whose idle CPUs wake slowly, low rates can be slower
    # than high ones, and a quality ladder serves cheaper levels as the rate rises.
    good, bad = 0.0, math.inf
    rate = start_rate
    while rate <= max_rate:
        row = await measure(rate)
        if row["pass"]:
            good = rate
        elif _saturated(row):
            break
        rate *= 2
    failed_above = [float(r["rate"]) for r in rows if not r["pass"] and float(r["rate"]) > good]  # type: ignore[arg-type]
    bad = min(failed_above, default=math.inf)
    while good == 0.0 and bad / 2 >= start_rate / 4:  # not even the first rate held: step down twice
        if (await measure(bad / 2))["pass"]:
            good = bad / 2
        else:
            bad /= 2
    for _ in range(refine):
        if math.isinf(bad):
            break
        mid = round(math.sqrt(max(good, start_rate / 2) * bad), 1)
        if mid <= good * 1.05 or mid >= bad * 0.95:
            break
        if (await measure(mid))["pass"]:
            good = mid
        else:
            bad = mid
    # The same for the sustainable rate: the climb went on to the first unsustained step, so
    # its bracket is at most a doubling wide (narrower when the bisection above measured in it).
    low = sustainable(rows)
    unsustained = [float(r["rate"]) for r in rows if not r["sustained"]]  # type: ignore[arg-type]
    high = min((r for r in unsustained if r > low), default=math.inf)
    for _ in range(sustain_refine):
        if math.isinf(high):
            break
        if low == 0.0:
            mid = round(high / 2, 1)
            if mid < start_rate / 4:
                break
        else:
            mid = round(math.sqrt(low * high), 1)
            if mid <= low * 1.05 or mid >= high * 0.95:
                break
        if (await measure(mid))["sustained"]:
            low = mid
        else:
            high = mid
    return rows


def _saturated(row: dict[str, object]) -> bool:
    """The server fell behind the offered rate (the step was not sustained: it answered under
    90 % of it, or failed 1 % of the requests or more); a higher rate can only do worse."""
    return not row["sustained"]


def throughput(rows: Sequence[dict[str, object]]) -> float:
    """The highest measured rate whose p99 stayed within the target (0 when none did)."""
    passing = [float(r["rate"]) for r in rows if r["pass"]]  # type: ignore[arg-type]
    return max(passing, default=0.0)


def sustainable(rows: Sequence[dict[str, object]]) -> float:
    """The highest measured rate the server kept up with, whatever the latency (0 when none)."""
    kept_up = [float(r["rate"]) for r in rows if r["sustained"]]  # type: ignore[arg-type]
    return max(kept_up, default=0.0)


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/v1/search?q={q}&k=10", help="path template; {q} is the query")
    ap.add_argument("--queries-file", help="one query per line")
    ap.add_argument("--mode", choices=["zipf", "distinct", "fixed"], default="zipf")
    ap.add_argument("--rates", help="comma-separated rates; default: double from --start-rate, then bisect")
    ap.add_argument("--start-rate", type=float, default=25.0)
    ap.add_argument("--max-rate", type=float, default=6400.0)
    ap.add_argument("--refine", type=int, default=2, help="bisections of the p99 <= 50 ms knee")
    ap.add_argument("--sustain-refine", type=int, default=2, help="bisections of the sustainable rate")
    ap.add_argument("--duration-s", type=float, default=8.0)
    ap.add_argument("--warmup-s", type=float, default=1.0, help="uncounted load at each step's rate before it")
    ap.add_argument("--first-warmup-s", type=float, default=5.0, help="the same before the first step")
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    args = ap.parse_args(argv)
    queries: list[str] = [""]
    if args.queries_file:
        with open(args.queries_file, encoding="utf-8") as f:
            queries = [line.rstrip("\n") for line in f if line.strip()]
    rates = [float(r) for r in args.rates.split(",")] if args.rates else None
    _use_uvloop()
    t0 = time.perf_counter()
    rows = asyncio.run(
        sweep(
            args.host,
            args.port,
            args.path,
            queries,
            mode=args.mode,
            rates=rates,
            duration_s=args.duration_s,
            start_rate=args.start_rate,
            max_rate=args.max_rate,
            refine=args.refine,
            connections=args.connections,
            seed=args.seed,
            warmup_s=args.warmup_s,
            first_warmup_s=args.first_warmup_s,
            sustain_refine=args.sustain_refine,
        )
    )
    out = {
        "throughput_rps": throughput(rows),
        "sustainable_rps": sustainable(rows),
        "rows": rows,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for r in rows:
            print(r)
        print(f"throughput at p99 <= {P99_TARGET_MS} ms: {out['throughput_rps']}/s")
        print(f"sustainable (answered >= 90 % of the rate, < 1 % errors): {out['sustainable_rps']}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
