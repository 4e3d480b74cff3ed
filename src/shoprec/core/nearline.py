"""Near-line recommendation state as the event stream builds it. Pure: stdlib + numpy, no I/O.

The state every replica reads (kept in Redis by :mod:`shoprec.adapters.nearline`, applied by
``shoprec worker``) follows the batch build's formulas, so that streaming the training events
through it gives the batch-built model:

- popularity: each event adds its type's weight (:data:`EVENT_WEIGHTS`) to its item;
- a user's history: every event's item, newest first, the last ``history_items`` kept;
- a user's profile: per item, the sum of :data:`PROFILE_WEIGHTS` of their events on it, and the
  items they purchased (a profile is linear in these: any replica folds them over its catalog);
- co-occurrence: an item ``b`` following ``a`` at distance ``d <= window`` in a user's history
  adds ``1/d`` to ``a -> b`` and ``backward_weight/d`` to ``b -> a``
  (:func:`shoprec.core.sequences.cooccurrence_pairs`, one event at a time).

A history is scored as :class:`shoprec.models.recommender.CoOccurrenceModel` scores it: the
rows of its last ``history_items`` items, the most recent weighted most (``recency_decay`` per
step back); ties, and everything the rows leave out, go by popularity.

The wire format of a stream entry (:func:`encode_entry` / :func:`decode_entry`) lives here too:
one field ``e`` holding the event's JSON, so what a producer writes and what a worker reads
have one definition.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shoprec.errors import DataError
from shoprec.types import EVENT_TYPES, Event

EVENT_WEIGHTS: Mapping[str, float] = {"view": 0.1, "click": 1.0, "cart": 2.0, "purchase": 4.0}
# what an event adds to its user's profile for personalised search (models/users.py's weights)
PROFILE_WEIGHTS: Mapping[str, float] = {"view": 0.5, "click": 1.0, "cart": 2.0, "purchase": 3.0}
ENTRY_FIELD = "e"


@dataclass(frozen=True, slots=True)
class CoOccurrenceRule:
    """How events turn into co-occurrence weights and how a history is scored."""

    window: int = 3
    backward_weight: float = 0.5
    history_items: int = 3
    recency_decay: float = 0.5

    def __post_init__(self) -> None:
        if self.window < 1 or self.history_items < 1:
            raise ValueError("window and history_items must be at least 1")
        if not (self.backward_weight >= 0 and 0 < self.recency_decay <= 1):
            raise ValueError("need backward_weight >= 0 and 0 < recency_decay <= 1")


DEFAULT_RULE = CoOccurrenceRule()


@dataclass(frozen=True, slots=True)
class NearlineView:
    """What one recommendation reads of the near-line state.

    ``history``: the user's items, oldest first; ``rows``: for each of the last
    ``history_items`` items (newest first) its strongest co-occurring items and weights;
    ``popular``: the most popular items with their weights, best first."""

    history: tuple[str, ...]
    rows: tuple[Mapping[str, float], ...]
    popular: tuple[tuple[str, float], ...]


def transition_scores(view: NearlineView, rule: CoOccurrenceRule) -> dict[str, float]:
    """The co-occurrence score of every item the history's rows reach (positive only)."""
    scores: dict[str, float] = {}
    for step, row in enumerate(view.rows[: rule.history_items]):
        weight = rule.recency_decay**step
        for item, w in row.items():
            scores[item] = scores.get(item, 0.0) + weight * w
    return {item: s for item, s in scores.items() if s > 0}


def rank(view: NearlineView, rule: CoOccurrenceRule, k: int, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The ``k`` best next items: by transition score, ties and the rest by popularity."""
    popularity = dict(view.popular)
    scored = transition_scores(view, rule)
    order = sorted(scored, key=lambda i: (-scored[i], -popularity.get(i, 0.0), i))
    out = [i for i in order if i not in exclude][:k]
    if len(out) < k:
        taken = set(out) | exclude
        out += [i for i, _ in view.popular if i not in taken][: k - len(out)]
    return out


def encode_entry(event: Event) -> dict[str, str]:
    """The stream entry's fields for one event (it must carry an ``event_id``)."""
    if not event.event_id:
        raise DataError("an event on the stream needs an event_id")
    record: dict[str, object] = {
        "id": event.event_id,
        "user_id": event.user_id,
        "item_id": event.item_id,
        "type": event.type,
        "timestamp": event.timestamp,
    }
    if event.query is not None:
        record["query"] = event.query
    return {ENTRY_FIELD: json.dumps(record, ensure_ascii=False, separators=(",", ":"))}


def decode_entry(fields: Mapping[str, str]) -> Event:
    """The event a stream entry holds; :class:`DataError` saying what is wrong otherwise."""
    raw = fields.get(ENTRY_FIELD)
    if raw is None:
        raise DataError(f"stream entry has no {ENTRY_FIELD!r} field")
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise DataError(f"stream entry is not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise DataError("stream entry is not a JSON object")
    for name in ("id", "user_id", "item_id"):
        if not isinstance(record.get(name), str) or not record[name]:
            raise DataError(f"stream entry's {name!r} must be a non-empty string")
    if record.get("type") not in EVENT_TYPES:
        raise DataError(f"stream entry's type {record.get('type')!r} is not one of {list(EVENT_TYPES)}")
    timestamp = record.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float) or not math.isfinite(timestamp):
        raise DataError(f"stream entry's timestamp {timestamp!r} is not a finite number")
    query = record.get("query")
    if query is not None and not isinstance(query, str):
        raise DataError("stream entry's query must be a string")
    return Event(
        user_id=record["user_id"],
        item_id=record["item_id"],
        type=record["type"],
        timestamp=float(timestamp),
        query=query,
        event_id=record["id"],
    )


def flatten_rows(rows: Sequence[Sequence[bytes | str | float]]) -> tuple[dict[str, float], ...]:
    """``ZREVRANGE ... WITHSCORES`` replies as flat ``[member, score, ...]`` lists -> dicts."""
    out = []
    for row in rows:
        pairs = list(row)
        out.append({_text(pairs[i]): float(pairs[i + 1]) for i in range(0, len(pairs) - 1, 2)})
    return tuple(out)


def _text(value: bytes | str | float) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
