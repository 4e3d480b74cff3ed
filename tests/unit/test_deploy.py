"""What ``deploy/`` holds is checked against the service: the alert rules pass ``promtool
check`` and their own ``promtool test rules`` cases (each alert fires in one case and stays
silent in another), and every metric a rule or a dashboard panel names is one that a real
app's ``/metrics`` exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from shoprec.http.app import create_app
from shoprec.models.bundle import load_bundle
from shoprec.security.apikeys import KeyStore
from shoprec.serving.recommend import RecommendService
from shoprec.serving.search import SearchService
from shoprec.settings import Settings
from support.live import FULL_QUALITY

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "shoprec-rules.yml"
RULE_TESTS = sorted((DEPLOY / "prometheus").glob("*.test.yml"))
DASHBOARD = DEPLOY / "grafana" / "shoprec-dashboard.json"
# the names a query may use that the service does not export: Prometheus's own
PROMETHEUS_OWN = {"up"}
METRIC = re.compile(r"\b(?:shoprec|process)_[a-z0-9_]+")

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (scripts/test.sh installs the Debian package prometheus)")
    return found


def _names(exposition: str) -> set[str]:
    """Every sample name an exposition's families can have, whether or not a sample is there yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(s.name for s in family.samples)
    return names


_MULTIPROCESS = """
import sys
from pathlib import Path
from shoprec.adapters.prometheus import PrometheusMetrics
from shoprec.types import MetricsSnapshot, ModelCounts
m = PrometheusMetrics(multiprocess_dir=Path(sys.argv[1]))
m.sync(MetricsSnapshot({}, 0, 0, "full", ("full",), {}, ModelCounts(None, None, 0, 0, {}, {}), 0.0, 0.0, {}))
sys.stdout.write(m.render()[0].decode())
"""


@pytest.fixture(scope="module")
def exported(tiny_static_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The metric names of a real app's /metrics after a search, plus what workers add with
    ``--workers N`` (rendered by the same adapter in multiprocess mode, in a process of its own)."""
    root = tmp_path_factory.mktemp("exported")
    _, key = KeyStore(root / "keys.json", time.time, iterations=1).create("t", ["search"])
    settings = Settings.load(
        environ={}, data_dir=root, keys_file=root / "keys.json", require_signature=False, **FULL_QUALITY
    )
    bundle = load_bundle(tiny_static_artifacts)
    app = create_app(
        settings, search=SearchService(bundle), recommend=RecommendService.load(bundle.folder, bundle.catalog)
    )
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        assert client.get("/v1/search", params={"q": "drill"}, headers={"X-API-Key": key}).status_code == 200
        names = _names(client.get("/metrics").text)
    directory = root / "multiprocess"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    out = subprocess.run(
        [sys.executable, "-c", _MULTIPROCESS, str(directory)], env=env, check=True, capture_output=True, text=True
    )
    return names | _names(out.stdout)


def _rule_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text())
    return [(rule.get("alert") or rule["record"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def _panel_targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_rules_pass_promtool_check_and_their_own_tests() -> None:
    promtool = _promtool()
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    config = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")], capture_output=True, text=True
    )
    assert config.returncode == 0, config.stdout + config.stderr
    run = subprocess.run(
        [promtool, "test", "rules", *(p.name for p in RULE_TESTS)],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    alerts = {name for name, _ in _rule_exprs() if not name.startswith("shoprec:")}
    fires: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                (fires if check["exp_alerts"] else silent).add(check["alertname"])
    assert len(alerts) >= 13
    assert alerts <= fires, f"never seen firing: {alerts - fires}"
    assert alerts <= silent, f"never seen silent: {alerts - silent}"


def test_every_metric_the_rules_name_is_exported(exported: set[str]) -> None:
    for name, expr in _rule_exprs():
        named = set(METRIC.findall(expr))
        assert named <= exported, f"{name} names {named - exported}, which /metrics does not export"


def test_the_dashboard_is_valid_and_every_query_names_exported_metrics(exported: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "shoprec-overview"  # stable: links and provisioning refer to it
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    targets = _panel_targets(dashboard)
    assert len(targets) >= 30
    for title, expr in targets:
        named = set(METRIC.findall(expr)) - PROMETHEUS_OWN
        assert named, f"panel {title!r} names no metric: {expr}"
        assert named <= exported, f"panel {title!r} names {named - exported}, which /metrics does not export"
    titles = " ".join(title for title, _ in targets).lower()
    for topic in ("p50", "p95", "p99", "stage", "level", "refusal", "cache", "batch", "model version", "error"):
        assert topic in titles, topic
    provider = yaml.safe_load((DEPLOY / "grafana" / "shoprec-dashboards.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
