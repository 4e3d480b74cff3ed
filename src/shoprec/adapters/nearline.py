"""The near-line recommendation state in Redis: written by ``shoprec worker``, read by every replica.

Keys (``P`` is the ``redis_prefix`` setting)::

    P nl:pop              ZSET  item -> popularity (event weights summed)
    P nl:co:<item>        ZSET  next item -> co-occurrence weight
    P nl:hist:<user>      LIST  the user's items, newest first (``nearline_history_items`` kept)
    P nl:prof:<user>      HASH  item -> the user's profile weight for it (view 0.5 ... purchase 3)
    P nl:buy:<user>       SET   the items the user purchased
    P nl:applied:<id>     STRING an applied event id (expires after ``events_dedupe_ttl_s``)
    P nl:stats            HASH  applied / duplicates counters

:meth:`NearlineStore.apply` runs one Lua script per batch: for each event whose id is not yet
recorded, the history, co-occurrence and popularity updates and the id, together. The script
runs atomically (nothing else interleaves), and since Redis does not roll a script back on an
error, every key an event would write is type-checked before its first write: an event is
applied entirely or not at all (a refused one comes back with the reason). A redelivered event
(a worker died before acknowledging it) or a retried one (a client resent it) finds its id and
changes nothing: at least once on the stream, exactly once in effect. The formulas are
:mod:`shoprec.core.nearline`'s.

:meth:`NearlineStore.view` reads what one recommendation needs in one round trip (another Lua
script): the history, the co-occurrence rows of its last items, the most popular items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shoprec.adapters.redis import RedisStore
from shoprec.core.nearline import (
    DEFAULT_RULE,
    EVENT_WEIGHTS,
    PROFILE_WEIGHTS,
    CoOccurrenceRule,
    NearlineView,
    flatten_rows,
)
from shoprec.types import Event

_APPLY = """
local prefix = ARGV[1]
local window = tonumber(ARGV[2])
local back = tonumber(ARGV[3])
local max_history = tonumber(ARGV[4])
local dedupe_ttl = tonumber(ARGV[5])
local history_ttl = tonumber(ARGV[6])
local pop = prefix .. 'nl:pop'
-- Redis does not roll a script back: every key an event writes is checked before its first write
local function holds(key, kind)
  local t = redis.call('TYPE', key)['ok']
  return t == 'none' or t == kind
