"""The Ray Serve scenarios, run as one process tree inside a network namespace with only
loopback up (``tests/integration/test_ray_serve.py`` starts this script under ``unshare -rn``
and reads the JSON object it prints as its last stdout line).

Inside, it starts a redis-server, a registry holding versions v1, v2 and a broken v3, plain
``shoprec serve`` and ``shoprec serve --ray --replicas 2`` over the same settings, then:

- ``answers``: the same requests to both (search, similar, recommend, a bad request, a
  missing key), status and body;
- ``rate_limit``: one API key's requests spread over both replicas share one bucket;
- ``rolling``: promote v2, then v3 (a file missing: refused), then roll back twice (to v1),
  under steady load: every answer's status and version, and how long the replicas took to agree;
- ``replica_kill``: SIGKILL one replica under steady load: failed requests, and when Ray
  had a replacement running;
- ``redis_kill``: stop Redis under load, start it again: answers meanwhile, and Redis used again;
- ``confinement``: the namespace's interfaces and listeners, with everything running.

The test asserts on the result; this script only records (a scenario that raises is
recorded as its error, so the others still report).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shoprec.cluster import loopback
from shoprec.registry.store import Registry
from shoprec.security.apikeys import KeyStore
from support.live import FULL_QUALITY, ServerProcess, settings_env
from support.redisserver import RedisServer, free_port

QUERIES = ["drill", "cordless drill", "garden hose", "paint", "lamp", "xyzzy nothing"]
KEY_RATE_PER_S = 0.01  # with burst_factor 500: a bucket of 5 that refills one token per 100 s
BURST_FACTOR = 500
POLL_S = 0.3
READY = re.compile(r"Ray Serve ready on http://127\.0\.0\.1:(\d+)")


def versioned(source: Path, out: Path, tag: str) -> Path:
    shutil.copytree(source, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["version"] = tag
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return out


def make_registry(artifacts: Path, work: Path) -> Registry:
    registry = Registry(work / "registry")
    for tag in ("v1", "v2", "v3"):
        registry.push(versioned(artifacts, work / "src" / tag, tag), version_id=tag)
    # v3 loses a file after it was pushed: every replica must refuse it and keep serving
    (registry.artifacts_path("v3") / "catalog.jsonl").unlink()
    registry.set_current("v1", action="promote")
    return registry


@dataclass
class Load:
    """Closed-loop clients sending searches until stopped: each answer's time, status, version."""

    url: str
    clients: int = 3
    headers: dict[str, str] = field(default_factory=dict)
    distinct: bool = False  # a new query each time (cache misses: each one is written to the shared tier)
    samples: list[tuple[float, int, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self, n: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30, headers=self.headers) as client:
            i = n
            while not self._stop.is_set():
                q = QUERIES[i % len(QUERIES)] + (f" {n} {i}" if self.distinct else "")
                i += 1
                try:
                    r = client.get("/v1/search", params={"q": q, "k": 5})
                    version = r.json().get("model_version") if r.status_code == 200 else None
                    self.samples.append((time.monotonic(), r.status_code, version))
                except httpx.HTTPError:
                    self.samples.append((time.monotonic(), 0, None))

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def since(self, t0: float) -> list[tuple[float, int, str | None]]:
        return [s for s in list(self.samples) if s[0] >= t0]

    def wait_for(
        self, done: Callable[[list[tuple[float, int, str | None]]], bool], t0: float, timeout_s: float
    ) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if done(self.since(t0)):
                return True
            time.sleep(0.05)  # polling the recorded answers, with a deadline
        return False


def last_all(version: str, n: int) -> Callable[[list[tuple[float, int, str | None]]], bool]:
    """The last ``n`` answers (at least) all named ``version``."""
    return lambda s: len(s) >= n and all(v == version for _, _, v in s[-n:])


def summary(samples: list[tuple[float, int, str | None]]) -> dict[str, Any]:
    versions: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for _, status, version in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if version is not None:
            versions[version] = versions.get(version, 0) + 1
    return {"requests": len(samples), "statuses": statuses, "versions": versions}


def comparable(r: httpx.Response) -> Any:
    try:
        body = r.json()
    except ValueError:
        return r.text
    if isinstance(body, dict):
        body.pop("timings_ms", None)
        body.pop("request_id", None)
        # both servers share one Redis: whichever asks second finds the other's cached result
        body.pop("cached", None)
    return body


def replica_pids() -> list[int]:
    """The Ray Serve replica processes of the shoprec deployment (this PID namespace's /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "ServeReplica:shoprec:shoprec" in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


@contextmanager
def ray_server(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    cmd = [sys.executable, "-m", "shoprec.cli", "serve", "--ray", "--replicas", "2", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not READY.search(log.read_text(errors="replace")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"shoprec serve --ray did not get ready:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)  # waiting for the server's own "ready" line, with a deadline
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scenario(results: dict[str, Any], name: str, run: Callable[[], dict[str, Any]]) -> None:
    t0 = time.monotonic()
    try:
        results[name] = run()
    except Exception:
        results[name] = {"error": traceback.format_exc()}
    results[name]["seconds"] = round(time.monotonic() - t0, 1)
    print(f"[rayscenario] {name}: {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)


def main() -> int:
    artifacts, work = Path(sys.argv[1]), Path(sys.argv[2])
    results: dict[str, Any] = {"confinement_before": loopback.check().describe()}
    redis = RedisServer(work).start()
    registry = make_registry(artifacts, work)
    keys = work / "keys.json"
    _, plain = KeyStore(keys, time.time, iterations=1).create("limited", ("search",), rate_limit_per_s=KEY_RATE_PER_S)
    _, admin = KeyStore(keys, time.time, iterations=1).create("ops", ("search", "admin"))
    settings = {
        **FULL_QUALITY,
        "registry": registry.root,
        "registry_poll_s": POLL_S,
        "redis_url": redis.url,
        "keys_file": keys,
        "anonymous_read": True,
        "require_signature": False,
        "data_dir": work / "data",
        "rate_limit_burst_factor": BURST_FACTOR,
        "log_level": "info",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPREC_")}
    env |= settings_env(**settings) | {"RAY_USAGE_STATS_ENABLED": "0", "OMP_WAIT_POLICY": "PASSIVE"}
    # Ray's session folder: short, whatever the test's tmp path (a socket path has at most 107 bytes)
    ray_tmp = Path(tempfile.mkdtemp(prefix="shoprec-ray-"))
    env["RAY_TMPDIR"] = str(ray_tmp)
    plain_server = ServerProcess(settings).start()
    try:
        with ray_server(env, free_port(), work / "ray-serve.log") as url:
            import ray

            from shoprec.cluster import ray_serve

            ray.init(address="auto", log_to_driver=False, configure_logging=False)
            results["replicas_at_start"] = ray_serve.replica_count()
            results["confinement"] = loopback.check().describe()
            with httpx.Client(base_url=plain_server.url, timeout=30) as a, httpx.Client(base_url=url, timeout=30) as b:
                scenario(results, "answers", lambda: same_answers(a, b, admin))
                scenario(results, "rate_limit", lambda: rate_limit(b, plain))
            scenario(results, "rolling", lambda: rolling(url, registry))
            scenario(results, "replica_kill", lambda: replica_kill(url, ray_serve.replica_count))
            scenario(results, "redis_kill", lambda: redis_kill(url, redis))
            ray.shutdown()
    finally:
        plain_server.stop()
        redis.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    print(json.dumps(results))
    return 0


def same_answers(a: httpx.Client, b: httpx.Client, admin_key: str) -> dict[str, Any]:
    requests: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        *(("/v1/search", {"q": q, "k": 5}, {}) for q in QUERIES),
        ("/v1/search", {"q": "drill", "k": 3, "pipeline": "bm25"}, {}),
        ("/v1/search", {"q": "", "k": 5}, {}),  # a 4xx saying why
        ("/v1/search", {"q": "drill", "k": 100000}, {}),
        ("/readyz", {}, {}),
        ("/healthz", {}, {}),
        ("/v1/admin/model", {}, {}),  # no key: refused
        ("/v1/admin/model", {}, {"X-API-Key": "wrong"}),
    ]
    first = a.get("/v1/search", params={"q": "drill", "k": 1}).json()["results"][0]["id"]
    requests += [("/v1/similar", {"product_id": first, "k": 5}, {}), ("/v1/recommend", {"user_id": "nobody"}, {})]
    rows = []
    for path, params, headers in requests:
        ra, rb = a.get(path, params=params, headers=headers), b.get(path, params=params, headers=headers)
        rows.append(
            {
                "request": f"{path} {params} {sorted(headers)}",
                "status": [ra.status_code, rb.status_code],
                "same": ra.status_code == rb.status_code and comparable(ra) == comparable(rb),
                "plain": comparable(ra),
                "ray": comparable(rb),
            }
        )
    model = b.get("/v1/admin/model", headers={"X-API-Key": admin_key})
    return {"rows": rows, "admin_model_status": model.status_code, "admin_model": comparable(model)}


def rate_limit(client: httpx.Client, key: str) -> dict[str, Any]:
    """12 requests of one key through the proxy (routed over both replicas): the shared bucket
    of 5 lets exactly 5 through; per-replica buckets would let up to 10."""
    statuses = [
        client.get("/v1/search", params={"q": "drill"}, headers={"X-API-Key": key}).status_code for _ in range(12)
    ]
    return {"statuses": statuses, "burst": KEY_RATE_PER_S * BURST_FACTOR}


def rolling(url: str, registry: Registry) -> dict[str, Any]:
    steps = []
    with Load(url) as load:
        load.wait_for(last_all("v1", 20), time.monotonic(), 60)
        for action, target in (("promote", "v2"), ("promote_broken", "v3"), ("rollback", "v2"), ("rollback", "v1")):
            t0 = time.monotonic()
            if action == "rollback":
                registry.rollback()
            else:
                registry.set_current(target, action="promote")
            expect = "v2" if target == "v3" else target
            if target == "v3":  # refused everywhere: v2 keeps answering through several polls
                time.sleep(POLL_S * 10)  # an observation window for a version that must NOT arrive
                load.wait_for(lambda s: len(s) >= 30, t0, 60)  # and at least 30 answers in it
                converged = all(v == "v2" for _, _, v in load.since(t0))
            else:
                converged = load.wait_for(last_all(expect, 40), t0, 60)
            steps.append(
                {
                    "action": action,
                    "to": target,
                    "serving": expect,
                    "converged": converged,
                    "converge_s": round(time.monotonic() - t0, 2),
                    **summary(load.since(t0)),
                }
            )
        total = summary(load.samples)
    return {"steps": steps, "total": total}


def replica_kill(url: str, running: Callable[[], int]) -> dict[str, Any]:
    before = replica_pids()
    with Load(url, clients=4) as load:
        load.wait_for(lambda s: len(s) >= 50, time.monotonic(), 60)
        t_kill = time.monotonic()
        os.kill(before[0], signal.SIGKILL)
        replaced_s = None
        deadline = t_kill + 240  # a loaded 2-core CI machine loads the replacement slowly
        seen_down = False  # Ray's status may still count the killed replica for a moment
        while time.monotonic() < deadline:
            pids, now_running = replica_pids(), running()
            # Ray knows the replica is gone once its status counts fewer, or once it has started
            # a replacement process (a poll on a busy machine can miss the short dip)
            seen_down = seen_down or now_running < 2 or any(p not in before for p in pids)
            if seen_down and before[0] not in pids and len(pids) == 2 and now_running == 2:
                replaced_s = time.monotonic() - t_kill
                break
            time.sleep(0.1)  # polling Ray's replica states, with a deadline
        t_back = time.monotonic()
        load.wait_for(lambda s: len(s) >= 50, t_back, 60)  # and it keeps answering after
    failed = [s for s in load.samples if s[1] != 200]
    return {
        "pids_before": before,
        "pids_after": replica_pids(),
        "replaced_s": None if replaced_s is None else round(replaced_s, 2),
        "requests": len(load.samples),
        "failed": len(failed),
        "failed_after_replaced": len([s for s in failed if s[0] >= t_back]),
        "clients": load.clients,
        "statuses": summary(load.samples)["statuses"],
    }


def redis_kill(url: str, redis: RedisServer) -> dict[str, Any]:
    from shoprec.adapters.redis import RedisStore

    store = RedisStore(redis.url)
    with Load(url, distinct=True) as load:
        load.wait_for(lambda s: len(s) >= 30, time.monotonic(), 60)
        keys_before = store.call(lambda r: r.dbsize())
        redis.stop()
        t_down = time.monotonic()
        load.wait_for(lambda s: len(s) >= 60, t_down, 60)  # answers with Redis gone
        down = summary(load.since(t_down))
        redis.start()  # empty, on the same port
        t_up = time.monotonic()
        back = False
        deadline = t_up + 60
        while time.monotonic() < deadline:
            try:
                if store.call(lambda r: r.dbsize()) > 0:  # a replica wrote to Redis again
                    back = True
                    break
            except Exception:
                pass
            time.sleep(0.2)  # polling the restarted Redis, with a deadline
        up = summary(load.since(t_up))
    return {
        "keys_before": keys_before,
        "while_down": down,
        "after_restart": up,
        "redis_used_again": back,
        "back_s": round(time.monotonic() - t_up, 2),
    }


if __name__ == "__main__":
    sys.exit(main())
