"""Profiles with a shared part (the event stream's per-item weights): the same profile as
folding the events one by one, read at most once per TTL, the local one while Redis is away."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import numpy as np
import pytest

from shoprec.core.nearline import PROFILE_WEIGHTS
from shoprec.errors import SharedStateError
from shoprec.models.users import UserProfiles
from shoprec.types import Event

ITEMS = [f"p{i}" for i in range(12)]


class Shared:
    """The near-line state's view of a user's streamed events (what the worker's script keeps)."""

    def __init__(self, events: list[Event]) -> None:
        self.weights: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.bought: dict[str, set[str]] = defaultdict(set)
        for e in events:
            self.weights[e.user_id][e.item_id] += PROFILE_WEIGHTS[e.type]
            if e.type == "purchase":
                self.bought[e.user_id].add(e.item_id)
        self.reads = 0
        self.down = False

    def profile_items(self, user_id: str) -> tuple[Mapping[str, float], frozenset[str]]:
        self.reads += 1
        if self.down:
            raise SharedStateError("Redis is away")
        return dict(self.weights.get(user_id, {})), frozenset(self.bought.get(user_id, set()))


def profiles(shared: Shared | None = None, clock: list[float] | None = None) -> UserProfiles:
    rng = np.random.default_rng(0)
    now = clock or [0.0]
    return UserProfiles(
        {item: n for n, item in enumerate(ITEMS)},
        [f"brand{n % 3}" for n in range(len(ITEMS))],
        np.asarray([f"dept{n % 2} > leaf{n % 4}" for n in range(len(ITEMS))], dtype=np.str_),
        np.asarray([5.0 + n for n in range(len(ITEMS))], dtype=np.float32),
        rng.normal(size=(len(ITEMS), 8)).astype(np.float32),
        shared=shared,
        clock=lambda: now[0],
    )


def events(n: int, seed: int) -> list[Event]:
    rng = np.random.default_rng(seed)
    kinds = ["view", "click", "cart", "purchase"]
    return [Event("u", ITEMS[int(rng.integers(len(ITEMS)))], kinds[int(rng.integers(4))], float(i)) for i in range(n)]


def test_local_plus_shared_equals_folding_every_event() -> None:
    local, streamed = events(20, 1), events(30, 2)
    reference = profiles()
    reference.add(local + streamed)
    merged = profiles(Shared(streamed))
    merged.add(local)
    want, got = reference.get("u"), merged.get("u")
    assert want is not None and got is not None
    assert got.weight == pytest.approx(want.weight)
    for field in ("brands", "leaves", "departments"):
        assert getattr(got, field) == pytest.approx(getattr(want, field))
    assert got.purchased == want.purchased and got.mean_log_price == pytest.approx(want.mean_log_price)
    assert got.vector is not None and want.vector is not None
    np.testing.assert_allclose(got.vector, want.vector, rtol=1e-5, atol=1e-6)
    only_streamed = profiles(Shared(streamed)).get("u")  # a user this replica never saw
    assert only_streamed is not None and only_streamed.weight == pytest.approx(
        sum(PROFILE_WEIGHTS[e.type] for e in streamed)
    )


def test_the_shared_part_is_read_once_per_ttl_and_redis_away_leaves_the_local_profile() -> None:
    shared, clock = Shared(events(10, 3)), [0.0]
    users = profiles(shared, clock)
    users.add(events(5, 4))
    first, again = users.get("u"), users.get("u")
    assert first is not None and again is not None and again.weight == first.weight and shared.reads == 1
    clock[0] = 1.5  # past the 1 s TTL
    shared.down = True
    local_only = users.get("u")
    assert shared.reads == 2 and local_only is not None
    assert local_only.weight == pytest.approx(sum(PROFILE_WEIGHTS[e.type] for e in events(5, 4)))
    assert users.get("nobody") is None
