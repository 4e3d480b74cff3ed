"""``GET /metrics`` in-process over the tiny shop's artifacts: who may read it, and that what
the service did shows in it (requests by route template, stages, levels, refusals, caches,
the model, events)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from shoprec.http.app import create_app
from shoprec.models.bundle import load_bundle
from shoprec.security.apikeys import KeyStore
from shoprec.serving.recommend import RecommendService
from shoprec.serving.search import SearchService
from shoprec.settings import Settings
from support.live import FULL_QUALITY

LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition: (name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def services(tiny_static_artifacts: Path) -> tuple[SearchService, RecommendService | None]:
    bundle = load_bundle(tiny_static_artifacts)
    return SearchService(bundle), RecommendService.load(bundle.folder, bundle.catalog)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    store = KeyStore(tmp_path / "keys.json", time.time, iterations=1)
    return {role: store.create(role, [role])[1] for role in ("search", "events", "metrics", "admin")}


def _app(tmp_path: Path, services: tuple[SearchService, RecommendService | None], **overrides: Any) -> Any:
    settings = Settings.load(
        environ={},
        data_dir=tmp_path,
        keys_file=tmp_path / "keys.json",
        require_signature=False,
        **{**FULL_QUALITY, **overrides},
    )
    return create_app(settings, search=services[0], recommend=services[1])


@pytest.fixture
def client(
    tmp_path: Path, keys: dict[str, str], services: tuple[SearchService, RecommendService | None]
) -> Iterator[TestClient]:
    with TestClient(_app(tmp_path, services, result_cache_entries=100), client=LOOPBACK) as c:
        yield c


def test_loopback_reads_anonymously_others_need_a_metrics_or_admin_key(
    tmp_path: Path, keys: dict[str, str], services: tuple[SearchService, RecommendService | None]
) -> None:
    app = _app(tmp_path, services)
    with TestClient(app, client=LOOPBACK) as local, TestClient(app, client=REMOTE) as remote:
        r = local.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert "shoprec_http_request_duration_seconds" in r.text
        assert remote.get("/metrics").status_code == 401
        for role in ("metrics", "admin"):
            assert remote.get("/metrics", headers={"X-API-Key": keys[role]}).status_code == 200
        r = remote.get("/metrics", headers={"X-API-Key": keys["search"]})
        assert r.status_code == 403 and r.json()["error"] == "forbidden"


@pytest.mark.parametrize(("anonymous", "local", "remote"), [("none", 401, 401), ("any", 200, 200)])
def test_anonymous_access_is_a_setting(
    tmp_path: Path,
    keys: dict[str, str],
    services: tuple[SearchService, RecommendService | None],
    anonymous: str,
    local: int,
    remote: int,
) -> None:
    app = _app(tmp_path, services, metrics_anonymous=anonymous)
    with TestClient(app, client=LOOPBACK) as a, TestClient(app, client=REMOTE) as b:
        assert (a.get("/metrics").status_code, b.get("/metrics").status_code) == (local, remote)


def test_what_the_service_did_shows_in_the_metrics(client: TestClient, keys: dict[str, str]) -> None:
    search = {"X-API-Key": keys["search"]}
    for q in ("cordless drill", "hammer", "cordless drill"):  # the third is a result cache hit
        assert client.get("/v1/search", params={"q": q}, headers=search).status_code == 200
    # one the route refuses (validation), one unknown path
    assert client.get("/v1/search", params={"q": "saw", "k": "0"}, headers=search).status_code == 422
    assert client.get("/v1/search", params={"q": "saw", "pipeline": "bm25"}, headers=search).status_code == 200
    product = client.get("/v1/search", params={"q": "hammer"}, headers=search).json()["results"][0]["id"]
    assert client.get(f"/v1/products/{product}", headers=search).status_code == 200
    assert client.get("/no/such/path").status_code == 404
    events = {"events": [{"user_id": "u1", "item_id": product, "type": "click", "timestamp": time.time() - 5}]}
    assert client.post("/v1/events", json=events, headers={"X-API-Key": keys["events"]}).status_code == 200

    found = samples(client.get("/metrics").text)
    count = "shoprec_http_request_duration_seconds_count"
    assert value(found, count, route="/v1/search", method="GET", status="2xx") == 5
    assert value(found, count, route="/v1/search", method="GET", status="4xx") == 1
    assert value(found, count, route="/v1/products/{product_id}", method="GET", status="2xx") == 1
    assert value(found, count, route="unmatched", method="GET", status="4xx") == 1
    assert value(found, count, route="/v1/events", method="POST", status="2xx") == 1
    bucket = "shoprec_http_request_duration_seconds_bucket"
    assert value(found, bucket, route="/v1/search", method="GET", status="2xx", le="+Inf") == 5
    assert value(found, "shoprec_search_level_served_total", level="full") == 4
    assert value(found, "shoprec_search_level_served_total", level="bm25") == 1
    # three computed searches: stages from the search's own timings, in seconds
    assert value(found, "shoprec_search_stage_duration_seconds_count", stage="total") == 3
    assert value(found, "shoprec_search_stage_duration_seconds_count", stage="rank") >= 2
    assert value(found, "shoprec_search_answered_total", path="fast_path") == 5
    assert value(found, "shoprec_search_answered_total", path="route") == 1
    # a miss before admission is looked up again once admitted (another request may have filled it)
    assert value(found, "shoprec_cache_lookups_total", cache="result", tier="local") == 5 + 3
    assert value(found, "shoprec_cache_hits_total", cache="result", tier="local") == 2
    assert value(found, "shoprec_model_ready") == 1
    assert value(found, "shoprec_model_loads_total") == 1
    assert value(found, "shoprec_degradation_level", level="full") == 1
    assert value(found, "shoprec_events_accepted_total") == 1
    assert value(found, "shoprec_events_applied_total") == 1
    assert value(found, "shoprec_event_apply_lag_seconds_bucket", le="1.0") == 0
    assert value(found, "shoprec_event_apply_lag_seconds_bucket", le="15.0") == 1
    assert value(found, "shoprec_refusals_total", reason="queue_full") == 0
    assert any(name == "process_resident_memory_bytes" for name, _ in found)
    assert any(name == "shoprec_model_info" and value == 1 for (name, _), value in found.items())


def test_refusals_by_reason(
    tmp_path: Path, keys: dict[str, str], services: tuple[SearchService, RecommendService | None]
) -> None:
    app = _app(tmp_path, services, anonymous_read=True, rate_limit_anonymous_per_s=0.001, rate_limit_anonymous_burst=1)
    with TestClient(app, client=LOOPBACK) as client:
        codes = [client.get("/v1/search", params={"q": "drill"}).status_code for _ in range(3)]
        assert codes == [200, 429, 429]
        gate = app.state.overload.gate
        gate.slots.running = gate.slots.max_in_flight  # saturated, and max_queued=0: the next is shed
        gate.slots.max_queued = 0
        r = client.get("/v1/search", params={"q": "hammer"}, headers={"X-API-Key": keys["search"]})
        assert r.status_code == 503 and r.json()["error"] == "overloaded"
        found = samples(client.get("/metrics").text)
    assert value(found, "shoprec_refusals_total", reason="rate_limit") == 2
    assert value(found, "shoprec_refusals_total", reason="queue_full") == 1
    assert (
        value(found, "shoprec_http_request_duration_seconds_count", route="/v1/search", method="GET", status="5xx") == 1
    )


def test_metrics_off_means_no_endpoint_and_no_prometheus_client(tmp_path: Path) -> None:
    code = f"""
import sys
from pathlib import Path
from shoprec.http.app import create_app
from shoprec.settings import Settings
app = create_app(Settings.load(environ={{}}, data_dir=Path({str(tmp_path)!r}), metrics=False))
assert not any(getattr(r, "path", "") == "/metrics" for r in app.router.routes)
print("prometheus_client" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
