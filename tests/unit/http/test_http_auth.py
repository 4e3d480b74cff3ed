"""Authentication and the admin routes in-process, with no artifacts loaded."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from shoprec.http.app import create_app
from shoprec.security.apikeys import KeyStore
from shoprec.settings import Settings


def _client(tmp_path: Path, **overrides: object) -> tuple[TestClient, dict[str, str]]:
    store = KeyStore(tmp_path / "keys.json", time.time, iterations=1)
    keys = {role: store.create(role, [role])[1] for role in ("search", "events", "admin")}
    settings = Settings.load(
        environ={}, data_dir=tmp_path, keys_file=tmp_path / "keys.json", shed_loop_lag_ms=0, **overrides
    )
    return TestClient(create_app(settings)), keys


def test_reload_with_nothing_configured_is_a_client_error(tmp_path: Path) -> None:
    client, keys = _client(tmp_path)
    with client:
        r = client.post("/v1/admin/reload", headers={"X-API-Key": keys["admin"]})
        assert r.status_code == 400 and "nothing to reload" in r.json()["detail"]
        r = client.post(
            "/v1/admin/reload", json={"artifacts": str(tmp_path / "nope")}, headers={"X-API-Key": keys["admin"]}
        )
        assert r.status_code == 422 and r.json()["error"] == "artifact_refused"
        assert "no manifest.json; not an artifacts folder" in r.json()["detail"]
        assert client.get("/v1/admin/model", headers={"X-API-Key": keys["admin"]}).status_code == 503


def test_headers_are_read_strictly(tmp_path: Path) -> None:
    client, keys = _client(tmp_path, anonymous_read=True)
    with client:
        bearer = {"Authorization": f"Bearer {keys['search']}"}
        assert client.get("/v1/search", params={"q": "x"}, headers=bearer).status_code == 503  # past auth: no model
        for bad in ({"Authorization": "Bearer"}, {"Authorization": f"Token {keys['search']}"}, {"X-API-Key": " "}):
            r = client.get("/v1/search", params={"q": "x"}, headers=bad)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), bad
        assert client.get("/v1/search", params={"q": "x"}).status_code == 503  # anonymous read allowed
        assert client.post("/v1/events", json={"events": []}).status_code == 401  # never anonymous
        assert client.get("/v1/admin/model").status_code == 401
