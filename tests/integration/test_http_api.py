"""The HTTP API over a real server on loopback, with real artifacts (BM25, FAISS, the trained
ranker) over the tiny encoder built in code; what only MiniLM can answer (synonyms, typos,
another script) is asked of MiniLM's artifacts, in the one test marked ``model``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprec.adapters.eventlog import JsonlEventLog
from shoprec.http.app import create_app
from support.apikeyhelp import unsigned_settings
from support.live import FULL_QUALITY, LiveServer, wait_ready
from support.tinyencoder import MODEL_ID


@contextmanager
def _serve(live_server: Callable[[Any], LiveServer], artifacts: Path, tmp_path: Path) -> Iterator[httpx.Client]:
    settings, headers = unsigned_settings(
        tmp_path,
        artifacts=artifacts,
        max_body_bytes=20_000,
        max_events_per_batch=50,
        max_query_chars=64,
        max_k=20,
        # these tests check full-quality answers, whatever else the machine is doing
        **FULL_QUALITY,
    )
    server = live_server(create_app(settings))
    with server.client(headers=headers) as client:
        wait_ready(client)
        yield client


@pytest.fixture
def api(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> Iterator[httpx.Client]:
    with _serve(live_server, tiny_static_artifacts, tmp_path) as client:
        yield client


def _ids(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()["results"]]


def test_health_ready_and_openapi(api: httpx.Client) -> None:
    assert api.get("/healthz").json()["status"] == "ok"
    ready = api.get("/readyz").json()
    assert ready["products"] == 30 and ready["model_id"] == MODEL_ID
    spec = api.get("/openapi.json").json()
    assert {
        "/v1/search",
        "/v1/products/{product_id}",
        "/v1/similar/{product_id}",
        "/v1/events",
    } <= set(spec["paths"])


def test_search_finds_products(api: httpx.Client) -> None:
    assert set(_ids(api.get("/v1/search", params={"q": "cordless drill", "k": 3}))) & {"T000", "T024"}
    assert _ids(api.get("/v1/search", params={"q": "garden hose", "k": 1})) == ["T014"]


@pytest.mark.model
def test_minilm_finds_synonyms_typos_and_cjk(
    live_server: Callable[[Any], LiveServer], tiny_artifacts: Path, tmp_path: Path
) -> None:
    with _serve(live_server, tiny_artifacts, tmp_path) as api:
        assert set(_ids(api.get("/v1/search", params={"q": "couch", "k": 2}))) <= {"T006", "T007"}  # and sofa
        assert set(_ids(api.get("/v1/search", params={"q": "cordles dril", "k": 2}))) & {"T000", "T024"}
        assert _ids(api.get("/v1/search", params={"q": "电钻", "k": 1})) == ["T024"]


def test_search_response_shape_and_explain(api: httpx.Client) -> None:
    body = api.get("/v1/search", params={"q": "drill", "k": 5, "explain": "true"}).json()
    assert body["k"] == 5 and len(body["results"]) == 5 and body["ranker"] == "learned"
    assert body["model_version"] and body["timings_ms"]["total_ms"] > 0
    first = body["results"][0]
    assert {"id", "title", "score", "price", "in_stock", "stages"} <= set(first)
    assert {"bm25", "dense", "fusion", "final"} <= set(first["stages"])
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    plain = api.get("/v1/search", params={"q": "drill"}).json()
    assert "stages" not in plain["results"][0]


@pytest.mark.parametrize("pipeline", ["bm25", "dense", "hybrid", "full"])
def test_every_pipeline_answers(api: httpx.Client, pipeline: str) -> None:
    body = api.get("/v1/search", params={"q": "garden hose", "pipeline": pipeline}).json()
    assert body["pipeline"] == pipeline and body["results"][0]["id"] == "T014"


def test_filters(api: httpx.Client) -> None:
    def search(**params: Any) -> list[dict[str, Any]]:
        r = api.get("/v1/search", params={"q": "drill", "k": 20, **params})
        assert r.status_code == 200, r.text
        return list(r.json()["results"])

    assert all(r["category"].startswith("Tools > Power Tools") for r in search(category="tools > power tools"))
    assert {r["brand"] for r in search(brand="IRONRIDGE")} == {"Ironridge"}
    assert all(10 <= r["price"] <= 100 for r in search(min_price=10, max_price=100))
    assert all(r["in_stock"] for r in search(in_stock="true"))
    assert search(category="No Such Department") == []


def test_products_and_similar(api: httpx.Client) -> None:
    p = api.get("/v1/products/T006").json()
    assert p["title"].startswith("Comfy Leather Sofa") and p["price"] == 899.0
    sim = api.get("/v1/similar/T006", params={"k": 3}).json()
    assert sim["results"][0]["id"] == "T007" and "T006" not in [r["id"] for r in sim["results"]]
    assert api.get("/v1/products/NOPE").status_code == 404
    assert api.get("/v1/similar/NOPE").json()["error"] == "not_found"


def test_events_are_validated_and_stored(api: httpx.Client, tmp_path: Path) -> None:
    events = [
        {"user_id": "U1", "item_id": "T000", "type": "click", "query": "drill", "timestamp": 1.7e9},
        {"user_id": "U1", "item_id": "T000", "type": "purchase"},
        {"user_id": "U2", "item_id": "NEW-1", "type": "view"},
    ]
    r = api.post("/v1/events", json={"events": events})
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "unknown_items": ["NEW-1"]}
    stored = list(JsonlEventLog(tmp_path / "events.jsonl").read())
    assert [e.type for e in stored] == ["click", "purchase", "view"]
    assert stored[0].query == "drill" and stored[1].timestamp > 1.7e9


BAD_SEARCHES = [
    ({}, 422),
    ({"q": ""}, 422),
    ({"q": "   "}, 400),
    ({"q": "x" * 65}, 422),
    ({"q": "drill", "k": 0}, 422),
    ({"q": "drill", "k": 21}, 422),
    ({"q": "drill", "k": "ten"}, 422),
    ({"q": "drill", "min_price": -1}, 422),
    ({"q": "drill", "min_price": "nan"}, 422),
    ({"q": "drill", "max_price": "inf"}, 422),
    ({"q": "drill", "min_price": 50, "max_price": 10}, 400),
    ({"q": "drill", "in_stock": "perhaps"}, 422),
    ({"q": "drill", "pipeline": "magic"}, 422),
]


@pytest.mark.parametrize(("params", "status"), BAD_SEARCHES)
def test_bad_search_requests_get_json_4xx(api: httpx.Client, params: dict[str, Any], status: int) -> None:
    r = api.get("/v1/search", params=params)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] and body["detail"]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"{not json", 422),
        (b"[]", 422),
        (b'{"events": []}', 422),
        (b'{"events": [{"user_id": "U", "item_id": "T000", "type": "like"}]}', 422),
        (b'{"events": [{"user_id": "", "item_id": "T000", "type": "click"}]}', 422),
        (
            b'{"events": [{"user_id": "U", "item_id": "T000", "type": "click", "timestamp": -5}]}',
            422,
        ),
        (b'{"events": [{"user_id": "U", "item_id": "T000", "type": "click", "extra": 1}]}', 422),
    ],
)
def test_bad_event_batches_get_json_4xx(api: httpx.Client, payload: bytes, status: int) -> None:
    r = api.post("/v1/events", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"] == "validation_error"


def test_too_many_events_and_too_large_bodies(api: httpx.Client) -> None:
    one = {"user_id": "U", "item_id": "T000", "type": "click"}
    assert api.post("/v1/events", json={"events": [one] * 51}).status_code == 422
    big = b'{"events": [' + b",".join([b'{"user_id": "U", "item_id": "T000", "type": "click"}'] * 500) + b"]}"
    r = api.post("/v1/events", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"

    def chunks() -> Any:  # no Content-Length: the limit applies to what is streamed
        for _ in range(100):
            yield b" " * 1000

    r = api.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


def test_unknown_routes_and_methods_are_json(api: httpx.Client) -> None:
    r = api.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = api.delete("/v1/search")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_not_ready_without_artifacts(live_server: Callable[[Any], LiveServer], tmp_path: Path) -> None:
    settings, headers = unsigned_settings(tmp_path, artifacts=tmp_path / "missing", **FULL_QUALITY)
    with live_server(create_app(settings)).client(headers=headers) as client:
        _check_not_ready(client)


def _check_not_ready(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    r = client.get("/v1/search", params={"q": "drill"})
    for _ in range(200):
        if r.status_code == 503 and "no manifest" in r.json()["detail"]:
            break
        r = client.get("/v1/search", params={"q": "drill"})
    assert r.status_code == 503 and r.headers["retry-after"]
    assert client.get("/readyz").status_code == 503


def test_events_personalize_and_survive_restart(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    settings, headers = unsigned_settings(tmp_path, artifacts=tiny_static_artifacts, **FULL_QUALITY)
    params = {"q": "drill", "k": 5, "user_id": "shopper-new"}
    with live_server(create_app(settings)).client(headers=headers) as first:
        wait_ready(first)
        assert first.get("/v1/search", params=params).json()["personalized"] is False
        events = [{"user_id": "shopper-new", "item_id": "T001", "type": "purchase"}]
        assert first.post("/v1/events", json={"events": events}).status_code == 200
        assert first.get("/v1/search", params=params).json()["personalized"] is True
    with live_server(create_app(settings)).client(headers=headers) as second:  # a restarted service
        wait_ready(second)
        body = second.get("/v1/search", params=params).json()
        assert body["personalized"] is True
        assert second.get("/v1/search", params={**params, "user_id": "other"}).json()["personalized"] is False
