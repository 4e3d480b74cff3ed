"""The Ray Serve scenarios, run as one process tree inside a network namespace with only
loopback up (``tests/integration/test_ray_serve.py`` starts this script under ``unshare -rn``
and reads the JSON object it prints as its last stdout line).

Inside, it starts a redis-server, a registry holding versions v1, v2 and a broken v3, plain
``shoprec serve`` and ``shoprec serve --ray --replicas 2`` over the same settings, then:

- ``answers``: the same requests to both (search, similar, recommend, a bad request, a
  missing key), status and body;
- ``rate_limit``: one API key's requests spread over both replicas share one bucket;
- ``catalog_update``: with both replicas' caches holding a result, change a listed product's
  price and then take it off sale through the proxy: how long until every replica's answers
  show it (each answer names its replica in ``X-Shoprec-Replica``);
- ``rolling``: promote v2, then v3 (a file missing: refused), then roll back twice (to v1),
  under steady load: every answer's status and version, and how long the replicas took to agree;
- ``replica_kill``: SIGKILL one replica under steady load: failed requests, and when Ray
  had a replacement running;
- ``redis_kill``: stop Redis under load, start it again: answers meanwhile, and Redis used again;
- ``confinement``: the namespace's interfaces and listeners, with everything running;
- ``autoscale``: a second ``shoprec serve --ray --autoscale 1:2`` (short delays): heavy load
  until Ray runs a second replica, then light load until it is back to one.

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
from shoprec.cluster.ray_serve import REPLICA_HEADER
from shoprec.registry.store import Registry
from shoprec.security.apikeys import KeyStore
from support.live import FULL_QUALITY, ServerProcess, settings_env
from support.redisserver import RedisServer, free_port

QUERIES = ["drill", "cordless drill", "garden hose", "paint", "lamp", "xyzzy nothing"]
KEY_RATE_PER_S = 0.01  # with burst_factor 500: a bucket of 5 that refills one token per 100 s
BURST_FACTOR = 500
POLL_S = 0.3
# scale on ongoing requests between 1 and 2 replicas, acting on a wish after 1 s (up) or 5 s (down)
AUTOSCALE = ["--autoscale", "1:2", "--target-ongoing-requests", "1"]
AUTOSCALE += ["--upscale-delay-s", "1", "--downscale-delay-s", "5"]
CONVERGED_RUN = 30  # consecutive answers that must all show a change
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
    served_by: dict[str, int] = field(default_factory=dict)  # answers per replica (its header)
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
                    replica = r.headers.get(REPLICA_HEADER, "")
                    self.served_by[replica] = self.served_by.get(replica, 0) + 1
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
def ray_server(env: dict[str, str], port: int, log: Path, scale: list[str]) -> Iterator[str]:
    cmd = [sys.executable, "-m", "shoprec.cli", "serve", "--ray", *scale, "--port", str(port)]
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
        import ray

        from shoprec.cluster import ray_serve

        with ray_server(env, free_port(), work / "ray-serve.log", ["--replicas", "2"]) as url:
            ray.init(address="auto", log_to_driver=False, configure_logging=False)
            results["replicas_at_start"] = ray_serve.replica_count()
            results["confinement"] = loopback.check().describe()
            with httpx.Client(base_url=plain_server.url, timeout=30) as a, httpx.Client(base_url=url, timeout=30) as b:
                scenario(results, "answers", lambda: same_answers(a, b, admin))
                scenario(results, "rate_limit", lambda: rate_limit(b, plain))
                scenario(results, "catalog_update", lambda: catalog_update(b, admin))
            scenario(results, "rolling", lambda: rolling(url, registry))
            scenario(results, "replica_kill", lambda: replica_kill(url, ray_serve.replica_count))
            scenario(results, "redis_kill", lambda: redis_kill(url, redis))
            ray.shutdown()
        plain_server.stop()  # the cores to the autoscaling cluster
        with ray_server(env, free_port(), work / "ray-autoscale.log", AUTOSCALE) as url:
            scenario(results, "autoscale", lambda: autoscale(url))
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


def catalog_update(client: httpx.Client, admin_key: str) -> dict[str, Any]:
    """Fill both replicas' result caches with one query, then change the price of a product it
    lists, then take that product off sale, each through the proxy (so one replica takes the
    change and the other hears of it through Redis): per change, how many answers and seconds
    until the last ``CONVERGED_RUN`` answers all show it, from which replicas, and how many
    showed the old state meanwhile."""
    params = {"q": "drill", "k": 10}

    def ask() -> tuple[str, dict[str, Any]]:
        r = client.get("/v1/search", params=params)
        r.raise_for_status()
        return r.headers.get(REPLICA_HEADER, ""), r.json()

    warm = [ask() for _ in range(30)]
    cached_on = sorted({replica for replica, body in warm if body.get("cached")})
    target = warm[0][1]["results"][0]
    pid, old_price = str(target["id"]), target.get("price")
    new_price = round((old_price or 10.0) + 1.25, 2)

    def converge(shows: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        t0 = time.monotonic()
        answers: list[tuple[str, bool]] = []
        while time.monotonic() < t0 + 60:
            replica, body = ask()
            answers.append((replica, shows(body)))
            if len(answers) >= CONVERGED_RUN and all(ok for _, ok in answers[-CONVERGED_RUN:]):
                break
        run = answers[-CONVERGED_RUN:]
        return {
            "converged": len(run) == CONVERGED_RUN and all(ok for _, ok in run),
            "seconds": round(time.monotonic() - t0, 3),
            "answers": len(answers),
            "stale": sum(1 for _, ok in answers if not ok),
            "replicas_in_last_run": sorted({replica for replica, _ in run}),
        }

    def price_of(body: dict[str, Any]) -> Any:
        return next((h.get("price") for h in body["results"] if str(h["id"]) == pid), "absent")

    headers = {"X-API-Key": admin_key}
    patched = client.patch(f"/v1/products/{pid}", json={"price": new_price}, headers=headers)
    price = converge(lambda body: price_of(body) == new_price)
    removed = client.delete(f"/v1/products/{pid}", headers=headers)
    removal = converge(lambda body: price_of(body) == "absent")
    return {
        "warm_replicas": sorted({replica for replica, _ in warm}),
        "cached_on": cached_on,
        "product": pid,
        "old_price": old_price,
        "new_price": new_price,
        "patch_status": patched.status_code,
        "patch_replica": patched.headers.get(REPLICA_HEADER),
        "price": price,
        "delete_status": removed.status_code,
        "removal": removal,
    }


def autoscale(url: str) -> dict[str, Any]:
    """Heavy load (6 clients, each query new) until a second replica answers; then one client
    until Ray has stopped a replica's process. Every answer is counted. (Seen from outside, as
    an operator sees it: the answers' replica header and the replica processes; this driver's
    Ray client still belongs to the first cluster.)"""
    started = replica_pids()
    t0 = time.monotonic()
    with Load(url, clients=6, distinct=True) as heavy:
        up_s = None
        while time.monotonic() < t0 + 180:
            if len(heavy.served_by) >= 2:
                up_s = time.monotonic() - t0
                break
            time.sleep(0.2)  # polling the answers' replicas, with a deadline
        t_up = time.monotonic()
        heavy.wait_for(lambda s: len(s) >= 60, t_up, 60)  # the new replica takes its share
        at_peak = replica_pids()
    with Load(url, clients=1) as light:
        t1 = time.monotonic()
        down_s = None
        while time.monotonic() < t1 + 240:
            if len(replica_pids()) == 1:
                down_s = time.monotonic() - t1
                break
            time.sleep(0.2)  # polling the replica processes, with a deadline
        light.wait_for(lambda s: len(s) >= 20, time.monotonic(), 60)  # and it answers after
    return {
        "replicas_at_start": len(started),
        "replicas_at_peak": len(at_peak),
        "up_s": None if up_s is None else round(up_s, 2),
        "down_s": None if down_s is None else round(down_s, 2),
        "heavy": summary(heavy.samples) | {"served_by": len(heavy.served_by)},
        "heavy_after_up": summary(heavy.since(t_up)),
        "light": summary(light.samples) | {"served_by": len(light.served_by)},
        "replicas_at_end": len(replica_pids()),
    }


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
