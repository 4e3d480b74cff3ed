"""shoprec as a Ray Serve application: the same FastAPI app (:func:`shoprec.http.app.create_app`,
its routes, auth, limits and answers) in every replica, behind Ray's HTTP proxy.

This is the one module that imports ray (an import-linter contract says so); nothing on the
serving path imports it unless ``shoprec serve --ray`` asks for it.

- A replica (:class:`ShoprecReplica`) builds the app from the settings it is given, then
  loads and warms its version *in its constructor*, verified as ``shoprec serve`` verifies
  it (signature, checksums; the registry's current version when ``registry`` is set): Ray
  routes nothing to a replica before its constructor returns, and a replica that cannot
  load a version fails to start (Ray retries it). ``check_health`` keeps failing while no
  version is loaded.
- Rolling model updates: each replica follows the registry's ``CURRENT`` pointer (every
  ``registry_poll_s``) and swaps the new version in beside the old one, as ``shoprec
  serve`` does; in-flight requests finish on the version they started on, and every answer
  names its ``model_version``. A replica that cannot load the new version keeps serving the
  old one and reports the refusal (log, audit, ``shoprec_model_refused_total``).
- Shared state: with ``redis_url`` the result and embedding caches, the rate limits and
  (``events_backend=redis``) the near-line event state live in Redis, so no request needs
  to come back to the same replica.
- :class:`Scale`: a fixed number of replicas or autoscaling on ongoing requests, and
  ``max_replicas_per_node`` to spread replicas over nodes.

:func:`build` is the application builder ``deploy/ray/serve.yaml`` names (``serve deploy``);
:func:`serve_until_stopped` is ``shoprec serve --ray``.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import ray
from ray import serve
from ray.serve.request_router import (
    FIFOMixin,
    PendingRequest,
    ReplicaID,
    RequestRouter,
    RunningReplica,
)

from shoprec.errors import ConfigError, NotReadyError
from shoprec.http.app import create_app
from shoprec.http.logs import configure_logging
from shoprec.http.middleware import ResponseHeader
from shoprec.settings import ENV_PREFIX, Settings

log = logging.getLogger(__name__)

APP_NAME = "shoprec"
DEPLOYMENT_NAME = "shoprec"
# names the replica that produced an answer (Ray's replica id), so that an operator behind the
# proxy, or a test, can tell the replicas' answers apart
REPLICA_HEADER = "X-Shoprec-Replica"


@dataclass(frozen=True)
class Scale:
    """How many replicas, and where. ``autoscale`` (min, max) wins over ``replicas``."""

    replicas: int = 1
    autoscale: tuple[int, int] | None = None
    # Ray scales up when replicas average more ongoing requests than this
    target_ongoing_requests: float = 8.0
    # how long the wish for more (fewer) replicas must last before Ray acts on it (Ray's defaults)
    upscale_delay_s: float = 30.0
    downscale_delay_s: float = 600.0
    # requests one replica takes at once; more wait in the proxy (queue length routing)
    max_ongoing_requests: int = 64
    max_replicas_per_node: int | None = None
    replica_cpus: float = 1.0
    health_check_period_s: float = 2.0
    # "pow2": Ray's default (the shorter queue of two random replicas); "latency":
    # LatencyAwareRouter (the shorter expected wait of two: recent latency x queue)
    router: Literal["pow2", "latency"] = "pow2"

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ConfigError(f"replicas must be >= 1, got {self.replicas}")
        if self.autoscale is not None and not 0 <= self.autoscale[0] <= self.autoscale[1] >= 1:
            raise ConfigError(f"autoscale needs 0 <= MIN <= MAX and MAX >= 1, got {self.autoscale}")
        if self.max_replicas_per_node is not None and self.max_replicas_per_node < 1:
            raise ConfigError(f"max_replicas_per_node must be >= 1, got {self.max_replicas_per_node}")
        if self.router not in ("pow2", "latency"):
            raise ConfigError(f'router is "pow2" or "latency", got {self.router!r}')
        if self.replica_cpus < 0 or self.target_ongoing_requests <= 0 or self.max_ongoing_requests < 1:
            raise ConfigError(
                "replica_cpus >= 0, target_ongoing_requests > 0 and max_ongoing_requests >= 1 are required"
            )
        if self.upscale_delay_s < 0 or self.downscale_delay_s < 0:
            raise ConfigError("upscale_delay_s and downscale_delay_s must be >= 0")

    @property
    def initial_replicas(self) -> int:
        return self.autoscale[0] if self.autoscale is not None else self.replicas

    def deployment_options(self) -> dict[str, Any]:
        """The options of :class:`ShoprecReplica`'s deployment."""
        options: dict[str, Any] = {
            "name": DEPLOYMENT_NAME,
            "max_ongoing_requests": self.max_ongoing_requests,
            "health_check_period_s": self.health_check_period_s,
            "ray_actor_options": {"num_cpus": self.replica_cpus},
        }
        if self.autoscale is not None:
            low, high = self.autoscale
            options["autoscaling_config"] = {
                "min_replicas": low,
                "initial_replicas": max(low, 1),
                "max_replicas": high,
                "target_ongoing_requests": self.target_ongoing_requests,
                "upscale_delay_s": self.upscale_delay_s,
                "downscale_delay_s": self.downscale_delay_s,
            }
        else:
            options["num_replicas"] = self.replicas
        if self.max_replicas_per_node is not None:
            options["max_replicas_per_node"] = self.max_replicas_per_node
        if self.router == "latency":
            options["request_router_config"] = {"request_router_class": LatencyAwareRouter}
        return options


