"""``shoprec serve --workers 2``: whichever worker answers ``/metrics`` reports every worker's
requests (prometheus_client's multiprocess mode), and a previous run's files are wiped."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from support.live import FULL_QUALITY, ServerProcess

SEARCHES = 40
NO_LABELS = frozenset[tuple[str, str]]()


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with httpx.Client(base_url=url, timeout=30) as client:
        text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_every_workers_requests_are_counted(
    server_process: Callable[..., ServerProcess], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    stale = metrics_dir / "histogram_424242.db"
    stale.write_bytes(b"\0" * 64)  # what a previous run left: must not be added in
    settings: dict[str, Any] = {
        **FULL_QUALITY,
        "artifacts": tiny_static_artifacts,
        "data_dir": tmp_path,
        "metrics_dir": metrics_dir,
        "require_signature": False,
        "anonymous_read": True,
        "workers": 2,
        "port": 0,
        "log_level": "info",
    }
    server = server_process(**settings, command=(sys.executable, "-m", "shoprec.cli", "serve"))
    assert not stale.exists()
    # The server is ready when one worker is; the other may still be loading its model (and
    # answer 503 not_ready) or shedding at the front door while it settles. Each worker
    # publishes its gauges every metrics_sync_s (1 s): wait until both have, as ready
    # (model_ready is the least ready worker's) and shedding nothing (the worst worker's).
    deadline = time.monotonic() + 60
    while True:
        found = _scrape(server.url)
        pids = {dict(labels)["pid"] for name, labels in found if name == "shoprec_worker_resident_memory_bytes"}
        settled = (
            len(pids) == 2
            and found.get(("shoprec_model_ready", NO_LABELS)) == 1
            and found.get(("shoprec_front_door_shed_probability", NO_LABELS)) == 0
        )
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # polling for the workers' syncs, with a deadline
    assert settled, f"worker pids seen: {pids}\n{server.tail()}"

    # a connection per request, so the kernel hands them to either worker
    with httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for i in range(SEARCHES):
            response = client.get("/v1/search", params={"q": f"drill {i}"})
            assert response.status_code == 200, response.text

    # request durations and levels are observed as each request ends: no sync to wait for
    found = _scrape(server.url)
    ok = frozenset({("route", "/v1/search"), ("method", "GET"), ("status", "2xx")})
    assert found[("shoprec_http_request_duration_seconds_count", ok)] == SEARCHES
    assert found[("shoprec_model_ready", NO_LABELS)] == 1
    assert found[("shoprec_search_level_served_total", frozenset({("level", "full")}))] == SEARCHES