end
local applied, total, refused = 0, 0, {}
for i = 7, #ARGV, 6 do
  total = total + 1
  local id, user, item, weight = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local profile_weight, purchase = ARGV[i + 4], ARGV[i + 5] == '1'
  local seen = prefix .. 'nl:applied:' .. id
  local hkey = prefix .. 'nl:hist:' .. user
  local pkey = prefix .. 'nl:prof:' .. user
  local bkey = prefix .. 'nl:buy:' .. user
  local co = prefix .. 'nl:co:'
  if redis.call('EXISTS', seen) == 0 then
    local bad = nil
    if not holds(hkey, 'list') then bad = hkey
    elseif not holds(co .. item, 'zset') then bad = co .. item
    elseif not holds(pop, 'zset') then bad = pop
    elseif not holds(pkey, 'hash') then bad = pkey
    elseif not holds(bkey, 'set') then bad = bkey
    elseif not holds(seen, 'string') then bad = seen end
    local recent = {}
    if not bad then
      recent = redis.call('LRANGE', hkey, 0, window - 1)
      for d = 1, #recent do
        if not holds(co .. recent[d], 'zset') then bad = co .. recent[d] end
      end
    end
    if bad then
      refused[#refused + 1] = total
      refused[#refused + 1] = 'WRONGTYPE ' .. bad .. ' holds a ' .. redis.call('TYPE', bad)['ok']
    else
      for d = 1, #recent do
        redis.call('ZINCRBY', co .. recent[d], 1.0 / d, item)
        redis.call('ZINCRBY', co .. item, back / d, recent[d])
      end
      redis.call('LPUSH', hkey, item)
      redis.call('LTRIM', hkey, 0, max_history - 1)
      redis.call('EXPIRE', hkey, history_ttl)
      redis.call('ZINCRBY', pop, weight, item)
      redis.call('HINCRBYFLOAT', pkey, item, profile_weight)
      redis.call('EXPIRE', pkey, history_ttl)
      if purchase then
        redis.call('SADD', bkey, item)
        redis.call('EXPIRE', bkey, history_ttl)
      end
      redis.call('SET', seen, '1', 'EX', dedupe_ttl)
      applied = applied + 1
    end
  end
end
redis.call('HINCRBY', prefix .. 'nl:stats', 'applied', applied)
redis.call('HINCRBY', prefix .. 'nl:stats', 'duplicates', total - applied - #refused / 2)
return {applied, refused}
"""

_VIEW = """
local prefix = ARGV[1]
local user = ARGV[2]
local history_n = tonumber(ARGV[3])
local rows_n = tonumber(ARGV[4])
local row_items = tonumber(ARGV[5])
local popular_n = tonumber(ARGV[6])
local hist = {}
if user ~= '' then hist = redis.call('LRANGE', prefix .. 'nl:hist:' .. user, 0, history_n - 1) end
if #ARGV > 6 then hist = {unpack(ARGV, 7)} end
local rows = {}
for i = 1, math.min(rows_n, #hist) do
  rows[i] = redis.call('ZREVRANGE', prefix .. 'nl:co:' .. hist[i], 0, row_items - 1, 'WITHSCORES')
end
local pop = {}
if popular_n > 0 then pop = redis.call('ZREVRANGE', prefix .. 'nl:pop', 0, popular_n - 1, 'WITHSCORES') end
return {hist, rows, pop}
"""


@dataclass(frozen=True)
class ApplyResult:
    """``applied``: events new to the state; ``refused``: position in the batch -> why (nothing written)."""

    applied: int
    refused: dict[int, str]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NearlineStore:
    """Apply events to, and read, the near-line state under one key prefix."""

    def __init__(
        self,
        store: RedisStore,
        *,
        prefix: str,
        rule: CoOccurrenceRule = DEFAULT_RULE,
        max_history: int = 50,
        history_ttl_s: int = 30 * 86_400,
        dedupe_ttl_s: int = 86_400,
        row_items: int = 200,
        popular_items: int = 500,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.rule = rule
        self.max_history = max_history
        self.history_ttl_s = history_ttl_s
        self.dedupe_ttl_s = dedupe_ttl_s
        self.row_items = row_items
        self.popular_items = popular_items
        self._apply_name = f"{prefix}nearline-apply"
        self._view_name = f"{prefix}nearline-view"
        store.register_script(self._apply_name, _APPLY)
        store.register_script(self._view_name, _VIEW)

    def apply(self, events: Sequence[Event]) -> ApplyResult:
        """Apply ``events`` in order, each id once ever (within the dedupe TTL): how many were new,
        and the events refused (a key they would write holds another type), untouched, by position."""
        if not events:
            return ApplyResult(0, {})
        args: list[str | int | float] = [
            self.prefix,
            self.rule.window,
            repr(self.rule.backward_weight),
            self.max_history,
            self.dedupe_ttl_s,
            self.history_ttl_s,
        ]
        for e in events:
            if not e.event_id:
                raise ValueError("near-line events need an event_id")
            args += [
                e.event_id,
                e.user_id,
                e.item_id,
                repr(EVENT_WEIGHTS[e.type]),
                repr(PROFILE_WEIGHTS[e.type]),
                "1" if e.type == "purchase" else "0",
            ]
        applied, refused = self.store.run_script(self._apply_name, args=args)
        errors = {int(refused[i]) - 1: _text(refused[i + 1]) for i in range(0, len(refused), 2)}
        return ApplyResult(int(applied), errors)

    def view(self, user_id: str | None, *, popular: bool = True) -> NearlineView:
        """The user's history, the rows of its last items and the popular items, in one round trip."""
        reply = self.store.run_script(
            self._view_name,
            args=[
                self.prefix,
                user_id or "",
                self.max_history,
                self.rule.history_items,
                self.row_items,
                self.popular_items if popular else 0,
            ],
        )
        history_newest_first = [_text(i) for i in reply[0]]
        return NearlineView(
            history=tuple(reversed(history_newest_first)),
            rows=flatten_rows(reply[1]),
            popular=tuple((k, v) for row in flatten_rows([reply[2]]) for k, v in row.items()),
        )

    def view_of(self, history: Sequence[str], *, popular: bool = True) -> NearlineView:
        """What :meth:`view` reads, for a history given here (oldest first) instead of a user's:
        for evaluations that score held-out sessions against the shared state."""
        newest_first = list(reversed(history))[: self.max_history]
        reply = self.store.run_script(
            self._view_name,
            args=[
                self.prefix,
                "",
                self.max_history,
                self.rule.history_items,
                self.row_items,
                self.popular_items if popular else 0,
                *newest_first,
            ],
        )
        return NearlineView(
            history=tuple(history),
            rows=flatten_rows(reply[1]),
            popular=tuple((k, v) for row in flatten_rows([reply[2]]) for k, v in row.items()),
        )

    def profile_items(self, user_id: str) -> tuple[dict[str, float], frozenset[str]]:
        """The user's profile weight per item and purchased items, as the stream left them."""

        def run(r: Any) -> tuple[Any, Any]:
            pipe = r.pipeline(transaction=False)
            pipe.hgetall(f"{self.prefix}nl:prof:{user_id}")
            pipe.smembers(f"{self.prefix}nl:buy:{user_id}")
            weights, bought = pipe.execute()
            return weights, bought

        weights, bought = self.store.call(run)
        return {_text(k): float(v) for k, v in weights.items()}, frozenset(_text(i) for i in bought)

    def stats(self) -> dict[str, int]:
        raw = self.store.call(lambda r: r.hgetall(f"{self.prefix}nl:stats"))
        return {_text(k): int(v) for k, v in raw.items()}

    def dump(self) -> dict[str, Any]:
        """Every key of the state (not the dedupe ids) as plain values: for tests and benchmarks
        that compare two states. Scans, so not for the request path."""

        def run(r: Any) -> dict[str, Any]:
            out: dict[str, Any] = {"pop": {}, "co": {}, "hist": {}, "prof": {}, "buy": {}}
            out["pop"] = {_text(k): float(v) for k, v in r.zrange(f"{self.prefix}nl:pop", 0, -1, withscores=True)}
            for key in r.scan_iter(match=f"{self.prefix}nl:co:*", count=1000):
                item = _text(key)[len(f"{self.prefix}nl:co:") :]
                out["co"][item] = {_text(k): float(v) for k, v in r.zrange(key, 0, -1, withscores=True)}
            for key in r.scan_iter(match=f"{self.prefix}nl:hist:*", count=1000):
                user = _text(key)[len(f"{self.prefix}nl:hist:") :]
                out["hist"][user] = [_text(i) for i in r.lrange(key, 0, -1)]
                out["prof"][user] = {_text(k): float(v) for k, v in r.hgetall(f"{self.prefix}nl:prof:{user}").items()}
                out["buy"][user] = sorted(_text(i) for i in r.smembers(f"{self.prefix}nl:buy:{user}"))
            return out

        return self.store.call(run)