def parse_autoscale(text: str) -> tuple[int, int]:
    """``"MIN:MAX"`` → ``(MIN, MAX)``; ConfigError saying why otherwise."""
    low, sep, high = text.partition(":")
    try:
        if not sep:
            raise ValueError
        bounds = int(low), int(high)
    except ValueError:
        raise ConfigError(f"--autoscale takes MIN:MAX (two whole numbers), got {text!r}") from None
    Scale(autoscale=bounds)  # checks them
    return bounds


def settings_environ(environ: Mapping[str, str] | None = None, **overrides: Any) -> dict[str, str]:
    """The ``SHOPREC_*`` variables a replica builds its settings from: those of ``environ``
    (default: this process's), then ``overrides`` (None: left alone), checked here so that a
    bad value fails before any replica starts."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if k.startswith(ENV_PREFIX)}
    for name, value in overrides.items():
        if value is not None:
            env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    Settings.load(environ=env)
    return env


class LatencyAwareRouter(FIFOMixin, RequestRouter):
    """Power of two choices on expected wait instead of queue length: of two random replicas,
    prefer the one whose recent latency (an exponentially weighted mean of the requests this
    router sent it, timed from routing to completion) times (its queue length + 1) is lower.
    A replica with no measurement yet counts as fast, so every replica gets tried. Runs in
    each proxy (and handle); measured against Ray's default in ``bench/scale.py``."""

    def initialize_state(self, alpha: float = 0.2, clock: Any = time.monotonic, **_: Any) -> None:
        self._alpha = alpha
        self._clock = clock
        self._latency_s: dict[ReplicaID, float] = {}
        self._started: dict[str, tuple[ReplicaID, float]] = {}

    def _expected_wait(self, replica: RunningReplica) -> float:
        queue = self._replica_queue_len_cache.get(replica.replica_id) or 0
        return self._latency_s.get(replica.replica_id, 0.0) * (queue + 1)

    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None
    ) -> list[list[RunningReplica]]:
        if not candidate_replicas:
            return []
        pair = random.sample(candidate_replicas, min(2, len(candidate_replicas)))
        pair.sort(key=self._expected_wait)
        return [[r] for r in pair]  # ranked: the other one only if the first refuses

    def on_request_routed(self, pending_request: PendingRequest, replica_id: ReplicaID, result: Any) -> None:
        self._started[pending_request.metadata.internal_request_id] = (replica_id, self._clock())

    def on_request_completed(self, replica_id: ReplicaID, internal_request_id: str) -> None:
        started = self._started.pop(internal_request_id, None)
        if started is None:
            return
        took = self._clock() - started[1]
        old = self._latency_s.get(replica_id)
        self._latency_s[replica_id] = took if old is None else old + self._alpha * (took - old)

    def on_replica_actor_died(self, replica_id: ReplicaID) -> None:
        super().on_replica_actor_died(replica_id)
        self._latency_s.pop(replica_id, None)


