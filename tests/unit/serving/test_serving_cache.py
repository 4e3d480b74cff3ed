import asyncio
from typing import Any

import numpy as np
import pytest

from shoprec.errors import ConfigError
from shoprec.serving.cache import CachedResult, ResultKey, SearchCache, SingleFlight, TTLCache
from shoprec.types import Filters, Hit


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def result(*pids: str) -> CachedResult:
    return CachedResult(tuple(Hit(p, 1.0 / (i + 1)) for i, p in enumerate(pids)), "full", "learned", False)


def rkey(query: str = "cordless drill", version: str = "v1", **kw: object) -> ResultKey:
    args: dict[str, Any] = {"segment": "anonymous", "k": 10, "pipeline": "full", "model_version": version}
    args.update(kw)
    return ResultKey.of(query, args.pop("filters", None), **args)


def test_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    c: TTLCache[str, int] = TTLCache(10, ttl_s=5.0, clock=clock)
    c.put("a", 1)
    clock.now += 4.999
    assert c.get("a") == 1
    clock.now += 0.001
    assert c.get("a") is None and "a" not in c and len(c) == 0


def test_the_least_recently_used_entry_goes_first_when_full() -> None:
    c: TTLCache[str, int] = TTLCache(2, ttl_s=60.0, clock=FakeClock())
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # a is now the most recently used
    c.put("c", 3)
    assert len(c) == 2 and c.get("b") is None and c.get("a") == 1 and c.get("c") == 3


def test_a_zero_sized_cache_stores_nothing_and_bad_sizes_are_refused() -> None:
    c: TTLCache[str, int] = TTLCache(0, ttl_s=1.0)
    c.put("a", 1)
    assert c.get("a") is None
    with pytest.raises(ConfigError):
        TTLCache(-1, ttl_s=1.0)
    with pytest.raises(ConfigError):
        TTLCache(1, ttl_s=0.0)


def test_embedding_keys_are_the_normalized_query_plus_the_model_version() -> None:
    cache = SearchCache(clock=FakeClock())
    vec = np.arange(4, dtype=np.float32)
    cache.put_embedding("  Cordless DRILL ", "v1", vec)
    got = cache.get_embedding("cordless drill", "v1")
    assert got is not None and np.array_equal(got, vec)
    assert cache.get_embedding("cordless drill", "v2") is None
    assert cache.get_embedding("cordless drills", "v1") is None


def test_result_keys_cover_query_filters_segment_k_pipeline_and_model_version() -> None:
    base = rkey()
    assert rkey(" CORDLESS  drill").digest() == base.digest()
    variants = [
        rkey(version="v2"),
        rkey(filters=Filters(in_stock=True)),
        rkey(filters=Filters(max_price=10.0)),
        rkey(segment="user:u1"),
        rkey(k=5),
        rkey(pipeline="bm25"),
        rkey("hammer"),
    ]
    assert len({v.digest() for v in variants} | {base.digest()}) == len(variants) + 1
    cache = SearchCache(clock=FakeClock())
    cache.put_result(base, result("p1"))
    assert cache.get_result(base) == result("p1")
    assert all(cache.get_result(v) is None for v in variants)


def test_results_expire_after_their_ttl() -> None:
    clock = FakeClock()
    cache = SearchCache(result_ttl_s=10.0, clock=clock)
    cache.put_result(rkey(), result("p1"))
    clock.now += 10.0
    assert cache.get_result(rkey()) is None


def test_a_catalog_change_drops_exactly_the_results_that_list_the_product() -> None:
    cache = SearchCache(clock=FakeClock())
    cache.put_result(rkey("drill"), result("p1", "p2"))
    cache.put_result(rkey("saw"), result("p3"))
    cache.put_result(rkey("drill bits"), result("p2", "p4"))
    assert cache.invalidate_products(["p2"]) == 2
    assert cache.get_result(rkey("drill")) is None and cache.get_result(rkey("drill bits")) is None
    assert cache.get_result(rkey("saw")) == result("p3")
    assert cache.invalidate_products(["p2"]) == 0  # nothing left that shows p2


