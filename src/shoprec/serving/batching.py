"""Dynamic batching of model calls across concurrent requests.

In the spirit of Ray Serve's ``@serve.batch``: callers ``await batcher.submit(item)``; a
background task collects items into a batch that closes when it is full or when its oldest
item has waited ``batch_wait_s``, runs the model once on the whole batch in a worker thread
(never on the event loop), and resolves each caller's own future with its own result. If
the model call raises, every request of that batch gets the exception and nothing else is
affected. One batch runs at a time; requests arriving meanwhile form the next one.

The batch size adapts to the measured model cost: after each batch the cost per item is
folded into a moving average, and the next batch may hold as many items as fit in
``target_batch_s`` of model time (between ``min_batch_size`` and ``max_batch_size``), so
slow hardware or long inputs give smaller batches and fast ones larger.

Time comes from an injected ``clock`` and waits from an injected ``sleep``, so tests drive
the batcher with a fake clock and never sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shoprec.errors import ConfigError

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(slots=True)
class _Pending(Generic[In, Out]):
    item: In
    enqueued_at: float
    future: asyncio.Future[Out] = field(repr=False)


@dataclass(frozen=True, slots=True)
class BatchStats:
    batches: int
    items: int
    failed_batches: int
    max_batch_size_now: int
    cost_per_item_s: float | None


class DynamicBatcher(Generic[In, Out]):
    """Batches ``submit`` calls into calls of ``fn(items) -> results`` (one result per item, in order)."""

    def __init__(
        self,
        fn: Callable[[list[In]], Sequence[Out]],
        *,
        max_batch_size: int = 32,
        batch_wait_s: float = 0.002,
        min_batch_size: int = 1,
        target_batch_s: float | None = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        executor: Executor | None = None,
        smoothing: float = 0.3,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        """``on_batch(size, wait_s)`` is called as each batch starts: its size, and how long
        its oldest item waited for it to close (the metrics' batch histograms)."""
        if not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be a positive integer, got {max_batch_size!r}")
        if not isinstance(min_batch_size, int) or not 1 <= min_batch_size <= max_batch_size:
            raise ConfigError(f"min_batch_size must be in [1, max_batch_size], got {min_batch_size!r}")
        if not 0 <= batch_wait_s < math.inf:
            raise ConfigError(f"batch_wait_s must be a non-negative number of seconds, got {batch_wait_s!r}")
        if target_batch_s is not None and not 0 < target_batch_s < math.inf:
            raise ConfigError(f"target_batch_s must be positive seconds or None, got {target_batch_s!r}")
        if not 0 < smoothing <= 1:
            raise ConfigError(f"smoothing must be in (0, 1], got {smoothing!r}")
        self._fn = fn
        self.max_batch_size = max_batch_size
        self.min_batch_size = min_batch_size
        self.batch_wait_s = batch_wait_s
        self.target_batch_s = target_batch_s
        self._clock = clock
        self._sleep = sleep
        self._executor = executor
        self._smoothing = smoothing
        self._on_batch = on_batch
        self._queue: list[_Pending[In, Out]] = []
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cost_per_item_s: float | None = None
        self._size_now = max_batch_size
        self._batches = 0
        self._items = 0
        self._failed = 0

    # --- public ---------------------------------------------------------------------
    async def submit(self, item: In) -> Out:
        """Queue ``item`` for the next batch and wait for its own result (or its batch's error)."""
        loop = asyncio.get_running_loop()
        self._ensure_worker(loop)
        assert self._arrived is not None
        future: asyncio.Future[Out] = loop.create_future()
        self._queue.append(_Pending(item, self._clock(), future))
        self._arrived.set()
        return await future

    @property
    def current_max_batch_size(self) -> int:
        """The batch size the adaptive rule allows now (``max_batch_size`` until a cost is measured)."""
        return self._size_now

    def stats(self) -> BatchStats:
        return BatchStats(self._batches, self._items, self._failed, self._size_now, self._cost_per_item_s)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pending in self._queue:
            if not pending.future.done():
                pending.future.cancel()
        self._queue.clear()

    # --- the batching loop ----------------------------------------------------------
    def _ensure_worker(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is not None and self._loop is loop and not self._task.done():
            return
        self._loop = loop
        self._arrived = asyncio.Event()
        self._task = loop.create_task(self._run(), name="shoprec-batcher")

    async def _run(self) -> None:
        assert self._arrived is not None
        arrived = self._arrived
        while True:
            while not self._queue:
                arrived.clear()
                await arrived.wait()
            await self._wait_until_closed(arrived)
            size = self._size_now
            batch, self._queue = self._queue[:size], self._queue[size:]
            batch = [p for p in batch if not p.future.cancelled()]
            if batch:
                await self._execute(batch)

    async def _wait_until_closed(self, arrived: asyncio.Event) -> None:
        """Return once the queue holds a full batch or its oldest item has waited ``batch_wait_s``."""
        while len(self._queue) < self._size_now:
            remaining = self._queue[0].enqueued_at + self.batch_wait_s - self._clock()
            if remaining <= 0:
                return
            arrived.clear()
            waiter = asyncio.ensure_future(arrived.wait())
            timer = asyncio.ensure_future(self._sleep(remaining))
            try:
                await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (waiter, timer):
                    if not task.done():
                        task.cancel()

    async def _execute(self, batch: list[_Pending[In, Out]]) -> None:
        loop = asyncio.get_running_loop()
        items = [p.item for p in batch]
        started = self._clock()
        if self._on_batch is not None:
            self._on_batch(len(items), started - batch[0].enqueued_at)
        try:
            results = await loop.run_in_executor(self._executor, self._call, items)
        except Exception as exc:  # the batch's own failure: only its callers see it
            self._failed += 1
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        finally:
            self._batches += 1
            self._items += len(items)
        self._adapt(self._clock() - started, len(items))
        for p, result in zip(batch, results, strict=True):
            if not p.future.done():
                p.future.set_result(result)

    def _call(self, items: list[In]) -> list[Out]:
        results = list(self._fn(items))
        if len(results) != len(items):
            raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
        return results

    def _adapt(self, cost_s: float, n: int) -> None:
        if self.target_batch_s is None or n == 0:
            return
        per_item = max(cost_s, 0.0) / n
        previous = self._cost_per_item_s
        self._cost_per_item_s = per_item if previous is None else previous + self._smoothing * (per_item - previous)
        if self._cost_per_item_s <= 0:
            self._size_now = self.max_batch_size
            return
        fits = math.floor(self.target_batch_s / self._cost_per_item_s + 1e-9)  # 7.9999… is 8
        self._size_now = max(self.min_batch_size, min(self.max_batch_size, fits))