@serve.ingress()  # the app comes from __serve_build_asgi_app__, in the replica
class ShoprecReplica:
    """One replica: the app, with its version loaded, verified and warmed before it is ready."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        # the replica's settings: its own environment's SHOPREC_* variables, then the driver's
        settings = Settings.load(environ={**os.environ, **environ})
        configure_logging(settings.log_level, settings.log_format)
        sys.setswitchinterval(settings.gil_switch_interval_ms / 1000.0)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.shoprec_app = create_app(settings)
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        # outermost: every answer names the replica that produced it
        self.shoprec_app.add_middleware(ResponseHeader, name=REPLICA_HEADER, value=self.replica_id)
        self.runtime = self.shoprec_app.state.services.runtime
        # Load (registry's current version, else the configured artifacts) and warm up now:
        # Ray sends a replica nothing before its constructor returns.
        self.runtime.load_at_start()
        if self.runtime.current is None:
            raise NotReadyError(f"this replica could not load a version: {self.runtime.load_error}")
        version = self.runtime.current.version
        log.info("replica %s (pid %d) ready with version %s", self.replica_id, os.getpid(), version)

    def __serve_build_asgi_app__(self) -> Any:
        return self.shoprec_app

    def check_health(self) -> None:
        """Ray's health check: unhealthy while no version is loaded."""
        if self.runtime.current is None:
            raise NotReadyError(f"no version loaded: {self.runtime.load_error}")


def application(environ: Mapping[str, str], scale: Scale) -> Any:
    """The bound Ray Serve application: ``scale``'s replicas of the app over ``environ``'s settings."""
    deployment = serve.deployment(**scale.deployment_options())(ShoprecReplica)
    environ = dict(environ)
    if scale.replica_cpus >= 1:  # the model's thread pools sized to what Ray reserves, not to the whole node
        environ.setdefault(f"{ENV_PREFIX}THREADS", str(int(scale.replica_cpus)))
    return deployment.bind(environ)


def build(args: Mapping[str, Any]) -> Any:
    """The application builder of ``deploy/ray/serve.yaml`` (``serve deploy``). ``args``:
    ``settings`` (shoprec settings by name, e.g. ``registry``, ``redis_url``; the rest comes
    from the replicas' ``SHOPREC_*`` environment), ``replicas`` or ``autoscale`` ("MIN:MAX"),
    ``max_replicas_per_node``, ``replica_cpus``, ``target_ongoing_requests``, ``max_ongoing_requests``,
    ``upscale_delay_s``, ``downscale_delay_s``, ``router`` ("pow2" or "latency")."""
    known = {"settings", "replicas", "autoscale", "max_replicas_per_node", "replica_cpus"}
    known |= {"target_ongoing_requests", "max_ongoing_requests", "router", "upscale_delay_s", "downscale_delay_s"}
    unknown = set(args) - known
    if unknown:
        raise ConfigError(f"unknown shoprec application args: {sorted(unknown)} (known: {sorted(known)})")
    scale_args: dict[str, Any] = {k: args[k] for k in known - {"settings", "autoscale"} if k in args}
    if "autoscale" in args:
        scale_args["autoscale"] = parse_autoscale(str(args["autoscale"]))
    settings = dict(args.get("settings") or {})
    return application(settings_environ({}, **settings), Scale(**scale_args))


def serve_until_stopped(
    settings: Settings,
    environ: Mapping[str, str],
    scale: Scale,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    temp_dir: str | None = None,
) -> None:
    """``shoprec serve --ray``: start Ray (or join the cluster at ``address``), deploy the
    application behind Ray's proxy on the settings' host and port, return when every replica
    is ready (loaded and warmed) and print so, then serve until SIGTERM or SIGINT, and shut
    Serve (and a Ray started here) down."""
    http: dict[str, Any] = {"host": settings.host, "port": settings.port}
    if settings.ssl_certfile is not None:
        http |= {"ssl_certfile": str(settings.ssl_certfile), "ssl_keyfile": str(settings.ssl_keyfile)}
    started_here = address is None
    ray.init(
        address=address,
        num_cpus=(num_cpus or max(os.cpu_count() or 1, int(scale.initial_replicas * scale.replica_cpus + 0.999)))
        if started_here
        else None,
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=settings.log_level == "debug",
        _temp_dir=temp_dir,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options=http)
        serve.run(application(environ, scale), name=APP_NAME, route_prefix="/")
        scheme = "https" if settings.ssl_certfile else "http"
        print(
            f"Ray Serve ready on {scheme}://{settings.host}:{settings.port} "
            f"({replica_count()} replica(s) of {settings.registry or settings.artifacts})",
            file=sys.stderr,
            flush=True,
        )
        stop.wait()
    finally:
        if started_here:
            serve.shutdown()  # type: ignore[no-untyped-call]
        else:
            serve.delete(APP_NAME)
        ray.shutdown()


def replica_count(state: str = "RUNNING") -> int:
    """How many replicas of the application are in ``state`` now (this driver's Ray)."""
    app = serve.status().applications.get(APP_NAME)
    if app is None or DEPLOYMENT_NAME not in app.deployments:
        return 0
    states = app.deployments[DEPLOYMENT_NAME].replica_states
    return sum(n for s, n in states.items() if str(getattr(s, "value", s)) == state)
