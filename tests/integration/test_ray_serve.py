"""shoprec on Ray Serve (``shoprec serve --ray``), two replicas, against plain ``shoprec serve``.

Everything runs as one process tree in a network namespace of its own with only loopback up
(``unshare -rn``): ``tests/support/rayscenario.py`` starts Redis, a registry, both servers
and the load, runs every scenario once (one Ray cluster for the module) and prints what it
saw; one test asserts every check below on that record (one test, so that one Ray cluster
runs however pytest-xdist spreads the tests). Skipped where Ray, ``unshare -rn`` or
``redis-server`` is unavailable."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shoprec.cluster.loopback import namespace_command

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]
TESTS = Path(__file__).resolve().parent.parent


def _why_not() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "ray is not installed (the bench extra)"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare/ip (util-linux, iproute2) are not installed"
    probe = subprocess.run(namespace_command(["true"]), capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot enter a network namespace with `unshare -rn`: {probe.stderr.strip()}"
    return None


def run_scenarios(tmp_path_factory: pytest.TempPathFactory, tiny_static_artifacts: Path) -> dict[str, Any]:
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("ray")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPREC_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = namespace_command(
        [sys.executable, str(TESTS / "support" / "rayscenario.py"), str(tiny_static_artifacts), str(work)]
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=840)
    (work / "driver.log").write_text(proc.stderr)
    assert proc.returncode == 0, f"the scenario driver failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    (work / "record.json").write_text(json.dumps(result, indent=1))  # the figures, for docs and for a failure
    return result


def _ok(record: dict[str, Any], name: str) -> dict[str, Any]:
    part: dict[str, Any] = record[name]
    assert "error" not in part, part["error"]
    return part


def check_everything_listens_on_loopback_only(record: dict[str, Any]) -> None:
    for when in ("confinement_before", "confinement"):
        c = record[when]
        assert c["only_loopback"], c
        assert c["interfaces"] == ["lo"] and not c["outside_loopback"]
    assert len(record["confinement"]["listeners"]) > 3  # Ray's own ports, the proxy, both servers, Redis
    assert record["replicas_at_start"] == 2


def check_same_answers_as_shoprec_serve(record: dict[str, Any]) -> None:
    answers = _ok(record, "answers")
    different = [row for row in answers["rows"] if not row["same"]]
    assert not different, json.dumps(different, indent=1)[:4000]
    statuses = {row["request"].split()[0]: row["status"][0] for row in answers["rows"]}
    assert statuses["/v1/search"] in (200, 422) and statuses["/v1/admin/model"] == 401
    assert any(row["status"][0] == 422 for row in answers["rows"])  # a bad request answered 4xx the same way
    assert answers["admin_model_status"] == 200 and answers["admin_model"]["registry_version"] == "v1"


def check_rate_limit_is_shared_across_replicas(record: dict[str, Any]) -> None:
    limited = _ok(record, "rate_limit")
    statuses = limited["statuses"]
    # one bucket of 5 in Redis for both replicas: 5 pass, 7 refused (per-replica buckets: up to 10)
    assert statuses.count(200) == int(limited["burst"]) == 5, statuses
    assert statuses.count(429) == 7, statuses


def check_product_update_reaches_every_replicas_cache(record: dict[str, Any]) -> None:
    update = _ok(record, "catalog_update")
    # both replicas answered the query and held it in their caches before the change
    assert len(update["warm_replicas"]) == 2 and len(update["cached_on"]) == 2, update
    assert update["patch_status"] == 200 and update["delete_status"] == 200, update
    for change in ("price", "removal"):
        seen = update[change]
        # the last 30 answers, from both replicas, all show the change: no replica kept a stale result
        assert seen["converged"] and len(seen["replicas_in_last_run"]) == 2, (change, update)


def check_autoscaling_on_ongoing_requests(record: dict[str, Any]) -> None:
    scaled = _ok(record, "autoscale")
    assert scaled["replicas_at_start"] == 1 and scaled["replicas_at_peak"] == 2, scaled
    assert scaled["up_s"] is not None and scaled["heavy"]["served_by"] == 2, scaled  # the new replica answered
    assert scaled["down_s"] is not None and scaled["replicas_at_end"] == 1, scaled
    for load in ("heavy", "light"):  # no request failed while a replica was added or removed
        assert scaled[load]["statuses"] == {"200": scaled[load]["requests"]}, scaled
    assert scaled["heavy_after_up"]["requests"] >= 60 and scaled["light"]["requests"] >= 20, scaled


def check_rolling_promote_and_rollback_fail_no_request(record: dict[str, Any]) -> None:
    rolling = _ok(record, "rolling")
    assert rolling["total"]["statuses"] == {"200": rolling["total"]["requests"]}, rolling["total"]
    steps = {(s["action"], s["to"]): s for s in rolling["steps"]}
    for step in rolling["steps"]:
        assert step["converged"], step
    # while v2 rolled out, answers named v1 or v2 and nothing else; the broken v3 never served
    assert set(steps["promote", "v2"]["versions"]) <= {"v1", "v2"}
    assert set(steps["promote_broken", "v3"]["versions"]) == {"v2"}
    assert set(steps["rollback", "v1"]["versions"]) <= {"v1", "v2"}


def check_replica_killed_under_load_is_replaced(record: dict[str, Any]) -> None:
    kill = _ok(record, "replica_kill")
    assert kill["replaced_s"] is not None, kill
    assert kill["pids_before"][0] not in kill["pids_after"] and len(kill["pids_after"]) == 2
    # at most the requests in flight on the killed replica fail, none once it is replaced
    assert kill["failed"] <= kill["clients"], kill
    assert kill["failed_after_replaced"] == 0, kill


def check_redis_killed_under_load_local_tiers_answer_then_redis_again(record: dict[str, Any]) -> None:
    redis = _ok(record, "redis_kill")
    assert redis["keys_before"] > 0  # the caches were shared through Redis
    assert (
        redis["while_down"]["statuses"] == {"200": redis["while_down"]["requests"]}
        and redis["while_down"]["requests"] >= 60
    )
    assert redis["after_restart"]["statuses"] == {"200": redis["after_restart"]["requests"]}
    assert redis["redis_used_again"], redis


CHECKS = (
    check_everything_listens_on_loopback_only,
    check_same_answers_as_shoprec_serve,
    check_rate_limit_is_shared_across_replicas,
    check_product_update_reaches_every_replicas_cache,
    check_rolling_promote_and_rollback_fail_no_request,
    check_replica_killed_under_load_is_replaced,
    check_redis_killed_under_load_local_tiers_answer_then_redis_again,
    check_autoscaling_on_ongoing_requests,
)


def test_ray_serve_replicas(tmp_path_factory: pytest.TempPathFactory, tiny_static_artifacts: Path) -> None:
    record = run_scenarios(tmp_path_factory, tiny_static_artifacts)
    failed = []
    for check in CHECKS:
        try:
            check(record)
        except AssertionError as exc:
            failed.append(f"{check.__name__}: {exc}")
    assert not failed, "\n\n".join(failed)
