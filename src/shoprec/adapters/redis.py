"""Redis, for state shared across replicas: the only module that imports redis-py.

:class:`RedisStore` connects lazily (nothing touches the network until the first command),
fails fast and never blocks a request for long: every command has a short socket timeout,
and after a connection failure the store stays *unavailable* for a backoff period that
doubles on each further failure (up to ``backoff_max_s``), during which every call raises
:class:`~shoprec.errors.SharedStateError` at once without touching the network. The first
call after the backoff tries again; a success resets the backoff. Callers catch
``SharedStateError`` and carry on with their in-process state.

Four groups of commands:

* keys and sets with a TTL (the shared cache tier),
* publish / subscribe (cache invalidations and catalog updates reaching other replicas),
* Lua scripts (atomic read-modify-write, e.g. shared token buckets): register a script once
  by name, run it by name; redis-py's ``Script`` sends ``EVALSHA`` and reloads the script
  when a restarted Redis has forgotten it,
* streams and consumer groups (the event stream and the job queue): entries are
  ``(id, {field: value})`` with ids and fields as ``str``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.commands.core import Script
from redis.retry import Retry

from shoprec.errors import SharedStateError

log = logging.getLogger(__name__)

T = TypeVar("T")

_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


class RedisStore:
    """A thread-safe, lazily connected Redis client that backs off while Redis is away."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        socket_timeout_s: float = 0.25,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 10.0,
    ) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise SharedStateError(f"not a Redis URL: {url!r}")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise SharedStateError("need 0 < backoff_initial_s <= backoff_max_s")
        self.url = url
        self._clock = clock
        self._socket_timeout_s = socket_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._down = False
        self._scripts: dict[str, Script] = {}

    # -- connection state -------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while backing off after a failure (no network call is made to find out)."""
        with self._lock:
            return not self._down or self._clock() >= self._retry_at

    def _redis(self) -> redis.Redis:
        with self._lock:
            if self._down and self._clock() < self._retry_at:
                raise SharedStateError(
                    f"Redis at {self.url} is unavailable; retrying in {self._retry_at - self._clock():.2f}s"
                )
            if self._client is None:
                self._client = redis.Redis.from_url(
                    self.url,
                    socket_timeout=self._socket_timeout_s,
                    socket_connect_timeout=self._socket_timeout_s,
                    retry=Retry(NoBackoff(), 0),
                    retry_on_timeout=False,
                )
            return self._client

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            first = not self._down
            self._down = True
            self._backoff_s = self._backoff_initial_s if first else min(self._backoff_s * 2, self._backoff_max_s)
            self._retry_at = self._clock() + self._backoff_s
        if first:
            log.warning("Redis at %s is unreachable (%s); serving from local state, will reconnect", self.url, exc)

    def _succeeded(self) -> None:
        if self._down:
            with self._lock:
                was_down, self._down, self._backoff_s = self._down, False, 0.0
            if was_down:
                log.info("Redis at %s is reachable again", self.url)

    def call(self, command: Callable[[redis.Redis], T]) -> T:
        """Run ``command(client)``; connection trouble becomes :class:`SharedStateError`."""
        client = self._redis()
        try:
            result = command(client)
        except _UNAVAILABLE as exc:
            self._failed(exc)
            raise SharedStateError(f"Redis at {self.url} is unreachable: {exc}") from exc
        except redis.exceptions.RedisError as exc:
            raise SharedStateError(f"Redis at {self.url} refused a command: {exc}") from exc
        self._succeeded()
        return result

    def ping(self) -> bool:
        try:
            return bool(self.call(lambda r: r.ping()))
        except SharedStateError:
            return False

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            self._scripts.clear()
        if client is not None:
            client.close()

    # -- keys and sets ----------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        value = self.call(lambda r: r.get(key))
        return None if value is None else _as_bytes(value)

    def set(self, key: str, value: bytes, *, ttl_s: float) -> None:
        self.call(lambda r: r.set(key, value, px=max(1, int(ttl_s * 1000))))

    def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return int(self.call(lambda r: r.delete(*keys)))

    def set_with_index(self, key: str, value: bytes, *, ttl_s: float, index_keys: Iterable[str]) -> None:
        """Set ``key`` and add it to each of the sets ``index_keys`` (which live as long), atomically."""
        ttl_ms = max(1, int(ttl_s * 1000))

        def run(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=True)
            pipe.set(key, value, px=ttl_ms)
            for index in index_keys:
                pipe.sadd(index, key)
                pipe.pexpire(index, ttl_ms, gt=True)
                pipe.pexpire(index, ttl_ms, nx=True)
            pipe.execute()

        self.call(run)

    def pop_index(self, index_key: str) -> list[str]:
        """Delete the set ``index_key`` and every key it lists; return those keys."""

        def run(r: redis.Redis) -> list[str]:
            members = sorted(_as_bytes(m).decode() for m in r.smembers(index_key))
            pipe = r.pipeline(transaction=True)
            if members:
                pipe.delete(*members)
            pipe.delete(index_key)
            pipe.execute()
            return members

        return self.call(run)

    def incr(self, key: str) -> int:
        return int(self.call(lambda r: r.incr(key)))

    # -- publish / subscribe ----------------------------------------------------------

    def publish(self, channel: str, message: bytes) -> int:
        return int(self.call(lambda r: r.publish(channel, message)))

    def subscribe(self, channel: str) -> Subscription:
        return Subscription(self, channel)

    # -- Lua scripts (atomic read-modify-write, e.g. shared rate limits) ---------------

    def register_script(self, name: str, source: str) -> None:
        """Register ``source`` under ``name``; it is loaded into Redis on first run (and again after a restart)."""
        client = self._redis()
        with self._lock:
            self._scripts[name] = client.register_script(source)

    def run_script(self, name: str, keys: Sequence[str] = (), args: Sequence[str | int | float | bytes] = ()) -> Any:
        """Run the script registered as ``name`` atomically in Redis and return its reply."""
        with self._lock:
            script = self._scripts.get(name)
        if script is None:
            raise SharedStateError(f"no Lua script registered as {name!r}")
        return self.call(lambda r: script(keys=list(keys), args=list(args), client=r))


