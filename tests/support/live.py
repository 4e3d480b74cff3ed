"""Real uvicorn servers on loopback ports, and the settings under which their answers are
full quality.

- :func:`start_server`: the app in a thread of the test process, awaited on
  ``server.started``. For tests that need a real socket (and may reach into ``app.state``)
  but put no load on the server: the server's event loop shares the test's GIL.
- :class:`ServerProcess`: ``uvicorn --factory shoprec.http.app:app_from_env`` in its own
  process, configured by ``SHOPREC_*`` variables alone, on the port uvicorn bound (``--port
  0``), awaited on ``/readyz``. For tests that load the server (clients hammering it from
  threads): there the test's own work would make an in-thread server's loop lag.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from shoprec.settings import Settings

# Settings under which no answer depends on how busy the machine is: no time-based shedding
# at the front door, no step down the degradation ladder. Tests of full-quality answers use
# them; tests of shedding and of the ladder drive those with explicit pressure instead.
FULL_QUALITY: dict[str, Any] = {"shed_loop_lag_ms": 0, "degrade_under_load": False}


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    app: FastAPI

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)  # type: ignore[arg-type]


def start_server(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)  # waiting on a real thread's start, not on timing behaviour
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def wait_ready(client: httpx.Client, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"not ready: {client.get('/readyz').text}")


def settings_env(**values: Any) -> dict[str, str]:
    """``SHOPREC_*`` variables for these settings (None: left at the default), checked here
    first so that a wrong value fails in the test, not in the server's log."""
    env: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple | list):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        env[f"SHOPREC_{name.upper()}"] = text
    Settings.load(environ=env)
    return env


_STARTED = re.compile(r"Uvicorn running on https?://[^\s:]+:(\d+)")


@dataclass
class ServerProcess:
    """A shoprec server in a process of its own; :meth:`stop` it (a fixture's finalizer)."""

    settings: Mapping[str, Any]
    startup_timeout_s: float = 120.0
    # the command; default uvicorn on the app factory. `shoprec serve` (several workers) takes
    # its port and log level from the settings: pass port=0 and log_level="info" there.
    command: tuple[str, ...] = ()
    url: str = ""
    log: list[str] = field(default_factory=list)
    _proc: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def start(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPREC_")}  # nothing from the shell
        env |= {"SHOPREC_LOG_LEVEL": "warning", "OMP_WAIT_POLICY": "PASSIVE"}  # as `shoprec serve` runs
        env |= settings_env(**self.settings)
        command = list(self.command) or (
            [sys.executable, "-m", "uvicorn", "--factory", "shoprec.http.app:app_from_env"]
            + ["--host", "127.0.0.1", "--port", "0", "--log-level", "info", "--no-access-log"]
        )
        self._proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        bound = threading.Event()
        port: list[int] = []

        def read(stream: Any) -> None:  # drains the pipe for the whole life of the server
            for line in stream:
                self.log.append(line.rstrip())
                if not port and (m := _STARTED.search(line)):
                    port.append(int(m.group(1)))
                    bound.set()
            bound.set()  # the process is gone

        self._reader = threading.Thread(target=read, args=(self._proc.stderr,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout_s
        try:
            if not bound.wait(self.startup_timeout_s) or not port:
                raise RuntimeError(f"the server did not bind a port:\n{self.tail()}")
            self.url = f"http://127.0.0.1:{port[0]}"
            with httpx.Client(base_url=self.url, timeout=10) as client:
                while not self._ready(client):
                    if self._proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the server did not get ready:\n{self.tail()}")
                    time.sleep(0.05)  # polling readiness, with a deadline
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _ready(client: httpx.Client) -> bool:
        try:
            return client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log[-lines:])

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL after 15 s."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None
