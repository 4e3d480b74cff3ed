"""Browser tests: Debian's chromium (``/usr/bin/chromium``, never a browser download) driven by
Playwright against a real server on a loopback port (tests/support/live.py) over the tiny shop.

Every test here carries the ``browser`` mark and is skipped, saying why, when chromium or
Playwright is missing (scripts/test.sh installs chromium with apt-get). Nothing waits on time:
Playwright's expectations retry until the page shows what they expect, within a deadline, and
pressure on the server is set explicitly."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from shoprec.http.app import create_app
from support.apikeyhelp import unsigned_settings
from support.live import LiveServer, start_server, wait_ready

CHROMIUM = Path("/usr/bin/chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless chromium for one test. Not one per session: Playwright's sync API runs an
    event loop on this thread while it is started, and under pytest-xdist the other tests a
    worker runs in between (asyncio.run, pytest-asyncio) would find that loop running."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run browser tests")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.skip("the playwright package is missing: pip install -e '.[dev]'")
    # deadlines, not waits: expectations retry until the page shows what they expect, and on a
    # busy 2-core CI machine (a Ray cluster in the next test process) 5 s is not always enough
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., tuple[LiveServer, dict[str, str]]]]:
    """Start the app with these settings (keys on, unsigned artifacts allowed) on a loopback
    port in a thread of the test process, ready when returned; also the header of an admin key."""
    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def run(**overrides: Any) -> tuple[LiveServer, dict[str, str]]:
        settings, headers = unsigned_settings(tmp_path, roles=("admin",), **overrides)
        app = create_app(settings)
        server, thread, url = start_server(app)
        started.append((server, thread))
        live = LiveServer(url, server, app)
        with live.client() as client:
            wait_ready(client)
        return live, headers

    yield run
    for server, thread in started:
        server.should_exit = True
        thread.join(timeout=10)
