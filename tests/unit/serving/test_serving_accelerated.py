"""Which path a query's vector takes: the batcher (and embedding cache) or inline encoding."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from shoprec.serving.accelerated import AcceleratedSearch
from shoprec.serving.cache import SearchCache
from shoprec.serving.search import SearchQuery, SearchResult
from shoprec.types import Hit


class FakeService:
    """Records how it was asked: batched encodes, and searches with or without a vector."""

    def __init__(self, *, static: bool) -> None:
        encoder = SimpleNamespace(batches_worth_it=not static)
        self.bundle = SimpleNamespace(version="v1", encoder=encoder)
        self.users = SimpleNamespace(get=lambda _: None)
        self.batched: list[list[str]] = []
        self.qvecs: list[Any] = []

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.batched.append(list(texts))
        return np.ones((len(texts), 4), dtype=np.float32)

    def search(self, query: str, *, qvec: Any = None, pipeline: str = "full", **_: Any) -> SearchResult:
        self.qvecs.append(qvec)
        return SearchResult(hits=[Hit("p1", 1.0)], pipeline=pipeline, ranker="learned", timings_ms={"rank_ms": 1.0})  # type: ignore[arg-type]


async def _search(
    fast: AcceleratedSearch, service: FakeService, query: str, *, inline: bool = False
) -> tuple[Any, bool, dict[str, float]]:
    return await fast.search(service, SearchQuery(query, k=5), level="full", inline=inline)  # type: ignore[arg-type]


@pytest.mark.parametrize("static", [False, True])
def test_static_encoders_skip_the_batcher_and_transformers_use_it(static: bool) -> None:
    service = FakeService(static=static)
    fast = AcceleratedSearch(SearchCache(result_entries=0), batch_wait_s=0.0)

    async def run() -> None:
        for q in ("cordless drill", "oak table"):
            result, cached, timings = await _search(fast, service, q)
            assert [h.product_id for h in result.hits] == ["p1"] and not cached
            assert ("encode_ms" in timings) is not static

    asyncio.run(run())
    if static:  # encoded inline by the search itself: no batch, no vector handed in
        assert service.batched == [] and service.qvecs == [None, None]
    else:
        assert sum(len(b) for b in service.batched) == 2
        assert all(v is not None and v.shape == (4,) for v in service.qvecs)


@pytest.mark.parametrize("inline", [False, True])
def test_a_cheap_level_is_searched_inline_without_a_thread_hop(inline: bool) -> None:
    service = FakeService(static=True)
    hops: list[str] = []

    async def run_sync(fn: Any) -> Any:
        hops.append("worker")
        return fn()

    fast = AcceleratedSearch(SearchCache(result_entries=0), run_sync=run_sync)

    async def run() -> Any:
        return await _search(fast, service, "cordless drill", inline=inline)

    result, cached, _ = asyncio.run(run())
    assert [h.product_id for h in result.hits] == ["p1"] and not cached
    assert hops == ([] if inline else ["worker"])


def test_a_retired_versions_batcher_is_stopped_from_the_drain_thread(caplog: pytest.LogCaptureFixture) -> None:
    """A swap drains the old version in a thread of its own; its batcher's task is stopped on
    the event loop and awaited, never left pending for the garbage collector."""
    old, new = FakeService(static=False), FakeService(static=False)
    fast = AcceleratedSearch(SearchCache(result_entries=0), batch_wait_s=0.0)

    async def run() -> None:
        await _search(fast, old, "cordless drill")
        batcher = fast.batcher(old)  # type: ignore[arg-type]
        assert batcher._task is not None and not batcher._task.done()
        drain = threading.Thread(target=fast.retire_from_thread, args=(old,))
        drain.start()
        while drain.is_alive():  # the drain thread waits on this loop, which must keep running
            await asyncio.sleep(0.001)
        assert batcher._task is None and old not in fast._batchers
        await _search(fast, new, "oak table")  # the new version batches on
        gc.collect()
        await fast.aclose()
        assert fast._batchers == {}

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(run())
        gc.collect()
    assert not [r for r in caplog.records if "destroyed but it is pending" in r.getMessage()]
    assert sum(len(b) for b in new.batched) == 1
