"""The storefront and ops pages' side of the API, over real servers on loopback: the pages and
their files, keyless storefront access (``storefront_anonymous``), ``GET /v1/ops/summary``, and
``/v1/admin/registry`` (history, rollback, promoting again; refusals; the audit log)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from shoprec.http.app import create_app
from shoprec.registry.store import Registry
from shoprec.security.apikeys import KeyStore
from support.apikeyhelp import unsigned_settings
from support.live import FULL_QUALITY, LiveServer, wait_ready

EVENT = {"events": [{"user_id": "demo-ada", "item_id": "T000", "type": "click"}]}


def _serve(
    live_server: Callable[[Any], LiveServer], tmp_path: Path, **overrides: Any
) -> tuple[LiveServer, dict[str, str]]:
    settings, headers = unsigned_settings(tmp_path, roles=("admin",), **FULL_QUALITY, **overrides)
    server = live_server(create_app(settings))
    with server.client() as client:
        wait_ready(client)
    return server, headers


def test_the_pages_and_their_files_are_served(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    server, _ = _serve(live_server, tmp_path, artifacts=tiny_static_artifacts)
    with server.client() as web:
        home = web.get("/")
        assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
        assert 'role="combobox"' in home.text and "/static/storefront.js" in home.text
        ops = web.get("/ops")
        assert ops.status_code == 200 and "/static/ops.js" in ops.text
        for name in ("storefront.js", "ops.js", "api.js", "keyform.js", "placeholder.js"):
            r = web.get(f"/static/{name}")
            assert r.status_code == 200 and "javascript" in r.headers["content-type"], name
        assert "http" not in web.get("/static/style.css").text.replace("https://", "")  # nothing from elsewhere
        assert web.get("/static/../settings.py").status_code == 404
        assert "/" not in web.get("/openapi.json").json()["paths"]  # pages are not API


def test_storefront_access_without_a_key_is_off_by_default_and_loopback_only(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    closed, _ = _serve(live_server, tmp_path / "closed", artifacts=tiny_static_artifacts)
    with closed.client() as web:
        assert web.get("/v1/search", params={"q": "drill"}).status_code == 401
        assert web.post("/v1/events", json=EVENT).status_code == 401
    settings, admin = unsigned_settings(
        tmp_path / "open", roles=("admin",), artifacts=tiny_static_artifacts, storefront_anonymous="loopback"
    )
    server = live_server(create_app(settings))
    with server.client() as web:
        wait_ready(web)
        assert web.get("/v1/search", params={"q": "drill"}).status_code == 200
        assert web.get("/v1/recommend", params={"user_id": "demo-ada"}).status_code == 200
        assert web.post("/v1/events", json=EVENT).status_code == 200
        assert web.get("/v1/admin/model").status_code == 401  # admin routes always need a key
        assert web.get("/v1/admin/model", headers=admin).status_code == 200
    remote = TestClient(create_app(settings))  # its client address is "testclient": not loopback
    with remote:
        assert remote.get("/v1/search", params={"q": "drill"}).status_code == 401
        assert remote.post("/v1/events", json=EVENT).status_code == 401


def _summary(api: httpx.Client, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        r = api.get("/v1/ops/summary")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if until(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.02)  # polling the server's counters, with a deadline


def test_ops_summary_counts_the_api_requests_of_the_window(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    server, headers = _serve(live_server, tmp_path, artifacts=tiny_static_artifacts, ops_window_s=30)
    with server.client() as web, server.client(headers=headers) as api:
        empty = web.get("/v1/ops/summary").json()  # from loopback: no key needed (metrics_anonymous)
        assert empty["requests"] == {**empty["requests"], "requests": 0, "p50_ms": None, "p99_ms": None}
        for q in ("drill", "hammer", "drill"):  # the second "drill" is a result-cache hit
            assert api.get("/v1/search", params={"q": q}).status_code == 200
        assert api.get("/v1/products/T000").status_code == 200
        for _ in range(3):  # neither health checks nor the summary itself count
            web.get("/healthz")
            web.get("/v1/ops/summary")
        body = _summary(api, lambda b: b["requests"]["requests"] >= 4)
    w = body["requests"]
    assert w["requests"] == 4 and w["window_s"] == 30 and 0 < w["span_s"] <= 30
    assert w["requests_per_s"] == pytest.approx(4 / w["span_s"], rel=1e-2)  # both rounded to 3 places
    assert 0 < w["p50_ms"] <= w["p99_ms"]
    assert body["degradation"] == {
        "level": "full",
        "levels": ["full"],  # degrade_under_load off (FULL_QUALITY)
        "in_flight": 0,
        "queued": 0,
        "max_in_flight": 64,
        "pressure": 0.0,
    }
    result = body["caches"]["result"]
    assert result["hits"] >= 1 and result["hit_ratio"] == result["hits"] / result["lookups"]
    assert body["model"]["model_id"] == "tiny-bag-of-words" and body["model"]["products"] == 30
    assert body["refusals"] == {"rate_limit": 0, "queue_full": 0, "deadline": 0}


def test_ops_summary_takes_the_metrics_access_rules(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    server, headers = _serve(live_server, tmp_path, artifacts=tiny_static_artifacts, metrics_anonymous="none")
    with server.client() as web:
        assert web.get("/v1/ops/summary").status_code == 401
        assert web.get("/v1/ops/summary", headers=headers).status_code == 200


def _registry(root: Path, artifacts: Path) -> Registry:
    registry = Registry(root)
    for version in ("v1", "v2", "v3"):
        registry.push(artifacts, version_id=version)
    for version in ("v1", "v2"):  # v3 is pushed, never promoted
        registry.set_current(version, action="promote", gates="test")
    return registry


def test_registry_rollback_and_promote_again_are_admin_only_and_audited(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    registry = _registry(tmp_path / "registry", tiny_static_artifacts)
    audit = tmp_path / "audit.jsonl"
    server, headers = _serve(live_server, tmp_path, registry=registry.root, registry_poll_s=3600, audit_log=audit)
    _, searcher = KeyStore(tmp_path / "keys.json", time.time, iterations=1).create("shop", ["search"])
    with server.client(headers=headers) as api:
        shown = api.get("/v1/admin/registry").json()
        pointer = (shown["configured"], shown["current"], shown["previous"], shown["serving"])
        assert pointer == (True, "v2", ["v1"], "v2")
        assert [(v["id"], v["served_before"]) for v in shown["versions"]] == [
            ("v3", False),
            ("v2", True),
            ("v1", True),
        ]
        assert [h["action"] for h in shown["history"]] == ["promote", "promote", "push", "push", "push"]

        r = api.post("/v1/admin/registry/promote", json={"version": "v3"})
        assert r.status_code == 409 and "shoprec registry promote v3" in r.json()["detail"]
        assert api.post("/v1/admin/registry/promote", json={"version": "v2"}).status_code == 400  # already current
        assert api.post("/v1/admin/registry/promote", json={"version": "v9"}).status_code == 404
        assert api.post("/v1/admin/registry/promote", json={"version": "../v1"}).status_code == 400

        back = api.post("/v1/admin/registry/rollback").json()
        assert (back["current"], back["previous"], back["serving"]) == ("v1", [], "v1")
        assert api.get("/v1/admin/model").json()["registry_version"] == "v1"
        assert api.post("/v1/admin/registry/rollback").status_code == 400  # nothing before v1
        again = api.post("/v1/admin/registry/promote", json={"version": "v2"}).json()
        assert (again["current"], again["previous"], again["serving"]) == ("v2", ["v1"], "v2")
        assert again["history"][0]["action"] == "promote" and again["history"][0]["actor"].startswith("key:")

        assert api.get("/v1/admin/registry", headers={"X-API-Key": searcher}).status_code == 403
        assert api.post("/v1/admin/registry/rollback", headers={"X-API-Key": searcher}).status_code == 403
    actions = [json.loads(line)["action"] for line in audit.read_text().splitlines()]
    assert actions.count("registry.rollback") == 1 and actions.count("registry.promote") == 1


def test_without_a_registry_the_ops_page_is_told_so(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    server, headers = _serve(live_server, tmp_path, artifacts=tiny_static_artifacts)
    with server.client(headers=headers) as api:
        assert api.get("/v1/admin/registry").json() == {
            "configured": False,
            "current": None,
            "previous": [],
            "serving": None,
            "versions": [],
            "history": [],
        }
        r = api.post("/v1/admin/registry/rollback")
        assert r.status_code == 400 and "no registry" in r.json()["detail"]
