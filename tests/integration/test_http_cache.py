"""Result caching and catalog updates over a real server on loopback, with real artifacts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprec.http.app import create_app
from support.apikeyhelp import unsigned_settings
from support.live import FULL_QUALITY, LiveServer, wait_ready


@pytest.fixture
def api(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> Iterator[httpx.Client]:
    # full quality throughout: an answer served at another level is not the cached one
    settings, headers = unsigned_settings(
        tmp_path, roles=("search", "admin"), artifacts=tiny_static_artifacts, **FULL_QUALITY
    )
    server = live_server(create_app(settings))
    with server.client(headers=headers) as client:
        wait_ready(client)
        yield client


def test_a_repeated_search_is_served_from_the_cache(api: httpx.Client) -> None:
    first = api.get("/v1/search", params={"q": "cordless drill", "k": 5})
    again = api.get("/v1/search", params={"q": "  Cordless DRILL ", "k": 5})
    assert first.status_code == again.status_code == 200
    assert first.json()["cached"] is False and again.json()["cached"] is True
    assert [r["id"] for r in again.json()["results"]] == [r["id"] for r in first.json()["results"]]
    other_k = api.get("/v1/search", params={"q": "cordless drill", "k": 4}).json()
    assert other_k["cached"] is False and len(other_k["results"]) == 4
    filtered = api.get("/v1/search", params={"q": "cordless drill", "k": 5, "in_stock": "true"}).json()
    assert filtered["cached"] is False


def test_a_price_or_stock_change_invalidates_and_filters_see_it(api: httpx.Client) -> None:
    params: dict[str, str | int] = {"q": "garden hose", "k": 3}
    top = api.get("/v1/search", params=params).json()["results"][0]
    assert top["id"] == "T014"
    assert api.get("/v1/search", params=params).json()["cached"] is True

    patched = api.patch("/v1/products/T014", json={"price": 1234.5})
    assert patched.status_code == 200, patched.text
    assert patched.json()["product"]["price"] == 1234.5 and patched.json()["invalidated_results"] >= 1
    fresh = api.get("/v1/search", params=params).json()
    assert fresh["cached"] is False and fresh["results"][0]["price"] == 1234.5
    cheap = api.get("/v1/search", params={**params, "max_price": 1000}).json()
    assert "T014" not in [r["id"] for r in cheap["results"]]

    assert api.patch("/v1/products/T014", json={"in_stock": False}).status_code == 200
    in_stock = api.get("/v1/search", params={**params, "in_stock": "true"}).json()
    assert "T014" not in [r["id"] for r in in_stock["results"]]
    assert api.get("/v1/products/T014").json()["in_stock"] is False


def test_a_removed_product_leaves_search_and_the_cache(api: httpx.Client) -> None:
    params: dict[str, str | int] = {"q": "garden hose", "k": 3}
    assert api.get("/v1/search", params=params).json()["results"][0]["id"] == "T014"
    removed = api.delete("/v1/products/T014")
    assert removed.status_code == 200 and removed.json()["removed"] is True
    after = api.get("/v1/search", params=params).json()
    assert after["cached"] is False and "T014" not in [r["id"] for r in after["results"]]
    assert api.get("/v1/products/T014").status_code == 404
    assert api.delete("/v1/products/T014").status_code == 404
    similar = api.get("/v1/similar/T013", params={"k": 29}).json()
    assert "T014" not in [r["id"] for r in similar["results"]]


def test_bad_catalog_updates_get_clear_4xx_errors(api: httpx.Client) -> None:
    assert api.patch("/v1/products/NOPE", json={"price": 3.0}).status_code == 404
    for body in ({}, {"price": -1}, {"price": "cheap"}, {"colour": "red"}):
        resp = api.patch("/v1/products/T001", json=body)
        assert 400 <= resp.status_code < 500, (body, resp.text)
        assert "error" in resp.json() or "detail" in resp.json()


def test_two_replicas_share_the_cache_and_invalidations_through_redis(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path, redis_server: Any
) -> None:
    # Two replicas in one test process share one GIL: one's start-up work makes the other's
    # event loop lag, which its front-door shedder would (rightly) answer with 503s. Here they
    # answer at full quality whatever the lag; shedding has its own tests.
    settings, headers = unsigned_settings(
        tmp_path,
        roles=("search", "admin"),
        artifacts=tiny_static_artifacts,
        redis_url=redis_server.url,
        **FULL_QUALITY,
    )
    a = live_server(create_app(settings))
    b = live_server(create_app(settings))
    with a.client(headers=headers) as ca, b.client(headers=headers) as cb:
        wait_ready(ca)
        wait_ready(cb)
        params: dict[str, str | int] = {"q": "garden hose", "k": 3}
        assert ca.get("/v1/search", params=params).json()["cached"] is False
        assert cb.get("/v1/search", params=params).json()["cached"] is True  # filled by replica a
        assert ca.patch("/v1/products/T014", json={"price": 77.0}).status_code == 200
        give_up = time.monotonic() + 10  # replica b applies the published update in its listener thread
        while (body := cb.get("/v1/products/T014").json())["price"] != 77.0 and time.monotonic() < give_up:
            pass
        assert body["price"] == 77.0
        fresh = cb.get("/v1/search", params=params).json()
        assert fresh["cached"] is False and fresh["results"][0]["price"] == 77.0
