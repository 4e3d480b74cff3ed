"""The shared token bucket against a real redis-server on a free loopback port."""

from __future__ import annotations

import threading
from typing import Any

from shoprec.adapters.redis import RedisStore
from shoprec.core.tokenbucket import Limit
from shoprec.serving.ratelimit import KEY_PREFIX, LocalRateLimiter, SharedRateLimiter

# A rate so slow that nothing refills during a test: exactly ``burst`` requests may pass.
SLOW = Limit(rate_per_s=0.001, burst=50.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_replicas_share_one_bucket(redis_server: Any) -> None:
    a = SharedRateLimiter(RedisStore(redis_server.url))
    b = SharedRateLimiter(RedisStore(redis_server.url))
    limit = Limit(rate_per_s=0.001, burst=3.0)
    results = [lim.check("client:1.2.3.4", limit).allowed for lim in (a, b, a, b, a)]
    assert results == [True, True, True, False, False]
    refused = b.check("client:1.2.3.4", limit)
    assert not refused.allowed and 900 < refused.retry_after_s <= 1000
    assert a.check("client:other", limit).allowed
    assert not a.degraded and not b.degraded


def test_concurrent_clients_never_exceed_the_bucket(redis_server: Any) -> None:
    allowed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def client() -> None:
        limiter = SharedRateLimiter(RedisStore(redis_server.url, socket_timeout_s=5.0))
        start.wait()
        mine = sum(limiter.check("key:shared", SLOW).allowed for _ in range(25))
        assert not limiter.degraded
        with lock:
            allowed.append(mine)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(allowed) == 8
    assert sum(allowed) == 50  # 200 attempts, one bucket of 50, no refill to speak of


def test_redis_restart_falls_back_to_local_buckets_then_reconnects(redis_server: Any) -> None:
    clock = FakeClock()
    store = RedisStore(redis_server.url, clock=clock, backoff_initial_s=1.0, backoff_max_s=1.0)
    limiter = SharedRateLimiter(store, fallback=LocalRateLimiter(clock=clock))
    limit = Limit(rate_per_s=0.001, burst=2.0)
    assert limiter.check("key:k", limit).allowed
    redis_server.stop()
    # Redis is gone: answers still come (from the local bucket, which starts full), no exception
    assert [limiter.check("key:k", limit).allowed for _ in range(3)] == [True, True, False]
    assert limiter.degraded
    redis_server.start()
    clock.now += 1.0  # past the adapter's backoff: the next call goes to Redis again
    assert limiter.check("key:k", limit).allowed  # the restarted Redis has an empty (full) bucket
    assert not limiter.degraded
    assert limiter.check("key:k", limit).allowed
    assert not limiter.check("key:k", limit).allowed
    assert store.call(lambda r: r.exists(KEY_PREFIX + "key:k")) == 1  # the script was loaded again and ran
