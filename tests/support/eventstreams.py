"""Seeded event streams and the pieces that consume them, for the event-stream tests."""

from __future__ import annotations

import random
from typing import Any

from shoprec.adapters.eventstream import RedisEventStream, StreamKeys
from shoprec.adapters.nearline import NearlineStore
from shoprec.adapters.redis import RedisStore, StreamCommands
from shoprec.adapters.worker import StreamWorker, WorkerOptions
from shoprec.types import Event


def seeded_events(n: int, *, users: int = 20, items: int = 30, seed: int = 0, prefix: str = "ev") -> list[Event]:
    """``n`` events with ids ``<prefix>-<i>``: clicks mostly, a few views, carts and purchases."""
    rng = random.Random(seed)
    kinds = ["click"] * 6 + ["view", "cart", "purchase"]
    return [
        Event(
            user_id=f"u{rng.randrange(users)}",
            item_id=f"i{rng.randrange(items)}",
            type=rng.choice(kinds),  # type: ignore[arg-type]
            timestamp=1_700_000_000.0 + i,
            event_id=f"{prefix}-{i}",
        )
        for i in range(n)
    ]


def as_json(e: Event) -> dict[str, Any]:
    return {"id": e.event_id, "user_id": e.user_id, "item_id": e.item_id, "type": e.type, "timestamp": e.timestamp}


class Pipeline:
    """A stream, its near-line state and a worker, under one key prefix of one Redis."""

    def __init__(self, url: str, prefix: str, **options: Any) -> None:
        self.store = RedisStore(url, socket_timeout_s=5.0)
        self.keys = StreamKeys(prefix)
        self.streams = StreamCommands(self.store)
        self.state = NearlineStore(self.store, prefix=prefix)
        self.sink = RedisEventStream(
            self.store, self.keys, max_backlog=options.pop("max_backlog", 1_000_000), durability="unchecked"
        )
        self.options = WorkerOptions(**{"consumer": "w1", "block_ms": 1, "batch": 50, **options})

    def worker(self, **changes: Any) -> StreamWorker:
        opts = self.options
        merged = {f: getattr(opts, f) for f in opts.__dataclass_fields__} | changes
        worker = StreamWorker(self.streams, self.keys, self.state, WorkerOptions(**merged), clock=lambda: 0.0)
        worker.setup()
        return worker

    def drain(self, **changes: Any) -> StreamWorker:
        worker = self.worker(**changes)
        for _ in range(10_000):
            if worker.step(block=False).idle:
                break
        return worker


def clean_pass(url: str, events: list[Event], prefix: str = "clean:") -> dict[str, Any]:
    """The near-line state one worker builds from ``events`` in order, nothing failing."""
    p = Pipeline(url, prefix)
    for start in range(0, len(events), 100):
        p.sink.append(events[start : start + 100])
    p.drain()
    return p.state.dump()
