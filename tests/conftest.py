"""Shared fixtures. The real MiniLM teacher is exported to ONNX once (cached under
SHOPREC_CACHE_DIR, default ~/.cache/shoprec) and small artifacts are built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tinyshop import tiny_events, tiny_products  # noqa: E402


@pytest.fixture(scope="session")
def teacher_dir() -> Path:
    from shoprec.pipeline.build import ensure_teacher_encoder

    return ensure_teacher_encoder()


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory: pytest.TempPathFactory, teacher_dir: Path) -> Path:
    """Artifacts over the tiny catalog, ranker trained from events, built once per session."""
    from shoprec.pipeline.build import build

    out = tmp_path_factory.mktemp("artifacts") / "tiny"
    build(tiny_products(), out, events=tiny_events(), encoder_dir=teacher_dir, progress=False)
    return out


@pytest.fixture()
def redis_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh real redis-server on a free loopback port (see tests/redisserver.py)."""
    from redisserver import RedisServer

    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()