StreamEntry = tuple[str, dict[str, str]]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _entries(raw: Any) -> list[StreamEntry]:
    """redis-py's stream entries (a deleted entry claimed by XAUTOCLAIM comes back as None)."""
    out: list[StreamEntry] = []
    for entry in raw or ():
        if entry is None:
            continue
        entry_id, fields = entry
        out.append((_text(entry_id), {_text(k): _text(v) for k, v in (fields or {}).items()}))
    return out


class StreamCommands:
    """Streams and consumer groups over a :class:`RedisStore` (its backoff and errors)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    def create_group(self, stream: str, group: str, start_id: str = "0") -> bool:
        """Create ``group`` on ``stream`` (and the stream), reading from ``start_id``; False if it exists."""

        def run(r: redis.Redis) -> bool:
            try:
                r.xgroup_create(stream, group, id=start_id, mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" in str(exc):
                    return False
                raise
            return True

        return self.store.call(run)

    def add(self, stream: str, fields: dict[str, str]) -> str:
        return _text(self.store.call(lambda r: r.xadd(stream, fields)))  # type: ignore[arg-type]

    def read_group(
        self, stream: str, group: str, consumer: str, *, count: int, block_ms: int | None
    ) -> list[StreamEntry]:
        """New entries for ``consumer`` (``>``), waiting up to ``block_ms`` for the first."""
        reply: Any = self.store.call(
            lambda r: r.xreadgroup(group, consumer, {stream: ">"}, count=count, block=block_ms)
        )
        return [entry for _, raw in (reply or ()) for entry in _entries(raw)]

    def read_own_pending(self, stream: str, group: str, consumer: str, *, count: int) -> list[StreamEntry]:
        """Entries delivered to ``consumer`` and not yet acknowledged (``XREADGROUP ... 0``), oldest first."""
        reply: Any = self.store.call(lambda r: r.xreadgroup(group, consumer, {stream: "0"}, count=count))
        return [entry for _, raw in (reply or ()) for entry in _entries(raw)]

    def autoclaim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int, start_id: str = "0-0"
    ) -> tuple[str, list[StreamEntry]]:
        """Entries pending longer than ``min_idle_ms`` with any consumer, now ``consumer``'s
        (each claim counts a delivery); returns the cursor to continue from ("0-0": done)."""
        reply = self.store.call(
            lambda r: r.xautoclaim(stream, group, consumer, min_idle_ms, start_id=start_id, count=count)
        )
        return _text(reply[0]), _entries(reply[1])

    def deliveries(self, stream: str, group: str, entry_ids: list[str]) -> dict[str, int]:
        """How many times each pending entry of ``entry_ids`` was delivered (absent: not pending)."""
        if not entry_ids:
            return {}
        lo, hi = min(entry_ids, key=_id_key), max(entry_ids, key=_id_key)
        wanted = set(entry_ids)

        def run(r: redis.Redis) -> list[Any]:
            return list(r.xpending_range(stream, group, min=lo, max=hi, count=len(entry_ids) + 10_000))

        return {
            eid: int(p["times_delivered"]) for p in self.store.call(run) if (eid := _text(p["message_id"])) in wanted
        }

    def ack(self, stream: str, group: str, entry_ids: list[str]) -> int:
        if not entry_ids:
            return 0
        return int(self.store.call(lambda r: r.xack(stream, group, *entry_ids)))

    def dead_letter(
        self, stream: str, group: str, entry_id: str, dead_stream: str, fields: dict[str, str], counter: tuple[str, str]
    ) -> None:
        """Append ``fields`` to ``dead_stream``, acknowledge ``entry_id`` and count it, in one MULTI."""

        def run(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=True)
            pipe.xadd(dead_stream, fields)  # type: ignore[arg-type]
            pipe.xack(stream, group, entry_id)
            pipe.hincrby(counter[0], counter[1], 1)
            pipe.execute()

        self.store.call(run)

    def length(self, stream: str) -> int:
        return int(self.store.call(lambda r: r.xlen(stream)))

    def range(self, stream: str, *, start: str = "-", end: str = "+", count: int | None = None) -> list[StreamEntry]:
        return _entries(self.store.call(lambda r: r.xrange(stream, start, end, count=count)))

    def groups(self, stream: str) -> list[dict[str, Any]]:
        """``XINFO GROUPS``: name, consumers, pending, last-delivered-id per group ([] without a stream)."""

        def run(r: redis.Redis) -> list[dict[str, Any]]:
            try:
                info = r.xinfo_groups(stream)
            except redis.exceptions.ResponseError as exc:
                if "no such key" in str(exc).lower():
                    return []
                raise
            return [{_text(k): (_text(v) if isinstance(v, bytes) else v) for k, v in g.items()} for g in info]

        return self.store.call(run)

    def oldest_pending(self, stream: str, group: str) -> str | None:
        summary = self.store.call(lambda r: r.xpending(stream, group))
        low = summary.get("min") if summary else None
        return None if not low else _text(low)

    def trim_before(self, stream: str, min_id: str) -> int:
        """Delete the entries with ids below ``min_id`` (exact ``MINID`` trim)."""
        return int(self.store.call(lambda r: r.xtrim(stream, minid=min_id, approximate=False)))

    def config(self, name: str) -> str | None:
        """One ``CONFIG GET`` value (None when Redis does not say, e.g. a managed Redis refusing CONFIG)."""
        try:
            reply = self.store.call(lambda r: r.config_get(name))
        except SharedStateError:
            if not self.store.available:
                raise
            return None
        value = reply.get(name) if reply else None
        return None if value is None else _text(value)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def next_id(entry_id: str) -> str:
    """The smallest stream id after ``entry_id``."""
    ms, seq = _id_key(entry_id)
    return f"{ms}-{seq + 1}"


def _next_message(pubsub: PubSub, timeout_s: float, _client: redis.Redis) -> dict[str, Any] | None:
    message: dict[str, Any] | None = pubsub.get_message(timeout=timeout_s)
    return message


class Subscription:
    """A channel subscription that survives Redis going away: :meth:`poll` resubscribes as needed.

    ``poll`` never raises for connection trouble; it reports ``reconnected`` so the owner
    can drop state that may have missed messages while the subscription was down."""

    def __init__(self, store: RedisStore, channel: str) -> None:
        self._store = store
        self.channel = channel
        self._pubsub: PubSub | None = None
        self.reconnected = False

    def _ensure(self) -> PubSub:
        if self._pubsub is None:
            pubsub = self._store.call(lambda r: r.pubsub(ignore_subscribe_messages=True))  # type: ignore[no-untyped-call]
            self._store.call(lambda _r: pubsub.subscribe(self.channel))
            self._pubsub = pubsub
        return self._pubsub

    def poll(self, timeout_s: float) -> list[bytes]:
        """Messages that arrived, waiting up to ``timeout_s`` for the first one."""
        was_down = self._pubsub is None
        try:
            pubsub = self._ensure()
        except SharedStateError:
            return []
        if was_down:
            self.reconnected = True
        messages: list[bytes] = []
        wait = timeout_s
        while True:
            try:
                message = self._store.call(functools.partial(_next_message, pubsub, wait))
            except SharedStateError:
                self._drop()
                return messages
            if message is None:
                return messages
            if message.get("type") == "message":
                messages.append(bytes(message["data"]))
            wait = 0.0

    def _drop(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except (*_UNAVAILABLE, redis.exceptions.RedisError):
                pass

    def close(self) -> None:
        self._drop()
