"""``shoprec demo`` serves through ``cmd_serve`` with the demo's own arguments, which hold
none of ``serve``'s Ray options: it must reach uvicorn, not trip on the missing options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn

from shoprec import cli


def test_the_demo_namespace_serves(
    tiny_static_artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SHOPREC_ARTIFACTS", "SHOPREC_WORKERS", "SHOPREC_METRICS_DIR", "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)  # cmd_serve sets them for its workers: restored after
    monkeypatch.setenv("SHOPREC_DATA_DIR", str(tmp_path))
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    args = cli.parser().parse_args(["demo", "--no-serve", "--port", "8123"])
    args.artifacts, args.workers = str(tiny_static_artifacts), 1  # what cmd_demo sets before serving
    assert cli.cmd_serve(args) == 0
    assert [app for app, _ in calls] == ["shoprec.http.app:app_from_env"]
    assert calls[0][1]["workers"] == 1 and calls[0][1]["port"] == 8123
