"""Shared fixtures: artifacts over the tiny shop, built once per session.

``tiny_static_artifacts`` use a tiny bag-of-words encoder built in code (no torch, no
download): for every test of what surrounds the model. ``tiny_artifacts`` use the real
MiniLM teacher (exported to ONNX with torch once, cached under SHOPREC_CACHE_DIR, default
~/.cache/shoprec): only for tests of MiniLM's own behaviour, which carry the ``model`` mark —
collection fails for a test that uses MiniLM without the mark, or has the mark without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from support.tinyshop import tiny_events, tiny_products  # noqa: E402

MINILM_FIXTURES = ("teacher_dir", "tiny_artifacts")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``model`` mark says exactly which tests use the real MiniLM, so that
    ``-m "not model"`` never exports or loads it."""
    wrong = []
    for item in items:
        uses = any(name in MINILM_FIXTURES for name in getattr(item, "fixturenames", ()))
        if uses != (item.get_closest_marker("model") is not None):
            wrong.append(f"{item.nodeid}: {'uses MiniLM without' if uses else 'is marked but does not use'} the mark")
    if wrong:
        raise pytest.UsageError("the model mark means the real MiniLM and nothing else:\n" + "\n".join(wrong))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bag-of-words encoder over the tiny shop's words (tests/support/tinyencoder.py)."""
    from support.tinyencoder import catalog_texts, write_encoder

    return write_encoder(tmp_path_factory.mktemp("encoders") / "tiny", catalog_texts(tiny_products()))


@pytest.fixture(scope="session")
def tiny_static_artifacts(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Path:
    """Artifacts over the tiny shop with the tiny encoder, ranker trained from events: real
    BM25, FAISS, LightGBM ranker, recommenders and ladder, built in seconds without torch."""
    from shoprec.pipeline.build import build

    out = tmp_path_factory.mktemp("artifacts") / "tiny-static"
    build(tiny_products(), out, events=tiny_events(), encoder_dir=tiny_encoder_dir, progress=False)
    return out


@pytest.fixture(scope="session")
def teacher_dir() -> Path:
    from shoprec.pipeline.build import ensure_teacher_encoder

    return ensure_teacher_encoder()


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory: pytest.TempPathFactory, teacher_dir: Path) -> Path:
    """Artifacts over the tiny shop with the real MiniLM: for tests of MiniLM's behaviour."""
    from shoprec.pipeline.build import build

    out = tmp_path_factory.mktemp("artifacts") / "tiny"
    build(tiny_products(), out, events=tiny_events(), encoder_dir=teacher_dir, progress=False)
    return out


@pytest.fixture()
def redis_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh real redis-server on a free loopback port (see tests/support/redisserver.py)."""
    from support.redisserver import RedisServer

    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def durable_redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A redis-server with the append-only file fsync'd before every reply (appendfsync always):
    what the event stream needs to keep an acknowledged event through a Redis restart."""
    from support.redisserver import RedisServer

    server = RedisServer(tmp_path, appendfsync="always").start()
    try:
        yield server
    finally:
        server.stop()
