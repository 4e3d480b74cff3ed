#!/usr/bin/env python
"""Screenshots of the storefront (/) and the ops page (/ops) for the docs, taken in Debian's
chromium (/usr/bin/chromium) with Playwright, as the browser tests drive it.

Serves the demo's artifacts (``./scripts/demo.sh --no-serve`` builds them into .shoprec/demo)
on a free loopback port, with a throw-away data dir, API keys and a registry holding the
artifacts twice (so the ops page has history to show), sends some traffic, and writes
docs/img/storefront.png, docs/img/storefront-suggest.png, docs/img/product.png and
docs/img/ops.png.

    .venv/bin/python scripts/screenshots.py [--demo-dir .shoprec/demo] [--out docs/img]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from playwright.sync_api import expect, sync_playwright

from shoprec.http.app import create_app
from shoprec.registry.store import Registry
from shoprec.security.apikeys import KeyStore
from shoprec.security.crypto import public_key_path
from shoprec.settings import Settings

CHROMIUM = "/usr/bin/chromium"
QUERIES = ["cordless drill", "sofa", "drill", "lamp", "paint", "desk", "rug", "hammer", "kettle", "shoes"]


def serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:  # waiting for the thread to bind, with a deadline
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=30) as client:
        while client.get("/readyz").status_code != 200:
            if time.monotonic() > deadline + 120:
                raise SystemExit(f"not ready: {client.get('/readyz').text}")
            time.sleep(0.2)
    return server, thread, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo-dir", default=".shoprec/demo", help="what `shoprec demo` built")
    parser.add_argument("--out", default="docs/img")
    args = parser.parse_args(argv)
    demo, out = Path(args.demo_dir), Path(args.out)
    artifacts = demo / "artifacts"
    if not (artifacts / "manifest.json").is_file():
        print(f"no artifacts in {artifacts}: run ./scripts/demo.sh --no-serve first", file=sys.stderr)
        return 2
    public = public_key_path(demo / "keys" / "signing.key")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shoprec-screens-") as tmp:
        root = Path(tmp)
        registry = Registry(root / "registry")
        for version in ("v1-demo", "v2-demo"):  # the same artifacts twice: a history to show
            registry.push(artifacts, version_id=version)
            registry.set_current(version, action="promote", gates="screenshots")
        _, admin = KeyStore(root / "keys.json", time.time, iterations=1).create("screenshots", ["admin"])
        settings = Settings.load(
            environ={},
            registry=root / "registry",
            trusted_keys=(public,),
            keys_file=root / "keys.json",
            data_dir=root / "data",
            storefront_anonymous="loopback",
            registry_poll_s=3600,
        )
        server, thread, url = serve(settings)
        try:
            shoot(url, admin, out)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
    for name in ("storefront.png", "storefront-suggest.png", "product.png", "ops.png"):
        print(out / name)
    return 0


def shoot(url: str, admin: str, out: Path) -> None:
    with httpx.Client(base_url=url, timeout=30) as api:  # some traffic for the ops page
        for i in range(300):
            api.get("/v1/search", params={"q": QUERIES[i % len(QUERIES)], "user_id": f"U{1 + i % 40:05d}"})
        for q in ("cordl", "sof", "lam"):
            api.get("/v1/suggest", params={"q": q})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1360, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(url + "/")
        page.get_by_label("Shopping as").select_option("U00001")
        box = page.get_by_role("combobox", name="Search products")
        box.press_sequentially("cordless dril")
        expect(page.get_by_role("listbox", name="Suggestions")).to_be_visible()
        box.press("ArrowDown")
        expect(page.get_by_role("option").first).to_have_attribute("aria-selected", "true")
        page.screenshot(path=str(out / "storefront-suggest.png"))
        box.fill("cordless drlil")
        box.press("Enter")
        expect(page.locator("#correction")).to_be_visible()
        expect(page.locator("#results > li").first).to_be_visible()
        page.screenshot(path=str(out / "storefront.png"))
        page.locator("#results > li").first.get_by_role("link").click()
        expect(page.locator("#similar > li").first).to_be_visible()
        page.screenshot(path=str(out / "product.png"), full_page=True)
        page.goto(url + "/ops")
        page.get_by_label("Admin API key").fill(admin)
        page.get_by_label("Admin API key").press("Enter")
        expect(page.locator("#versions tbody tr").first).to_be_visible()
        expect(page.locator("#p99")).to_contain_text("ms")
        page.screenshot(path=str(out / "ops.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    raise SystemExit(main())
