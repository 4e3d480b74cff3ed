"""Rate limiting per API key or client: token buckets, in-process or shared through Redis.

:class:`LocalRateLimiter` keeps the buckets in this process (bounded, least recently used
first out). :class:`SharedRateLimiter` keeps them in Redis and runs the bucket arithmetic of
:mod:`shoprec.core.tokenbucket` as one Lua script, so the read-refill-take-write is atomic
however many replicas share a bucket, on Redis's own clock so replicas agree on time. When
Redis cannot be reached it logs that once and answers from its local limiter (the adapter
backs off, so this costs no network wait per request); when Redis is back it says so and
uses it again.

Which bucket and which limit a request gets is :class:`ClientLimits`: an authenticated key
uses its own ``rate_limit_per_s`` (else the default for keys); an anonymous request is keyed
by its client address with the anonymous limit. No limit configured means no limiting.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shoprec.core.tokenbucket import BucketState, Decision, Limit, take
from shoprec.errors import SharedStateError

log = logging.getLogger(__name__)

KEY_PREFIX = "shoprec:ratelimit:"

# KEYS[1]: the bucket. ARGV: rate_per_s, burst, cost. Returns {allowed (0/1), tokens, wait_s};
# floats travel as strings because Redis truncates Lua numbers to integers.
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
if now > ts then ts = now end
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens), tostring(wait)}
"""


class RateLimiter(Protocol):
    def check(self, key: str, limit: Limit, cost: float = 1.0) -> Decision: ...


class LocalRateLimiter:
    """Buckets in this process. Thread-safe; at most ``max_keys`` buckets (a bucket evicted
    for being least recently used comes back full, which only ever errs towards allowing)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: collections.OrderedDict[str, BucketState] = collections.OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: str, limit: Limit, cost: float = 1.0) -> Decision:
        with self._lock:
            state, decision = take(self._buckets.get(key), self._clock(), limit, cost)
            self._buckets[key] = state
            self._buckets.move_to_end(key)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return decision


class ScriptStore(Protocol):
    """What the shared limiter needs from the Redis adapter (:class:`shoprec.adapters.redis.RedisStore`):
    register a Lua script by name and run it atomically. Both raise
    :class:`~shoprec.errors.SharedStateError` when Redis cannot be reached (at once while the
    adapter backs off)."""

    def register_script(self, name: str, source: str) -> None: ...

    def run_script(
        self, name: str, keys: Sequence[str] = (), args: Sequence[str | int | float | bytes] = ()
    ) -> Any: ...


class SharedRateLimiter:
    """Buckets in Redis, one atomic script call per request; the local limiter while Redis is away."""

    SCRIPT = "shoprec_token_bucket"

    def __init__(self, store: ScriptStore, *, fallback: LocalRateLimiter | None = None) -> None:
        self._store = store
        self.fallback = fallback or LocalRateLimiter()
        self._registered = False
        self._down = False
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """True while answering from the local fallback."""
        return self._down

    def check(self, key: str, limit: Limit, cost: float = 1.0) -> Decision:
        try:
            if not self._registered:
                self._store.register_script(self.SCRIPT, TOKEN_BUCKET_LUA)
                self._registered = True
            reply = self._store.run_script(self.SCRIPT, [KEY_PREFIX + key], [limit.rate_per_s, limit.burst, cost])
            allowed, tokens, wait_s = reply
        except SharedStateError as exc:
            with self._lock:
                if not self._down:
                    self._down = True
                    log.warning("rate limits: Redis unreachable (%s); using in-process buckets until it is back", exc)
            return self.fallback.check(key, limit, cost)
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    log.warning("rate limits: Redis is back; buckets are shared again")
        return Decision(bool(int(allowed)), float(_text(tokens)), float(_text(wait_s)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """Limits from settings. ``None`` rates mean unlimited."""

    anonymous_per_s: float | None = None
    anonymous_burst: float | None = None
    key_default_per_s: float | None = None
    burst_factor: float = 2.0

    def for_request(
        self, *, key_id: str | None, key_rate_per_s: float | None, client: str | None
    ) -> tuple[str, Limit] | None:
        """The bucket name and limit for one request, or None when it is not limited."""
        if key_id is not None:
            rate = key_rate_per_s or self.key_default_per_s
            if rate is None:
                return None
            return f"key:{key_id}", Limit(rate, max(1.0, rate * self.burst_factor))
        if self.anonymous_per_s is None:
            return None
        burst = self.anonymous_burst or max(1.0, self.anonymous_per_s * self.burst_factor)
        return f"client:{client or 'unknown'}", Limit(self.anonymous_per_s, burst)
