"""``/v1/admin/jobs`` on a real server: queue, list and show jobs; bad ones are 4xx, no Redis no routes;
and a ``shoprec worker --jobs`` process runs what was queued."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoprec.http.app import create_app
from support.apikeyhelp import unsigned_settings
from support.live import FULL_QUALITY, LiveServer, wait_ready


def test_jobs_are_queued_listed_shown_and_run(
    live_server: Callable[[Any], LiveServer], redis_server: Any, tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    settings, headers = unsigned_settings(
        tmp_path,
        roles=("admin",),
        artifacts=tiny_static_artifacts,
        redis_url=redis_server.url,
        redis_prefix="jobs-test:",
        jobs_max_attempts=2,
        **FULL_QUALITY,
    )
    with live_server(create_app(settings)).client(headers=headers) as api:
        wait_ready(api)
        missing = tmp_path / "missing"
        body = {"kind": "evaluate", "args": {"artifacts": str(missing), "judgments": str(missing / "j.csv")}}
        r = api.post("/v1/admin/jobs", json=body)
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["status"] == "queued" and job["max_attempts"] == 2 and job["attempts"] == 0
        assert [j["id"] for j in api.get("/v1/admin/jobs").json()["jobs"]] == [job["id"]]
        assert api.get(f"/v1/admin/jobs/{job['id']}").json()["kind"] == "evaluate"
        assert api.get("/v1/admin/jobs/abc123").status_code == 404
        bad = api.post("/v1/admin/jobs", json={"kind": "evaluate", "args": {"artifacts": "a"}})
        assert bad.status_code == 400 and "needs judgments" in bad.json()["detail"]
        assert api.post("/v1/admin/jobs", json={"kind": "shell", "args": {}}).status_code == 422
        assert api.get("/v1/admin/jobs", params={"limit": 0}).status_code == 422

        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPREC_")}
        env |= {"SHOPREC_REDIS_URL": redis_server.url, "SHOPREC_REDIS_PREFIX": "jobs-test:"}
        runner = subprocess.Popen(
            [sys.executable, "-m", "shoprec.cli", "worker", "--jobs", "--consumer", "r1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 180
            while (shown := api.get(f"/v1/admin/jobs/{job['id']}").json())["status"] != "failed":
                assert time.monotonic() < deadline, shown
                time.sleep(0.1)  # polling the job's state, with a deadline
        finally:
            runner.terminate()
            runner.wait(timeout=30)
        # the artifacts do not exist: both attempts failed, each with its error
        assert shown["attempts"] == 2 and len(shown["errors"]) == 2
        assert all(e.startswith("exit status 2") for e in shown["errors"]) and shown["worker"] == "r1"


def test_without_redis_there_are_no_job_routes(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    settings, headers = unsigned_settings(tmp_path, roles=("admin",), artifacts=tiny_static_artifacts, **FULL_QUALITY)
    with live_server(create_app(settings)).client(headers=headers) as api:
        r = api.get("/v1/admin/jobs")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
