"""The Prometheus adapter alone: what each call leaves in the exposition, bounded labels, the
sync of plain counters, and multiprocess mode across real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shoprec.adapters.prometheus import MAX_STAGES, REQUEST_BUCKETS_S, PrometheusMetrics, prepare_multiprocess_dir
from shoprec.errors import ConfigError
from shoprec.types import CacheCounts, MetricsSnapshot, ModelCounts

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def exposition(metrics: PrometheusMetrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def snapshot(**changes: object) -> MetricsSnapshot:
    base: dict[str, object] = {
        "refusals": {"rate_limit": 0, "queue_full": 0, "deadline": 0, "front_door": 0},
        "in_flight": 0,
        "queued": 0,
        "level": "full",
        "levels": ("full", "hybrid", "bm25"),
        "caches": {("result", "local"): CacheCounts(0, 0)},
        "model": ModelCounts("v1", "minilm", 1, 0, {}, {}),
        "loop_lag_s": 0.0,
        "shed_probability": 0.0,
        "fast_path": {"fast_path": 0, "route": 0},
    }
    return MetricsSnapshot(**{**base, **changes})  # type: ignore[arg-type]


def test_request_durations_land_in_the_buckets_by_route_method_and_status_class() -> None:
    m = PrometheusMetrics()
    m.request("/v1/search", "GET", 200, 0.004)
    m.request("/v1/search", "GET", 200, 0.060)
    m.request("/v1/search", "GET", 503, 0.0003)
    m.request("/v1/search", "GET", 204, 0.001)
    found = exposition(m)
    bucket = "shoprec_http_request_duration_seconds_bucket"
    ok = {"route": "/v1/search", "method": "GET", "status": "2xx"}
    assert value(found, bucket, **ok, le="0.003") == 1  # the 1 ms one
    assert value(found, bucket, **ok, le="0.005") == 2
    assert value(found, bucket, **ok, le="0.05") == 2  # the latency SLO's bound is a bucket bound
    assert value(found, bucket, **ok, le="0.075") == 3
    assert value(found, "shoprec_http_request_duration_seconds_count", **{**ok, "status": "5xx"}) == 1
    assert value(found, "shoprec_http_request_duration_seconds_sum", **ok) == pytest.approx(0.065)
    # buckets resolve 1-100 ms: at least eight bounds in that range
    assert sum(0.001 <= b <= 0.1 for b in REQUEST_BUCKETS_S) >= 8


def test_stage_timings_in_seconds_with_a_bounded_set_of_stages() -> None:
    m = PrometheusMetrics()
    m.search("full", {"encode_ms": 2.0, "rank_ms": 0.5, "total_ms": 3.0, "not_a_stage": 1.0}, cached=False)
    m.search("full", {"total_ms": 0.01}, cached=True)  # a cached answer: a level, no stages
    m.search("bm25", {f"s{i}_ms": 1.0 for i in range(40)}, cached=False)
    found = exposition(m)
    stage = "shoprec_search_stage_duration_seconds"
    assert value(found, f"{stage}_sum", stage="encode") == pytest.approx(0.002)
    assert value(found, f"{stage}_count", stage="total") == 1
    assert value(found, f"{stage}_count", stage="not_a_stage") == 0
    stages = {dict(labels)["stage"] for name, labels in found if name == f"{stage}_count"}
    assert len(stages) == MAX_STAGES
    assert value(found, "shoprec_search_level_served_total", level="full") == 2
    assert value(found, "shoprec_search_level_served_total", level="bm25") == 1


def test_levels_beyond_the_bound_are_counted_as_other() -> None:
    m = PrometheusMetrics()
    for i in range(40):
        m.search(f"level{i}", {}, cached=True)
    found = exposition(m)
    levels = {dict(labels)["level"] for name, labels in found if name == "shoprec_search_level_served_total"}
    assert len(levels) == 17 and "other" in levels
    assert value(found, "shoprec_search_level_served_total", level="other") == 40 - 16


def test_sync_adds_what_each_counter_grew_by_and_sets_the_gauges() -> None:
    m = PrometheusMetrics()
    m.sync(snapshot(refusals={"queue_full": 3, "rate_limit": 1}, in_flight=4, queued=2, level="hybrid"))
    m.sync(snapshot(refusals={"queue_full": 5, "rate_limit": 1}, in_flight=1, queued=0, level="hybrid"))
    m.sync(
        snapshot(
            refusals={"queue_full": 5, "rate_limit": 1},
            caches={("result", "local"): CacheCounts(10, 4), ("result", "redis"): CacheCounts(6, 1)},
            model=ModelCounts("v2", "minilm", 2, 1, {"bad_signature": 1, "Not A Code!": 2}, {"verified": 2}),
            level="bm25",
        )
    )
    found = exposition(m)
    assert value(found, "shoprec_refusals_total", reason="queue_full") == 5
    assert value(found, "shoprec_refusals_total", reason="rate_limit") == 1
    assert value(found, "shoprec_admission_in_flight") == 0
    assert value(found, "shoprec_degradation_level", level="bm25") == 1
    assert value(found, "shoprec_degradation_level", level="hybrid") == 0
    assert value(found, "shoprec_degradation_level_index") == 2
    assert value(found, "shoprec_cache_lookups_total", cache="result", tier="redis") == 6
    assert value(found, "shoprec_cache_hits_total", cache="result", tier="local") == 4
    assert value(found, "shoprec_model_info", version="v2", model_id="minilm") == 1
    assert value(found, "shoprec_model_info", version="v1", model_id="minilm") == 0  # swapped out
    assert value(found, "shoprec_model_loads_total") == 2 and value(found, "shoprec_model_swaps_total") == 1
    assert value(found, "shoprec_model_refused_total", reason="bad_signature") == 1
    assert value(found, "shoprec_model_refused_total", reason="other") == 2  # never an unbounded label
    assert value(found, "shoprec_model_signature_checks_total", result="verified") == 2


def test_a_counter_whose_owner_started_over_keeps_growing() -> None:
    m = PrometheusMetrics()
    m.sync(snapshot(refusals={"deadline": 7}))
    m.sync(snapshot(refusals={"deadline": 2}))  # a new owner counting from 0
    assert value(exposition(m), "shoprec_refusals_total", reason="deadline") == 9


def test_events_and_batches() -> None:
    m = PrometheusMetrics()
    m.events(3, 2, [0.5, 120.0])
    m.batch(8, 0.0015)
    found = exposition(m)
    assert value(found, "shoprec_events_accepted_total") == 3 and value(found, "shoprec_events_applied_total") == 2
    assert value(found, "shoprec_event_apply_lag_seconds_bucket", le="1.0") == 1
    assert value(found, "shoprec_event_apply_lag_seconds_bucket", le="300.0") == 2
    assert value(found, "shoprec_encoder_batch_size_bucket", le="8.0") == 1
    assert value(found, "shoprec_encoder_batch_wait_seconds_bucket", le="0.002") == 1


def test_multiprocess_mode_needs_the_directory_named_before_import(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR"):
        PrometheusMetrics(multiprocess_dir=tmp_path)


_WORKER = """
import sys
from pathlib import Path
from shoprec.adapters.prometheus import PrometheusMetrics
from shoprec.types import CacheCounts, MetricsSnapshot, ModelCounts
m = PrometheusMetrics(multiprocess_dir=Path(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    m.request("/v1/search", "GET", 200, 0.002)
model = ModelCounts("v1", "x", 1, 0, {}, {})
m.sync(MetricsSnapshot({"queue_full": int(sys.argv[2])}, 1, 0, "full", ("full",), {}, model, 0.0, 0.0, {}))
if len(sys.argv) > 3:
    sys.stdout.write(m.render()[0].decode())
"""


def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left over from an earlier run")
    env = {**os.environ}
    prepare_multiprocess_dir(directory)  # wipes the directory, names it in the environment
    env["PROMETHEUS_MULTIPROC_DIR"] = os.environ.pop("PROMETHEUS_MULTIPROC_DIR")
    assert not (directory / "counter_999999.db").exists()

    def worker(n: int, *render: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", _WORKER, str(directory), str(n), *render],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    worker(3)
    worker(4)
    text = worker(5, "render")
    found = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ok = {"route": "/v1/search", "method": "GET", "status": "2xx"}
    assert value(found, "shoprec_http_request_duration_seconds_count", **ok) == 3 + 4 + 5
    assert value(found, "shoprec_refusals_total", reason="queue_full") == 3 + 4 + 5
    # live gauges of processes that are gone are not added in; the rendering one's is
    assert value(found, "shoprec_admission_in_flight") == 1
    assert any(name == "shoprec_worker_resident_memory_bytes" for name, _ in found)
