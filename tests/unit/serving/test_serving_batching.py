import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from shoprec.errors import ConfigError
from shoprec.serving.batching import DynamicBatcher


class FakeClock:
    """Time that moves only when a test says so; ``sleep`` waits for ``advance``."""

    def __init__(self) -> None:
        self.now = 100.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
        due = [(t, f) for t, f in self._sleepers if t <= self.now]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self.now]
        for _, f in due:
            if not f.done():
                f.set_result(None)

    @property
    def sleeping(self) -> int:
        return sum(1 for _, f in self._sleepers if not f.done())


async def settle(predicate: Any = None, rounds: int = 200) -> None:
    """Let the loop (and the worker thread) run until ``predicate()`` holds."""
    for _ in range(rounds):
        if predicate is not None and predicate():
            return
        await asyncio.sleep(0)
        await asyncio.to_thread(lambda: None)
    if predicate is not None:
        assert predicate(), "condition never became true"


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def test_a_batch_closes_as_soon_as_it_is_full() -> None:
    clock = FakeClock()
    calls: list[list[int]] = []

    def double(xs: list[int]) -> list[int]:
        calls.append(list(xs))
        return [2 * x for x in xs]

    async def main() -> None:
        b = DynamicBatcher(double, max_batch_size=3, batch_wait_s=10.0, clock=clock, sleep=clock.sleep)
        results = await asyncio.gather(*(b.submit(x) for x in (1, 2, 3)))  # no time passes at all
        assert results == [2, 4, 6]
        assert calls == [[1, 2, 3]]
        await b.aclose()

    run(main())


def test_a_batch_closes_when_its_oldest_request_has_waited_batch_wait_s() -> None:
    clock = FakeClock()
    calls: list[list[str]] = []

    def upper(xs: list[str]) -> list[str]:
        calls.append(list(xs))
        return [x.upper() for x in xs]

    async def main() -> None:
        b = DynamicBatcher(upper, max_batch_size=8, batch_wait_s=0.01, clock=clock, sleep=clock.sleep)
        first = asyncio.ensure_future(b.submit("a"))
        await settle(lambda: clock.sleeping == 1)
        clock.advance(0.006)
        second = asyncio.ensure_future(b.submit("b"))
        await settle(lambda: clock.sleeping >= 1)
        assert calls == [] and not first.done()
        clock.advance(0.003)  # oldest has waited 9 ms < 10 ms
        await settle(lambda: clock.sleeping >= 1)
        assert calls == []
        clock.advance(0.001)  # 10 ms: the batch closes with both
        assert await first == "A" and await second == "B"
        assert calls == [["a", "b"]]
        await b.aclose()

    run(main())


def test_each_caller_gets_its_own_result_across_batches() -> None:
    clock = FakeClock()

    async def main() -> None:
        b: DynamicBatcher[int, int] = DynamicBatcher(
            lambda xs: [x * x for x in xs], max_batch_size=4, batch_wait_s=0.0, clock=clock
        )
        results = await asyncio.gather(*(b.submit(x) for x in range(10)))
        assert results == [x * x for x in range(10)]
        assert b.stats().items == 10 and b.stats().batches >= 3
        await b.aclose()

    run(main())


def test_a_failing_batch_fails_only_its_own_requests() -> None:
    clock = FakeClock()

    def fragile(xs: list[int]) -> list[int]:
        if -1 in xs:
            raise ValueError("model blew up")
        return [x + 1 for x in xs]

    async def main() -> None:
        b = DynamicBatcher(fragile, max_batch_size=2, batch_wait_s=10.0, clock=clock, sleep=clock.sleep)
        bad = [asyncio.ensure_future(b.submit(x)) for x in (5, -1)]
        good = [asyncio.ensure_future(b.submit(x)) for x in (7, 8)]
        done = await asyncio.gather(*bad, *good, return_exceptions=True)
        assert isinstance(done[0], ValueError) and isinstance(done[1], ValueError)
        assert done[2:] == [8, 9]
        assert b.stats().failed_batches == 1
        assert list(await asyncio.gather(b.submit(1), b.submit(2))) == [2, 3]  # the batcher keeps working
        await b.aclose()

    run(main())


def test_a_wrong_number_of_results_fails_that_batch() -> None:
    async def main() -> None:
        b: DynamicBatcher[int, int] = DynamicBatcher(lambda xs: xs[:1], max_batch_size=2, batch_wait_s=10.0)
        results = await asyncio.gather(b.submit(1), b.submit(2), return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        await b.aclose()

    run(main())


def test_the_batch_size_adapts_to_the_measured_model_cost() -> None:
    clock = FakeClock()
    cost_per_item = {"s": 0.001}

    def model(xs: list[int]) -> list[int]:
        clock.advance(cost_per_item["s"] * len(xs))  # the model "takes" this long
        return xs

    async def main() -> None:
        b = DynamicBatcher(model, max_batch_size=64, batch_wait_s=0.0, target_batch_s=0.008, smoothing=1.0, clock=clock)
        assert b.current_max_batch_size == 64
        await asyncio.gather(*(b.submit(x) for x in range(4)))
        assert b.current_max_batch_size == 8  # 8 ms budget / 1 ms per item
        cost_per_item["s"] = 0.004
        await b.submit(0)
        assert b.current_max_batch_size == 2
        cost_per_item["s"] = 0.1
        await b.submit(0)
        assert b.current_max_batch_size == 1  # never below min_batch_size
        cost_per_item["s"] = 0.00001
        await b.submit(0)
        assert b.current_max_batch_size == 64  # never above max_batch_size
        await b.aclose()

    run(main())


def test_the_model_runs_off_the_event_loop() -> None:
    seen: list[bool] = []

    def model(xs: list[int]) -> list[int]:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return xs

    async def main() -> None:
        b = DynamicBatcher(model, max_batch_size=1)
        assert await b.submit(3) == 3
        await b.aclose()

    run(main())
    assert seen == [False]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_batch_size": 0}, {"batch_wait_s": -1.0}, {"min_batch_size": 5, "max_batch_size": 2}, {"target_batch_s": 0}],
)
def test_bad_arguments_are_refused_when_the_batcher_is_made(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        DynamicBatcher(lambda xs: xs, **kwargs)
