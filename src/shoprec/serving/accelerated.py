"""Search with the caches and the batcher in front of :class:`SearchService`.

For one request: the result cache is asked first; on a miss the query embedding comes from
the embedding cache or, on a miss there, from the dynamic batcher (awaited on the event
loop, so concurrent requests share one encoder call); the rest of the search (retrieval,
ranking) runs in a worker thread with that vector. A static (lookup-table) encoder is cheaper
than a batch's wait and thread hop, so with one the query is encoded inline in that worker
thread and neither the batcher nor the embedding cache is used. Identical concurrent misses are computed
once. A catalog update changes the in-memory catalog and drops the cached results that show
the product, on this replica and (through Redis) on the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np

from shoprec.errors import NotFoundError, RequestError
from shoprec.serving.batching import DynamicBatcher
from shoprec.serving.cache import CachedResult, ResultKey, SearchCache
from shoprec.serving.search import Effort, Pipeline, SearchResult, SearchService
from shoprec.types import Filters, FloatArray

T = TypeVar("T")
RunSync = Callable[[Callable[[], T]], Awaitable[T]]


async def _to_thread(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


class AcceleratedSearch:
    def __init__(
        self,
        cache: SearchCache,
        *,
        batch_max_size: int = 32,
        batch_wait_s: float = 0.002,
        batch_target_s: float | None = 0.02,
        clock: Callable[[], float] = time.perf_counter,
        run_sync: Callable[[Callable[[], Any]], Awaitable[Any]] = _to_thread,
    ) -> None:
        self.cache = cache
        self._batch_args: dict[str, Any] = {
            "max_batch_size": batch_max_size,
            "batch_wait_s": batch_wait_s,
            "target_batch_s": batch_target_s,
        }
        self._clock = clock
        self._run_sync = run_sync
        self._batchers: dict[str, tuple[SearchService, DynamicBatcher[str, FloatArray]]] = {}

    def batcher(self, service: SearchService) -> DynamicBatcher[str, FloatArray]:
        """The batcher of the model version ``service`` serves (one per version; old ones dropped)."""
        version = service.bundle.version
        entry = self._batchers.get(version)
        if entry is None or entry[0] is not service:
            batcher: DynamicBatcher[str, FloatArray] = DynamicBatcher(
                lambda texts: list(service.encode_queries(texts)), **self._batch_args
            )
            self._batchers = {version: (service, batcher)}  # a reload retires the old version's batcher
            return batcher
        return entry[1]

    async def embedding(self, service: SearchService, query: str) -> tuple[FloatArray, bool]:
        batcher = self.batcher(service)
        return await self.cache.embedding(query, service.bundle.version, lambda: batcher.submit(query))

    @staticmethod
    def segment(service: SearchService, user_id: str | None) -> str:
        """Results are shared by everyone without a profile; a user with one gets their own."""
        return "anonymous" if service.users.get(user_id) is None else f"user:{user_id}"

    def key(
        self,
        service: SearchService,
        query: str,
        *,
        k: int,
        filters: Filters,
        pipeline: Pipeline,
        effort: Effort | None,
        explain: bool,
        user_id: str | None,
    ) -> ResultKey:
        how = f"{pipeline}|{effort or Effort()}|explain={explain}"
        segment = self.segment(service, user_id)
        return ResultKey.of(query, filters, segment=segment, k=k, pipeline=how, model_version=service.bundle.version)

    def cached(
        self,
        service: SearchService,
        query: str,
        *,
        k: int,
        filters: Filters,
        pipeline: Pipeline,
        effort: Effort | None,
        explain: bool,
        user_id: str | None,
    ) -> CachedResult | None:
        """The cached result for this request, if any; with results not cached at all, None
        without computing a key."""
        if not self.cache.results_enabled:
            return None
        key = self.key(
            service, query, k=k, filters=filters, pipeline=pipeline, effort=effort, explain=explain, user_id=user_id
        )
        return self.cache.get_result(key)

    async def search(
        self,
        service: SearchService,
        query: str,
        *,
        k: int,
        filters: Filters,
        pipeline: Pipeline,
        effort: Effort | None,
        explain: bool,
        user_id: str | None,
        level: str,
        inline: bool = False,
    ) -> tuple[CachedResult, bool, dict[str, float]]:
        """``(result, served_from_cache, timings_ms)``. ``inline``: search on the calling (event
        loop) thread — for work measured cheaper than the hop to a worker thread and back."""
        t0 = self._clock()
        timings: dict[str, float] = {}

        async def compute() -> CachedResult:
            qvec: FloatArray | None = None
            if pipeline != "bm25" and service.bundle.encoder.batches_worth_it:
                t = self._clock()
                qvec, _ = await self.embedding(service, query)
                timings["encode_ms"] = (self._clock() - t) * 1000

            def run() -> SearchResult:
                return service.search(
                    query,
                    k=k,
                    filters=filters,
                    pipeline=pipeline,
                    explain=explain,
                    qvec=qvec,
                    user_id=user_id,
                    effort=effort,
                )

            result = run() if inline else await self._run_sync(run)
            timings.update({name: v for name, v in result.timings_ms.items() if name != "total_ms"})
            return CachedResult(tuple(result.hits), result.pipeline, result.ranker, result.personalized, level)

        if self.cache.results_enabled:
            key = self.key(
                service, query, k=k, filters=filters, pipeline=pipeline, effort=effort, explain=explain, user_id=user_id
            )
            value, from_cache = await self.cache.result(key, compute)
        else:  # no result cache: no key to compute, nothing to look up or coalesce
            value, from_cache = await compute(), False
        timings["total_ms"] = (self._clock() - t0) * 1000
        return value, from_cache, timings

    # --- catalog updates ------------------------------------------------------------
    async def update_product(
        self,
        service: SearchService,
        product_id: str,
        *,
        price: float | None = None,
        in_stock: bool | None = None,
        remove: bool = False,
    ) -> tuple[int, bool]:
        """Apply a catalog change here, drop the cached results that show the product (here, in
        Redis and on the other replicas). ``(local entries dropped, removed)``."""
        if not remove and price is None and in_stock is None:
            raise RequestError("a product update needs price or in_stock")
        if price is not None and not (np.isfinite(price) and price >= 0):
            raise RequestError(f"price must be a non-negative number, got {price!r}")
        service.bundle.catalog.update_product(product_id, price=price, in_stock=in_stock, remove=remove)
        update = {"model_version": service.bundle.version, "id": product_id, "price": price, "in_stock": in_stock}
        update["remove"] = remove
        dropped = await self._run_sync(lambda: self.cache.invalidate_products([product_id], update=update))
        return int(dropped), remove


def apply_remote_update(service: SearchService | None, update: dict[str, Any]) -> None:
    """Apply a catalog change published by another replica to this replica's catalog."""
    if service is None or update.get("model_version") != service.bundle.version:
        return
    price = update.get("price")
    in_stock = update.get("in_stock")
    with contextlib.suppress(NotFoundError):  # already removed here
        service.bundle.catalog.update_product(
            str(update["id"]),
            price=None if price is None else float(price),
            in_stock=None if in_stock is None else bool(in_stock),
            remove=bool(update.get("remove", False)),
        )
