"""The Ray Serve application's configuration, without starting Ray: the replica options a
scale asks for, the ``--autoscale`` and CLI refusals, ``deploy/ray/serve.yaml`` against the
application builder it names, and the serving path staying free of ray unless asked."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shoprec.cli import main
from shoprec.errors import ConfigError

ray_serve = pytest.importorskip("shoprec.cluster.ray_serve", reason="ray (the bench extra) is not installed")
SERVE_YAML = Path(__file__).resolve().parents[3] / "deploy" / "ray" / "serve.yaml"


def test_fixed_replicas_and_spread() -> None:
    options = ray_serve.Scale(replicas=3, max_replicas_per_node=1, replica_cpus=0.5).deployment_options()
    assert options["num_replicas"] == 3 and "autoscaling_config" not in options
    assert options["max_replicas_per_node"] == 1
    assert options["ray_actor_options"] == {"num_cpus": 0.5}
    assert options["name"] == ray_serve.DEPLOYMENT_NAME


def test_autoscale_on_ongoing_requests() -> None:
    scale = ray_serve.Scale(
        autoscale=ray_serve.parse_autoscale("2:8"), target_ongoing_requests=4, upscale_delay_s=5, downscale_delay_s=60
    )
    options = scale.deployment_options()
    assert "num_replicas" not in options
    assert options["autoscaling_config"] == {
        "min_replicas": 2,
        "initial_replicas": 2,
        "max_replicas": 8,
        "target_ongoing_requests": 4,
        "upscale_delay_s": 5,
        "downscale_delay_s": 60,
    }
    assert scale.initial_replicas == 2


@pytest.mark.parametrize("text", ["8", "8:2", "a:b", "-1:3", "0:0", ""])
def test_bad_autoscale_is_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        ray_serve.parse_autoscale(text)


@pytest.mark.parametrize(
    "argv, why",
    [
        (["--replicas", "2"], "need --ray"),
        (["--autoscale", "1:4"], "need --ray"),
        (["--ray", "--workers", "2"], "--workers"),
        (["--ray", "--replicas", "2", "--autoscale", "1:4"], "not both"),
        (["--ray", "--autoscale", "4"], "MIN:MAX"),
        (["--ray", "--replicas", "0"], "replicas must be >= 1"),
        (["--router", "latency"], "need --ray"),
        (["--downscale-delay-s", "5"], "need --ray"),
        (["--ray", "--replicas", "2", "--target-ongoing-requests", "2"], "need --autoscale"),
        (["--ray", "--autoscale", "1:2", "--upscale-delay-s", "-1"], "must be >= 0"),
    ],
)
def test_serve_refuses_inconsistent_ray_options(
    argv: list[str], why: str, tiny_static_artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--artifacts", str(tiny_static_artifacts), *argv]) == 2
    assert why in capsys.readouterr().err


def test_serve_yaml_names_the_application_builder() -> None:
    config: dict[str, Any] = yaml.safe_load(SERVE_YAML.read_text())
    (app,) = config["applications"]
    module, _, name = app["import_path"].partition(":")
    assert getattr(importlib.import_module(module), name) is ray_serve.build
    assert app["route_prefix"] == "/"
    args = app["args"]
    assert set(args) <= {
        "settings",
        "replicas",
        "autoscale",
        "max_replicas_per_node",
        "replica_cpus",
        "target_ongoing_requests",
        "max_ongoing_requests",
        "upscale_delay_s",
        "downscale_delay_s",
        "router",
    }
    # the builder accepts the file's args (its settings are names of real settings)
    application = ray_serve.build(
        {**args, "settings": {k: v for k, v in args["settings"].items() if k != "trusted_keys"}}
    )
    assert type(application).__name__ == "Application"


def test_latency_router_is_an_option() -> None:
    options = ray_serve.Scale(replicas=2, router="latency").deployment_options()
    assert options["request_router_config"] == {"request_router_class": ray_serve.LatencyAwareRouter}
    assert "request_router_config" not in ray_serve.Scale(replicas=2).deployment_options()
    with pytest.raises(ConfigError):
        ray_serve.Scale(router="fastest")  # type: ignore[arg-type]


def test_builder_refuses_unknown_args_and_settings() -> None:
    with pytest.raises(ConfigError, match="unknown shoprec application args"):
        ray_serve.build({"replica": 2})
    with pytest.raises(ConfigError):
        ray_serve.build({"settings": {"port": "not a port"}})


def test_the_serving_path_does_not_import_ray() -> None:
    code = "import sys, shoprec.cli, shoprec.http.app; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


class _Replica:
    def __init__(self, name: str) -> None:
        self.replica_id = name


class _QueueLengths:
    def __init__(self, lengths: dict[str, int]) -> None:
        self.lengths = lengths

    def get(self, replica_id: str) -> int | None:
        return self.lengths.get(replica_id)


class _Request:
    def __init__(self, request_id: str) -> None:
        self.metadata = type("Metadata", (), {"internal_request_id": request_id})()


def test_latency_aware_router_prefers_the_shorter_expected_wait() -> None:
    import asyncio

    clock = iter([0.0, 0.4, 1.0, 1.01])
    router = ray_serve.LatencyAwareRouter.__new__(ray_serve.LatencyAwareRouter)  # no Ray framework around it
    router.initialize_state(alpha=0.5, clock=lambda: next(clock))
    router._replica_queue_len_cache = _QueueLengths({"slow": 0, "fast": 0})
    for replica, request in (("slow", "r1"), ("fast", "r2")):
        router.on_request_routed(_Request(request), replica, None)  # type: ignore[arg-type]
        router.on_request_completed(replica, request)  # type: ignore[arg-type]
    assert router._latency_s == {"slow": pytest.approx(0.4), "fast": pytest.approx(0.01)}
    slow, fast = _Replica("slow"), _Replica("fast")
    ranked = asyncio.run(router.choose_replicas([slow, fast]))  # type: ignore[list-item]
    assert [r[0].replica_id for r in ranked] == ["fast", "slow"]
    # a long enough queue on the fast one makes the slow one the better bet
    router._replica_queue_len_cache = _QueueLengths({"slow": 0, "fast": 60})
    ranked = asyncio.run(router.choose_replicas([slow, fast]))  # type: ignore[list-item]
    assert [r[0].replica_id for r in ranked] == ["slow", "fast"]
    assert asyncio.run(router.choose_replicas([])) == []
