"""The role matrix over a real server: every endpoint × no key / wrong role / right role."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprec.http.app import create_app
from shoprec.security.apikeys import KeyStore, Role
from shoprec.settings import Settings
from support.live import FULL_QUALITY, LiveServer, wait_ready

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}
EVENT = {"events": [{"user_id": "U1", "item_id": "T000", "type": "click"}]}
# (method, path, request, role it needs)
ENDPOINTS: list[tuple[str, str, dict[str, Any], Role]] = [
    ("GET", "/v1/search", {"params": {"q": "drill", "k": 3}}, "search"),
    ("GET", "/v1/products/T000", {}, "search"),
    ("GET", "/v1/similar/T000", {"params": {"k": 3}}, "search"),
    ("GET", "/v1/recommend", {"params": {"k": 3}}, "search"),
    ("POST", "/v1/events", {"json": EVENT}, "events"),
    ("GET", "/metrics", {}, "metrics"),
    ("GET", "/v1/admin/model", {}, "admin"),
    ("POST", "/v1/admin/reload", {}, "admin"),
]
WRONG: dict[Role, tuple[Role, ...]] = {
    "search": ("events",),
    "events": ("search",),
    "metrics": ("search", "events"),
    "admin": ("search", "events", "metrics"),
}


@pytest.fixture
def server(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    store = KeyStore(tmp_path / "keys.json", time.time, iterations=1)
    keys = {role: store.create(f"{role} key", [role])[1] for role in ("search", "events", "metrics", "admin")}
    revoked_id, keys["revoked"] = store.create("old admin key", ["admin"])
    store.revoke(revoked_id)
    settings = Settings.load(
        environ={},
        artifacts=tiny_static_artifacts,
        data_dir=tmp_path,
        keys_file=tmp_path / "keys.json",
        require_signature=False,
        metrics_anonymous="none",  # loopback clients, as this test's, would read /metrics without a key
        **FULL_QUALITY,  # every right key gets its 2xx, however busy the machine
    )
    live = live_server(create_app(settings))
    with live.client() as c:
        wait_ready(c)
    yield live, keys


def _call(client: httpx.Client, method: str, path: str, request: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {"X-API-Key": key} if key is not None else {}
    return client.request(method, path, headers=headers, **request)


def test_role_matrix(server: tuple[LiveServer, dict[str, str]]) -> None:
    live, keys = server
    with live.client() as client:
        for method, path, request, role in ENDPOINTS:
            r = _call(client, method, path, request, None)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized", (path, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")
            for wrong in WRONG[role]:
                r = _call(client, method, path, request, keys[wrong])
                assert r.status_code == 403 and r.json()["error"] == "forbidden", (path, wrong, r.text)
            for right in (role, "admin"):
                r = _call(client, method, path, request, keys[right])
                assert 200 <= r.status_code < 300, (path, right, r.text)
            r = _call(client, method, path, request, keys["revoked"])
            assert r.status_code == 401, (path, "revoked", r.text)
            r = _call(client, method, path, request, keys[role][:-2] + "xx")  # a wrong secret
            assert r.status_code == 401, (path, "wrong secret", r.text)
        # the Bearer form works the same; a malformed Authorization header is refused
        r = client.get("/v1/admin/model", headers={"Authorization": f"Bearer {keys['admin']}"})
        assert r.status_code == 200
        assert client.get("/v1/search", params={"q": "x"}, headers={"Authorization": "Basic abc"}).status_code == 401
        for method, path in PUBLIC:
            assert client.request(method, path).status_code == 200


def test_every_route_in_the_spec_needs_a_key(server: tuple[LiveServer, dict[str, str]]) -> None:
    """Routes added later (catalog updates, registry) are covered too: only the probes are public."""
    live, _ = server
    with live.client() as client:
        spec = client.get("/openapi.json").json()
        checked = 0
        for path, ops in spec["paths"].items():
            concrete = path.replace("{product_id}", "T000").replace("{", "").replace("}", "")
            for method in ops:
                if (method.upper(), path) in PUBLIC:
                    continue
                r = client.request(method.upper(), concrete)
                assert r.status_code == 401, (method, path, r.status_code, r.text)
                checked += 1
        assert checked >= len(ENDPOINTS)


def test_anonymous_reads_are_a_setting_and_never_cover_events_or_admin(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    settings = Settings.load(
        environ={},
        artifacts=tiny_static_artifacts,
        data_dir=tmp_path,
        anonymous_read=True,
        require_signature=False,
        **FULL_QUALITY,
    )
    with live_server(create_app(settings)).client() as client:
        wait_ready(client)
        for method, path, request, role in ENDPOINTS:
            r = _call(client, method, path, request, None)
            if role == "search" or path == "/metrics":  # /metrics: this client is on loopback
                assert r.status_code == 200, (path, r.text)
            else:
                assert r.status_code == 401, (path, r.text)
        # a key that is presented is checked even where anonymous reads are allowed
        assert _call(client, "GET", "/v1/search", {"params": {"q": "drill"}}, "sr_bad").status_code == 401
