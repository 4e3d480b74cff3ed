"""The whole public API fuzzed from its own OpenAPI spec (schemathesis): no input, however
malformed, gets a 5xx. Runs in-process against the ASGI app over real artifacts (the tiny
encoder's), with an admin key so every route is reached past authentication, and with
time-based shedding and the ladder off: this test is about inputs, not load, and a 503 here
is a failure like any other 5xx."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from shoprec.http.app import create_app
from shoprec.models.bundle import load_bundle
from shoprec.security.apikeys import KeyStore
from shoprec.serving.recommend import RecommendService
from shoprec.serving.search import SearchService
from shoprec.settings import Settings
from support.live import FULL_QUALITY

ADMIN_KEY: dict[str, str] = {}
MIN_REQUESTS = 1000
EXAMPLES_PER_OPERATION = 120  # x 9 operations with inputs = 1,080 (the probes, without, get one each)


@pytest.fixture(scope="module")
def api_schema(tiny_static_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("fuzz")
    _, ADMIN_KEY["X-API-Key"] = KeyStore(root / "keys.json", time.time, iterations=1).create("fuzzer", ["admin"])
    cfg = Settings.load(
        environ={},
        artifacts=tiny_static_artifacts,
        data_dir=root,
        keys_file=root / "keys.json",
        audit_log=root / "audit.jsonl",
        require_signature=False,
        **FULL_QUALITY,
    )
    bundle = load_bundle(tiny_static_artifacts)
    recommend = RecommendService.load(bundle.folder, bundle.catalog)
    app = create_app(cfg, search=SearchService(bundle), recommend=recommend)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_input_gets_a_server_error(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 7
    failures: list[tuple[str, str, int, str]] = []
    answered: set[str] = set()  # operations that got at least one 2xx: the key let the fuzzer in
    sent = 0

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: Any) -> None:
            nonlocal sent
            response = case.call(headers=ADMIN_KEY)
            sent += 1
            if response.status_code < 300:
                answered.add(f"{case.method} {case.path}")
            if response.status_code >= 500:
                failures.append((case.method, case.formatted_path, response.status_code, response.text[:300]))
            elif response.status_code >= 400:
                assert set(response.json()) >= {"error", "detail"}, response.text

        fuzz()
    assert not failures, failures[:5]
    assert sent >= MIN_REQUESTS, f"only {sent} requests were sent"
    assert {"GET /v1/search", "POST /v1/events", "GET /v1/admin/model"} <= answered, answered
