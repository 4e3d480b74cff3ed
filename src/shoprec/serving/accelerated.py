"""Search with the caches and the batcher in front of :class:`SearchService`.

For one request: the result cache is asked first; on a miss the query embedding comes from
the embedding cache or, on a miss there, from the dynamic batcher (awaited on the event
loop, so concurrent requests share one encoder call); the rest of the search (retrieval,
ranking) runs in a worker thread with that vector. A static (lookup-table) encoder is cheaper
than a batch's wait and thread hop, so with one the query is encoded inline in that worker
thread and neither the batcher nor the embedding cache is used. Identical concurrent misses are computed
once. A catalog update changes the in-memory catalog and drops the cached results that show
the product, on this replica and (through Redis) on the others.

Each model version has its own batcher, started by its first query; :meth:`retire` stops a
drained version's batcher and awaits its task (the runtime calls it from its drain thread
through :meth:`retire_from_thread`), and :meth:`aclose` stops them all at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np

from shoprec.errors import NotFoundError, RequestError
from shoprec.serving.batching import DynamicBatcher
from shoprec.serving.browse import Browse, BrowseResult, browse
from shoprec.serving.cache import CachedResult, ResultKey, SearchCache
from shoprec.serving.search import SearchQuery, SearchResult, SearchService
from shoprec.types import Effort, FloatArray

log = logging.getLogger(__name__)

T = TypeVar("T")
RunSync = Callable[[Callable[[], T]], Awaitable[T]]
RETIRE_TIMEOUT_S = 10.0


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
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        """``on_batch``: told each encoder batch's size and wait (see :class:`DynamicBatcher`)."""
        self.cache = cache
        self._batch_args: dict[str, Any] = {
            "max_batch_size": batch_max_size,
            "batch_wait_s": batch_wait_s,
            "target_batch_s": batch_target_s,
            "on_batch": on_batch,
        }
        self._clock = clock
        self._run_sync = run_sync
        # one batcher per service (model version) object, and the loop its task runs on
        self._batchers: dict[SearchService, DynamicBatcher[str, FloatArray]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def batcher(self, service: SearchService) -> DynamicBatcher[str, FloatArray]:
        """The batcher of the model version ``service`` serves."""
        batcher = self._batchers.get(service)
        if batcher is None:
            self._loop = asyncio.get_running_loop()
            batcher = DynamicBatcher(lambda texts: list(service.encode_queries(texts)), **self._batch_args)
            self._batchers[service] = batcher
        return batcher

    async def retire(self, service: SearchService) -> None:
        """Stop the batcher of a version no request uses any more, and await its task."""
        batcher = self._batchers.pop(service, None)
        if batcher is not None:
            await batcher.aclose()

    def retire_from_thread(self, service: SearchService, timeout_s: float = RETIRE_TIMEOUT_S) -> None:
        """:meth:`retire`, called from another thread (the runtime's drain thread): run on the
        loop the batcher's task runs on, and wait for it."""
        loop = self._loop
        if service not in self._batchers or loop is None or loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.retire(service), loop).result(timeout_s)
        except Exception:  # a loop shutting down: aclose at shutdown stops what is left
            log.warning("could not stop the batcher of a retired version", exc_info=True)

    async def aclose(self) -> None:
        """Stop every batcher (at shutdown)."""
        for service in list(self._batchers):
            await self.retire(service)

    async def embedding(self, service: SearchService, query: str) -> tuple[FloatArray, bool]:
        batcher = self.batcher(service)
        return await self.cache.embedding(query, service.bundle.version, lambda: batcher.submit(query))

    @staticmethod
    def segment(service: SearchService, user_id: str | None) -> str:
        """Results are shared by everyone without a profile; a user with one gets their own."""
        return "anonymous" if service.users.get(user_id) is None else f"user:{user_id}"

    def key(self, service: SearchService, q: SearchQuery) -> ResultKey:
        how = f"{q.pipeline}|{q.effort or Effort()}|explain={q.explain}"
        segment = self.segment(service, q.user_id)
        return ResultKey.of(
            q.text, q.filters, segment=segment, k=q.k, pipeline=how, model_version=service.bundle.version
        )

    def cached(self, service: SearchService, q: SearchQuery) -> CachedResult | None:
        """The cached result for this search, if any; with results not cached at all, None
        without computing a key."""
        return self.cache.get_result(self.key(service, q)) if self.cache.results_enabled else None

    async def search(
        self, service: SearchService, q: SearchQuery, *, level: str, inline: bool = False
    ) -> tuple[CachedResult, bool, dict[str, float]]:
        """``(result, served_from_cache, timings_ms)``. ``inline``: search on the calling (event
        loop) thread — for work measured cheaper than the hop to a worker thread and back."""
        t0 = self._clock()
        timings: dict[str, float] = {}

        async def compute() -> CachedResult:
            qvec: FloatArray | None = None
            if q.pipeline != "bm25" and service.bundle.encoder.batches_worth_it:
                t = self._clock()
                qvec, _ = await self.embedding(service, q.text)
                timings["encode_ms"] = (self._clock() - t) * 1000

            def run() -> SearchResult:
                return service.search(
                    q.text,
                    k=q.k,
                    filters=q.filters,
                    pipeline=q.pipeline,
                    explain=q.explain,
                    qvec=qvec,
                    user_id=q.user_id,
                    effort=q.effort,
                    correct=False,  # the handler searches the corrected text (so its key and vector are that text's)
                )

            result = run() if inline else await self._run_sync(run)
            timings.update({name: v for name, v in result.timings_ms.items() if name != "total_ms"})
            return CachedResult(tuple(result.hits), result.pipeline, result.ranker, result.personalized, level)

        if self.cache.results_enabled:
            value, from_cache = await self.cache.result(self.key(service, q), compute)
        else:  # no result cache: no key to compute, nothing to look up or coalesce
            value, from_cache = await compute(), False
        timings["total_ms"] = (self._clock() - t0) * 1000
        return value, from_cache, timings

    async def browse(self, service: SearchService, q: SearchQuery, result: CachedResult, b: Browse) -> BrowseResult:
        """The page, total and facet counts of ``q``'s matched set (:mod:`shoprec.serving.browse`),
        in a worker thread; ``result`` is ``q``'s ranking (cached under ``q``'s key, which holds
        all it depends on: the page, order and counts are computed afresh for each request)."""
        text = service.lexical_text(q.text)  # with the shop's synonyms, as lexical retrieval reads it
        return await self._run_sync(lambda: browse(service.bundle, text, q.filters, result.hits, b))  # type: ignore[no-any-return]

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
