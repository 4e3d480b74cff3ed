"""The Redis adapter and the shared cache tier against a real redis-server on a free port."""

import numpy as np
import pytest

from shoprec.adapters.redis import RedisStore
from shoprec.errors import SharedStateError
from shoprec.serving.cache import CachedResult, ResultKey, SearchCache
from shoprec.types import Hit


class FakeClock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def result(*pids: str) -> CachedResult:
    return CachedResult(tuple(Hit(p, 1.0) for p in pids), "full", "learned", False)


def rkey(query: str) -> ResultKey:
    return ResultKey.of(query, None, segment="anonymous", k=10, pipeline="full", model_version="v1")


def pump_until(cache: SearchCache, want: int, tries: int = 50) -> int:
    handled = 0
    for _ in range(tries):
        handled += cache.pump(0.1)
        if handled >= want:
            break
    return handled


def test_keys_scripts_and_pubsub_work(redis_server) -> None:  # type: ignore[no-untyped-def]
    store = RedisStore(redis_server.url)
    store.set("k", b"v", ttl_s=30)
    assert store.get("k") == b"v" and store.get("missing") is None
    store.register_script("add", "return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert store.run_script("add", ["n"], [5]) == 5 and store.run_script("add", ["n"], [2]) == 7
    with pytest.raises(SharedStateError):
        store.run_script("unknown")
    sub = store.subscribe("ch")
    assert sub.poll(0.0) == []
    store.publish("ch", b"hello")
    got: list[bytes] = []
    for _ in range(50):
        got += sub.poll(0.1)
        if got:
            break
    assert got == [b"hello"]
    store.close()


def test_the_store_backs_off_while_redis_is_down_and_reconnects_after(redis_server) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    store = RedisStore(redis_server.url, clock=clock, backoff_initial_s=1.0, backoff_max_s=4.0)
    store.register_script("add", "return redis.call('INCRBY', KEYS[1], ARGV[1])")
    store.set("k", b"v", ttl_s=30)
    redis_server.stop()
    with pytest.raises(SharedStateError):
        store.get("k")
    assert store.available is False
    redis_server.start()
    with pytest.raises(SharedStateError, match="unavailable"):  # still backing off: no network call
        store.get("k")
    clock.now += 1.0
    assert store.available is True
    assert store.get("k") is None  # a fresh server: empty, but reachable again
    assert store.run_script("add", ["n"], [3]) == 3  # the script is reloaded into the new server
    store.close()


def test_two_replicas_share_results_and_embeddings_through_redis(redis_server) -> None:  # type: ignore[no-untyped-def]
    a = SearchCache(shared=RedisStore(redis_server.url))
    b = SearchCache(shared=RedisStore(redis_server.url))
    a.put_result(rkey("drill"), result("p1", "p2"))
    a.put_embedding("drill", "v1", np.array([0.5, 0.25], dtype=np.float32))
    assert b.get_result(rkey("drill")) == result("p1", "p2")
    vec = b.get_embedding("Drill", "v1")
    assert vec is not None and vec.tolist() == [0.5, 0.25]
    assert b.get_embedding("drill", "v2") is None


def test_an_invalidation_reaches_the_other_replica_and_its_catalog(redis_server) -> None:  # type: ignore[no-untyped-def]
    a = SearchCache(shared=RedisStore(redis_server.url))
    b = SearchCache(shared=RedisStore(redis_server.url))
    updates: list[dict[str, object]] = []
    b.on_catalog_update(updates.append)
    b.pump(0.0)  # b subscribes
    a.put_result(rkey("drill"), result("p1", "p2"))
    a.put_result(rkey("saw"), result("p3"))
    assert b.get_result(rkey("drill")) is not None  # now held locally by b as well
    a.invalidate_products(["p2"], update={"id": "p2", "price": 9.5})
    assert pump_until(b, 1) == 1
    assert updates == [{"id": "p2", "price": 9.5}]
    assert b.get_result(rkey("drill")) is None  # gone locally and in Redis
    assert a.get_result(rkey("drill")) is None
    assert b.get_result(rkey("saw")) == result("p3")
    assert a.pump(0.0) == 0  # a ignores its own message


def test_the_cache_keeps_serving_locally_while_redis_is_away(redis_server) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    store = RedisStore(redis_server.url, clock=clock, backoff_initial_s=1.0)
    cache = SearchCache(shared=store)
    cache.pump(0.0)
    cache.put_result(rkey("drill"), result("p1"))
    redis_server.stop()
    assert cache.get_result(rkey("drill")) == result("p1")  # local hit, Redis never asked
    cache.put_result(rkey("saw"), result("p3"))  # written locally; the Redis write fails soft
    assert cache.get_result(rkey("saw")) == result("p3")
    assert cache.get_result(rkey("hammer")) is None  # a miss stays a miss, no error
    assert cache.invalidate_products(["p1"]) == 1
    cache.pump(0.0)  # the subscription notices Redis is gone
    redis_server.start()
    clock.now += 1.0
    cache.pump(0.0)  # resubscribes, and drops local results that may have missed invalidations
    assert cache.get_result(rkey("saw")) is None
    cache.put_result(rkey("saw"), result("p3"))
    other = SearchCache(shared=RedisStore(redis_server.url))
    assert other.get_result(rkey("saw")) == result("p3")  # shared again after the reconnect
