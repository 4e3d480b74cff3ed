"""A real Prometheus scraping a real shoprec server every second, both on loopback: after
searches, an overload and rate-limited requests, what Prometheus's HTTP API says matches
what the client saw.

Nothing here depends on how fast the machine is. The refusals are counted on both sides and
must be equal, however many there were. The latencies are compared through inequalities
that hold under any load: the server's duration of a request lies between the search's own
``timings_ms.total_ms`` (measured inside it) and the client's wall time (which encloses it),
so for every bucket bound ``b`` the histogram's count at ``b`` lies between the client's
count of requests under ``b`` and the count of searches whose own total is under ``b``; and
the p99 Prometheus computes from the histogram falls in a bucket between the one holding
the searches' own p99 and the one holding the client's p99."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from shoprec.adapters.prometheus import REQUEST_BUCKETS_S
from shoprec.security.apikeys import KeyStore
from support.live import FULL_QUALITY, ServerProcess
from support.prometheusserver import PrometheusServer

SEARCHES = 150
OK = 'route="/v1/search",method="GET",status="2xx"'


def _rank(values: list[float], q: float) -> float:
    """The q-quantile as Prometheus ranks it: the smallest value with at least q x n at or under it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _bucket(value_s: float) -> int:
    """Index of the bucket holding ``value_s`` (len(bounds) for +Inf)."""
    return bisect.bisect_left(REQUEST_BUCKETS_S, value_s)


def _poll(read: Callable[[], float | None], want: float, what: str, prometheus: PrometheusServer) -> None:
    deadline = time.monotonic() + 120
    got = read()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.5)  # waiting for the next scrapes, with a deadline
        got = read()
    assert got == want, (
        f"{what}: Prometheus says {got}, the client counted {want}\n{prometheus.log.read_text()[-2000:]}"
    )


def test_prometheus_sees_what_the_client_saw(
    server_process: Callable[..., ServerProcess], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    _, key = KeyStore(tmp_path / "keys.json", time.time, iterations=1).create("limited", ["search"])
    server = server_process(
        **FULL_QUALITY,
        artifacts=tiny_static_artifacts,
        data_dir=tmp_path,
        keys_file=tmp_path / "keys.json",
        require_signature=False,
        anonymous_read=True,
        result_cache_entries=0,  # every search is computed: its histogram is the searches'
        inline_search_max_ms=0,  # every search leaves the event loop, so others arrive meanwhile
        max_in_flight=1,
        max_queued=0,  # a second concurrent search is refused at once: the overload, explicitly
        rate_limit_key_default_per_s=0.01,  # the key gets one request, then 429s
        rate_limit_burst_factor=100,
    )
    prometheus = PrometheusServer(tmp_path, server.url.removeprefix("http://")).start()
    try:
        _check(server, prometheus, key)
    finally:
        prometheus.stop()


def _check(server: ServerProcess, prometheus: PrometheusServer, key: str) -> None:
    client_s: list[float] = []
    own_s: list[float] = []
    refused: dict[str, int] = {"overloaded": 0, "deadline_exceeded": 0, "rate_limited": 0}
    lock = threading.Lock()

    def search(client: httpx.Client, q: str, headers: dict[str, str] | None = None) -> None:
        started = time.perf_counter()
        r = client.get("/v1/search", params={"q": q}, headers=headers or {})
        elapsed = time.perf_counter() - started
        with lock:
            if r.status_code == 200:
                client_s.append(elapsed)
                own_s.append(r.json()["timings_ms"]["total_ms"] / 1000.0)
            else:
                assert r.status_code in (429, 503), r.text
                refused[r.json()["error"]] += 1

    with server.client() as client:
        for i in range(SEARCHES):  # one at a time: never refused
            search(client, f"cordless drill {i}")
        assert not any(refused.values())

        def hammer(worker: int) -> None:
            with server.client() as own:
                for i in range(20):
                    search(own, f"hammer {worker} {i}")

        for _ in range(20):  # sixteen at once against max_in_flight=1: refusals, however fast the machine
            threads = [threading.Thread(target=hammer, args=(w,)) for w in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if refused["overloaded"]:
                break
        assert refused["overloaded"] > 0
        for i in range(5):
            search(client, f"saw {i}", headers={"X-API-Key": key})
        assert refused["rate_limited"] >= 4

    _poll(
        lambda: prometheus.scalar(f"sum(shoprec_http_request_duration_seconds_count{{{OK}}})"),
        len(client_s),
        "successful searches",
        prometheus,
    )
    for reason, code in (
        ("queue_full", "overloaded"),
        ("deadline", "deadline_exceeded"),
        ("rate_limit", "rate_limited"),
    ):
        _poll(
            lambda r=reason: prometheus.scalar(f'sum(shoprec_refusals_total{{reason="{r}"}})'),
            refused[code],
            f"refusals ({reason})",
            prometheus,
        )
    assert prometheus.scalar('up{job="shoprec"}') == 1

    buckets = {
        float(s["metric"]["le"]): float(s["value"][1])
        for s in prometheus.query(f"sum by (le) (shoprec_http_request_duration_seconds_bucket{{{OK}}})")
    }
    assert set(REQUEST_BUCKETS_S) <= set(buckets)
    for bound in REQUEST_BUCKETS_S:
        under_client = sum(s <= bound for s in client_s)
        under_own = sum(s - 1e-6 <= bound for s in own_s)  # the body's total is rounded to the µs
        assert under_client <= buckets[bound] <= under_own, (bound, under_client, buckets[bound], under_own)

    p99 = prometheus.scalar(
        f"histogram_quantile(0.99, sum by (le) (shoprec_http_request_duration_seconds_bucket{{{OK}}}))"
    )
    assert p99 is not None
    client_p99, own_p99 = _rank(client_s, 0.99), _rank(own_s, 0.99)
    report: dict[str, Any] = {"prometheus_p99_s": p99, "client_p99_s": client_p99, "searches_own_p99_s": own_p99}
    assert _bucket(own_p99) <= _bucket(p99) <= _bucket(client_p99), report
    print(report, refused)  # shown with -s: what the client and Prometheus measured
