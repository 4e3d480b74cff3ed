"""Caches before and after the model: query → embedding, and search request → results.

* :class:`TTLCache` — a bounded, thread-safe LRU map whose entries expire after a TTL on an
  injected clock.
* :class:`SingleFlight` — concurrent identical misses are computed once: the first caller
  computes, the others await its result (or its error).
* :class:`SearchCache` — both caches with their keys: the embedding key is the normalized
  query plus the model version; the result key is (normalized query, filters, user segment,
  k, pipeline, model version). Each result entry is indexed by the products it lists, so a
  catalog change (price, stock, removal) drops exactly the entries that show that product.

Local first, shared second: with a :class:`SharedStore` (Redis, wired in by the app), a local
miss looks in Redis before computing, and what is computed is written to both. An
invalidation deletes the product's entries in Redis too and is published to the other
replicas, which drop their local entries and apply the catalog change (:meth:`SearchCache.pump`,
run in a background thread by :meth:`SearchCache.start_listening`). When Redis is away every
shared call fails fast and the service keeps serving from its local caches; after a
reconnect the local results are dropped, since invalidations may have been missed meanwhile.
Nothing is pickled: embeddings travel as raw float32 bytes, results as JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from shoprec.core.text import normalize
from shoprec.errors import ConfigError, SharedStateError
from shoprec.types import Filters, FloatArray, Hit

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

KEY_PREFIX = "shoprec:cache:"
CHANNEL = "shoprec:catalog"


class TTLCache(Generic[K, V]):
    """At most ``max_entries`` entries, least recently used out first; each lives ``ttl_s``."""

    def __init__(self, max_entries: int, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(max_entries, int) or max_entries < 0:
            raise ConfigError(f"cache size must be a non-negative integer, got {max_entries!r}")
        if not 0 < ttl_s < float("inf"):
            raise ConfigError(f"cache TTL must be a positive number of seconds, got {ttl_s!r}")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.on_evict: Callable[[K], None] | None = None

    def get(self, key: K) -> V | None:
        expired = False
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and entry[0] <= self._clock():
                del self._data[key]
                entry, expired = None, True
            if entry is None:
                self.misses += 1
            else:
                self._data.move_to_end(key)
                self.hits += 1
        if expired and self.on_evict is not None:
            self.on_evict(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V, ttl_s: float | None = None) -> None:
        if self.max_entries == 0:
            return
        evicted: list[K] = []
        with self._lock:
            self._data[key] = (self._clock() + (self.ttl_s if ttl_s is None else ttl_s), value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                old, _ = self._data.popitem(last=False)
                evicted.append(old)
        if self.on_evict is not None:
            for old in evicted:
                self.on_evict(old)

    def pop(self, key: K) -> V | None:
        with self._lock:
            entry = self._data.pop(key, None)
        return None if entry is None else entry[1]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            entry = self._data.get(key)  # type: ignore[arg-type]
            return entry is not None and entry[0] > self._clock()


class SingleFlight(Generic[K, V]):
    """Concurrent calls with the same key share one computation (on one event loop)."""

    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Future[V]] = {}
        self.computed = 0

    async def do(self, key: K, compute: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        """``(value, shared)``: ``shared`` is True when another caller's computation was reused."""
        running = self._inflight.get(key)
        if running is not None:
            try:
                return await asyncio.shield(running), True
            except asyncio.CancelledError:
                me = asyncio.current_task()
                if running.cancelled() and me is not None and not me.cancelling():
                    return await self.do(key, compute)  # the computing caller went away: compute here
                raise
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        self.computed += 1
        try:
            value = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self._inflight[key]
        future.set_result(value)
        return value, False


class Subscription(Protocol):
    reconnected: bool

    def poll(self, timeout_s: float) -> list[bytes]: ...

    def close(self) -> None: ...


