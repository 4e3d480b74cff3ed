"""Fixtures for integration tests: real servers on loopback ports (tests/support/live.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from support.live import LiveServer, ServerProcess, start_server


@pytest.fixture
def live_server() -> Iterator[Callable[[FastAPI], LiveServer]]:
    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def run(app: FastAPI) -> LiveServer:
        server, thread, url = start_server(app)
        started.append((server, thread))
        return LiveServer(url, server, app)

    yield run
    for server, thread in started:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server_process() -> Iterator[Callable[..., ServerProcess]]:
    """Start a server in its own process with these settings (keyword arguments, as for
    ``Settings.load``) and, optionally, its ``command``; ready when returned, stopped after the test."""
    started: list[ServerProcess] = []

    def run(command: tuple[str, ...] = (), **settings: Any) -> ServerProcess:
        server = ServerProcess(settings, command=command)
        started.append(server)
        return server.start()

    yield run
    for server in started:
        server.stop()
