"""A real ``prometheus`` server on a free loopback port, scraping one target every second,
with its storage in the test's folder; killed at the end. Skips cleanly when ``prometheus``
is not installed (``scripts/test.sh`` installs the Debian package)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.redisserver import free_port

CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: shoprec
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
"""


class PrometheusServer:
    def __init__(self, workdir: Path, target: str) -> None:
        self.binary = shutil.which("prometheus")
        if self.binary is None:
            pytest.skip("prometheus is not installed (scripts/test.sh installs the Debian package prometheus)")
        self.workdir = workdir
        self.target = target
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> PrometheusServer:
        assert self.binary is not None
        config = self.workdir / "prometheus.yml"
        config.write_text(CONFIG.format(target=self.target))
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if client.get("/-/ready").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.1)  # polling readiness, with a deadline
        self.stop()
        raise RuntimeError(f"prometheus did not get ready:\n{self.log.read_text()[-3000:]}")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector (``metric`` labels and ``value``: [time, "number"])."""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            r = client.get("/api/v1/query", params={"query": promql})
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def scalar(self, promql: str) -> float | None:
        """The value of a query that gives one series, or None while it gives none."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