class SharedStore(Protocol):
    """What the cache needs from Redis (see :class:`shoprec.adapters.redis.RedisStore`)."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, *, ttl_s: float) -> None: ...

    def set_with_index(self, key: str, value: bytes, *, ttl_s: float, index_keys: Iterable[str]) -> None: ...

    def pop_index(self, index_key: str) -> list[str]: ...

    def publish(self, channel: str, message: bytes) -> int: ...

    def subscribe(self, channel: str) -> Subscription: ...


@dataclass(frozen=True, slots=True)
class ResultKey:
    query: str  # normalized
    filters: tuple[Any, ...]
    segment: str
    k: int
    pipeline: str
    model_version: str

    @classmethod
    def of(
        cls, query: str, filters: Filters | None, *, segment: str, k: int, pipeline: str, model_version: str
    ) -> ResultKey:
        f = filters or Filters()
        parts = (f.category, f.brand, f.min_price, f.max_price, f.in_stock, f.price_range)
        return cls(normalize(query), parts, segment, k, pipeline, model_version)

    def digest(self) -> str:
        raw = json.dumps([self.query, list(self.filters), self.segment, self.k, self.pipeline, self.model_version])
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class CachedResult:
    """What a search returned, enough to answer the same request again."""

    hits: tuple[Hit, ...]
    pipeline: str
    ranker: str
    personalized: bool
    level: str = ""  # the degradation level that computed it

    def product_ids(self) -> list[str]:
        return [h.product_id for h in self.hits]

    def to_json(self) -> bytes:
        d = asdict(self)
        d["hits"] = [[h.product_id, h.score, dict(h.stages)] for h in self.hits]
        return json.dumps(d).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CachedResult:
        d = json.loads(raw)
        hits = tuple(Hit(str(pid), float(score), dict(stages)) for pid, score, stages in d["hits"])
        return cls(hits, str(d["pipeline"]), str(d["ranker"]), bool(d["personalized"]), str(d.get("level", "")))


def embedding_key(query: str, model_version: str) -> str:
    return f"{model_version}\x00{normalize(query)}"


CatalogListener = Callable[[dict[str, Any]], None]


class SearchCache:
    """The embedding cache and the result cache, local and (optionally) shared through Redis."""

    def __init__(
        self,
        *,
        embedding_entries: int = 10_000,
        embedding_ttl_s: float = 3600.0,
        result_entries: int = 10_000,
        result_ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedStore | None = None,
    ) -> None:
        self.embeddings: TTLCache[str, FloatArray] = TTLCache(embedding_entries, embedding_ttl_s, clock=clock)
        self.results: TTLCache[str, CachedResult] = TTLCache(result_entries, result_ttl_s, clock=clock)
        self.results.on_evict = self._unindex
        self.shared = shared
        self.instance_id = uuid.uuid4().hex
        self._by_product: dict[str, set[str]] = {}
        self._products_of: dict[str, list[str]] = {}
        self._index_lock = threading.Lock()
        self._generation = 0
        self.embed_flight: SingleFlight[str, FloatArray] = SingleFlight()
        self.result_flight: SingleFlight[str, CachedResult] = SingleFlight()
        self._subscription: Subscription | None = None
        self._listeners: list[CatalogListener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.invalidated_total = 0
        # lookups in Redis (after a local miss) and their hits, by cache: read by the metrics
        self.shared_lookups = {"embedding": 0, "result": 0}
        self.shared_hits = {"embedding": 0, "result": 0}

    # --- embeddings -----------------------------------------------------------------
    def get_embedding(self, query: str, model_version: str) -> FloatArray | None:
        key = embedding_key(query, model_version)
        vec = self.embeddings.get(key)
        if vec is None and self.shared is not None:
            raw = self._shared_lookup("embedding", _emb_redis_key(key))
            if raw is not None:
                vec = np.frombuffer(raw, dtype=np.float32).copy()
                self.embeddings.put(key, vec)
        return vec

    def put_embedding(self, query: str, model_version: str, vec: FloatArray) -> None:
        key = embedding_key(query, model_version)
        vec = np.ascontiguousarray(vec, dtype=np.float32)
        self.embeddings.put(key, vec)
        if self.shared is not None:
            self._shared_call(lambda s: s.set(_emb_redis_key(key), vec.tobytes(), ttl_s=self.embeddings.ttl_s))

    async def embedding(
        self, query: str, model_version: str, compute: Callable[[], Awaitable[FloatArray]]
    ) -> tuple[FloatArray, bool]:
        """The query's embedding and whether it came from a cache; identical misses encode once."""
        if not self.embeddings_enabled:
            return await compute(), False
        cached = self.get_embedding(query, model_version)
        if cached is not None:
            return cached, True

        async def fill() -> FloatArray:
            vec = await compute()
            self.put_embedding(query, model_version, vec)
            return vec

        vec, _ = await self.embed_flight.do(embedding_key(query, model_version), fill)
        return vec, False

    # --- results --------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """Moves on every invalidation: a result computed across one is not stored."""
        return self._generation

    @property
    def results_enabled(self) -> bool:
        """False with no local entries and no shared tier: results are then neither looked up
        nor stored (nor coalesced), and a request pays nothing for the cache."""
        return self.results.max_entries > 0 or self.shared is not None

    @property
    def embeddings_enabled(self) -> bool:
        return self.embeddings.max_entries > 0 or self.shared is not None

    def get_result(self, key: ResultKey) -> CachedResult | None:
        if not self.results_enabled:
            return None
        return self._get_result(key.digest())

    def _get_result(self, digest: str) -> CachedResult | None:
        value = self.results.get(digest)
        if value is None and self.shared is not None:
            raw = self._shared_lookup("result", _res_redis_key(digest))
            if raw is not None:
                value = CachedResult.from_json(raw)
                self._put_local(digest, value)
        return value

    def put_result(self, key: ResultKey, value: CachedResult, *, generation: int | None = None) -> bool:
        """Store ``value`` unless an invalidation happened since ``generation`` was read."""
        return self._put_result(key.digest(), value, generation=generation)

    def _put_result(self, digest: str, value: CachedResult, *, generation: int | None = None) -> bool:
        if not self.results_enabled or generation is not None and generation != self._generation:
            return False
        self._put_local(digest, value)
        if self.shared is not None:
            index = [_product_redis_key(pid) for pid in value.product_ids()]
            raw = value.to_json()
            self._shared_call(
                lambda s: s.set_with_index(_res_redis_key(digest), raw, ttl_s=self.results.ttl_s, index_keys=index)
            )
        return True

    async def result(self, key: ResultKey, compute: Callable[[], Awaitable[CachedResult]]) -> tuple[CachedResult, bool]:
        """The cached result for ``key`` (True) or a freshly computed one (False), computed once."""
        if not self.results_enabled:
            return await compute(), False
        digest = key.digest()
        cached = self._get_result(digest)
        if cached is not None:
            return cached, True
        generation = self._generation

        async def fill() -> CachedResult:
            value = await compute()
            self._put_result(digest, value, generation=generation)
            return value

        value, _ = await self.result_flight.do(digest, fill)
        return value, False

    def _put_local(self, digest: str, value: CachedResult) -> None:
        pids = value.product_ids()
        with self._index_lock:
            self._unindex_locked(digest)
            self._products_of[digest] = pids
            for pid in pids:
                self._by_product.setdefault(pid, set()).add(digest)
        self.results.put(digest, value)

    def _unindex(self, digest: str) -> None:
        with self._index_lock:
            self._unindex_locked(digest)

    def _unindex_locked(self, digest: str) -> None:
        for pid in self._products_of.pop(digest, ()):
            keys = self._by_product.get(pid)
            if keys is not None:
                keys.discard(digest)
                if not keys:
                    del self._by_product[pid]

    # --- invalidation ---------------------------------------------------------------
    def invalidate_products(self, product_ids: Iterable[str], *, update: dict[str, Any] | None = None) -> int:
        """Drop every result entry that lists one of ``product_ids``, here, in Redis, and (by a
        published message carrying ``update``) on the other replicas. Returns local entries dropped."""
        pids = sorted(set(product_ids))
        dropped = self._invalidate_local(pids)
        if self.shared is not None:
            for pid in pids:
                self._shared_call(lambda s, p=pid: s.pop_index(_product_redis_key(p)))  # type: ignore[misc]
            message = json.dumps({"origin": self.instance_id, "products": pids, "update": update}).encode()
            self._shared_call(lambda s: s.publish(CHANNEL, message))
        return dropped

    def _invalidate_local(self, pids: Iterable[str]) -> int:
        with self._index_lock:
            self._generation += 1
            digests = {d for pid in pids for d in self._by_product.get(pid, ())}
            for digest in digests:
                self._unindex_locked(digest)
        for digest in digests:
            self.results.pop(digest)
        self.invalidated_total += len(digests)
        return len(digests)

    def clear_results(self) -> None:
        with self._index_lock:
            self._generation += 1
            self._by_product.clear()
            self._products_of.clear()
        self.results.clear()

    # --- other replicas -------------------------------------------------------------
    def on_catalog_update(self, listener: CatalogListener) -> None:
        """Call ``listener(update)`` for each catalog update published by another replica."""
        self._listeners.append(listener)

    def pump(self, timeout_s: float = 0.0) -> int:
        """Apply invalidations published by other replicas; returns how many messages were handled."""
        if self.shared is None:
            return 0
        if self._subscription is None:
            self._subscription = self.shared.subscribe(CHANNEL)
        messages = self._subscription.poll(timeout_s)
        if self._subscription.reconnected:
            self._subscription.reconnected = False
            self.clear_results()  # may have missed invalidations while away
        handled = 0
        for raw in messages:
            try:
                msg = json.loads(raw)
                if msg.get("origin") == self.instance_id:
                    continue
                update = msg.get("update")
                if isinstance(update, dict):
                    for listener in self._listeners:
                        listener(update)
                self._invalidate_local([str(p) for p in msg.get("products", ())])
                handled += 1
            except Exception:  # one bad message must not stop the listener
                log.exception("could not apply a catalog message from another replica")
        return handled

    def start_listening(self, *, poll_s: float = 1.0) -> None:
        if self.shared is None or self._thread is not None:
            return
        self.pump(0.0)  # subscribe now, so nothing published from here on is missed

        def loop() -> None:
            while not self._stop.is_set():
                self.pump(poll_s)
                if self._subscription is None or not self.shared_available():
                    self._stop.wait(poll_s)

        self._thread = threading.Thread(target=loop, name="shoprec-cache-listener", daemon=True)
        self._thread.start()

    def shared_available(self) -> bool:
        return bool(getattr(self.shared, "available", self.shared is not None))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    # --- Redis, failing soft --------------------------------------------------------
    def _shared_lookup(self, cache: str, key: str) -> bytes | None:
        self.shared_lookups[cache] += 1
        raw = self._shared_call(lambda s: s.get(key))
        if raw is not None:
            self.shared_hits[cache] += 1
        return raw

    def _shared_call(self, command: Callable[[SharedStore], V]) -> V | None:
        assert self.shared is not None
        try:
            return command(self.shared)
        except SharedStateError:
            return None  # Redis is away: the local caches carry on (the store logs and reconnects)


def _emb_redis_key(key: str) -> str:
    return KEY_PREFIX + "emb:" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _res_redis_key(digest: str) -> str:
    return KEY_PREFIX + "res:" + digest


def _product_redis_key(product_id: str) -> str:
    return KEY_PREFIX + "product:" + product_id
