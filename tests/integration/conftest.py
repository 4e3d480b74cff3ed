"""Fixtures for integration tests: real servers on loopback ports."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from live import LiveServer, start_server


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