def test_a_result_computed_across_an_invalidation_is_not_stored() -> None:
    cache = SearchCache(clock=FakeClock())
    generation = cache.generation
    cache.invalidate_products(["p1"])  # price changed while the search ran
    assert cache.put_result(rkey(), result("p1"), generation=generation) is False
    assert cache.get_result(rkey()) is None


def test_evicted_entries_leave_the_product_index() -> None:
    cache = SearchCache(result_entries=1, clock=FakeClock())
    cache.put_result(rkey("a"), result("p1"))
    cache.put_result(rkey("b"), result("p2"))  # evicts a
    assert cache.invalidate_products(["p1"]) == 0
    assert cache.invalidate_products(["p2"]) == 1


def test_cached_results_round_trip_through_json() -> None:
    value = CachedResult((Hit("p1", 0.5, {"bm25": 1.0}), Hit("p2", 0.25)), "hybrid", "fusion", True)
    assert CachedResult.from_json(value.to_json()) == value


def test_concurrent_identical_misses_are_computed_once() -> None:
    async def main() -> None:
        cache = SearchCache(clock=FakeClock())
        calls: list[str] = []
        gate = asyncio.Event()

        async def compute() -> CachedResult:
            calls.append("x")
            await gate.wait()
            return result("p1")

        tasks = [asyncio.ensure_future(cache.result(rkey(), compute)) for _ in range(5)]
        for _ in range(5):
            await asyncio.sleep(0)
        gate.set()
        outcomes = await asyncio.gather(*tasks)
        assert calls == ["x"]
        assert [v for v, _ in outcomes] == [result("p1")] * 5
        assert all(hit is False for _, hit in outcomes)
        again, hit = await cache.result(rkey(), compute)
        assert hit is True and again == result("p1") and calls == ["x"]

        vecs: list[int] = []

        async def encode() -> np.ndarray:
            vecs.append(1)
            await asyncio.sleep(0)
            return np.ones(3, dtype=np.float32)

        got = await asyncio.gather(*(cache.embedding("drill", "v1", encode) for _ in range(4)))
        assert vecs == [1] and all(np.array_equal(v, np.ones(3)) for v, _ in got)

    asyncio.run(main())


def test_a_failed_computation_reaches_every_waiter_and_is_not_cached() -> None:
    async def main() -> None:
        flight: SingleFlight[str, int] = SingleFlight()
        gate = asyncio.Event()

        async def boom() -> int:
            await gate.wait()
            raise ValueError("no")

        tasks = [asyncio.ensure_future(flight.do("k", boom)) for _ in range(3)]
        await asyncio.sleep(0)
        gate.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(o, ValueError) for o in outcomes) and flight.computed == 1

        async def ok() -> int:
            return 7

        assert await flight.do("k", ok) == (7, False)

    asyncio.run(main())


@pytest.mark.parametrize(
    "bad",
    [
        {"batch_max_size": 0},
        {"batch_wait_s": -0.001},
        {"batch_wait_s": 5.0},
        {"batch_target_s": 0.0},
        {"embedding_cache_entries": -1},
        {"result_cache_ttl_s": 0.0},
        {"embedding_cache_ttl_s": float("inf")},
    ],
)
def test_batching_and_cache_settings_are_validated(bad: dict[str, Any]) -> None:
    from shoprec.settings import Settings

    with pytest.raises(ConfigError):
        Settings.load(environ={}, **bad)


def test_caches_can_be_switched_off_from_the_environment() -> None:
    from shoprec.settings import Settings

    s = Settings.load(environ={"SHOPREC_RESULT_CACHE_ENTRIES": "0", "SHOPREC_BATCH_WAIT_S": "0.005"})
    assert s.result_cache_entries == 0 and s.batch_wait_s == 0.005


def test_when_the_computing_caller_is_cancelled_a_waiter_computes_instead() -> None:
    async def main() -> None:
        flight: SingleFlight[str, int] = SingleFlight()
        gate = asyncio.Event()
        calls: list[int] = []

        async def slow() -> int:
            calls.append(1)
            await gate.wait()
            return 5

        first = asyncio.ensure_future(flight.do("k", slow))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(flight.do("k", slow))
        await asyncio.sleep(0)
        first.cancel()
        for _ in range(3):
            await asyncio.sleep(0)
        gate.set()
        assert await second == (5, False) and len(calls) == 2
        assert first.cancelled()

    asyncio.run(main())
