from collections.abc import Sequence
from typing import Any

import pytest

from shoprec.core.tokenbucket import Limit
from shoprec.errors import SharedStateError
from shoprec.serving.ratelimit import ClientLimits, LocalRateLimiter, SharedRateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_local_buckets_are_per_key_and_refill_with_the_clock() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(clock=clock)
    limit = Limit(rate_per_s=1.0, burst=2.0)
    assert [limiter.check("a", limit).allowed for _ in range(3)] == [True, True, False]
    assert limiter.check("b", limit).allowed
    clock.now = 1.0
    assert limiter.check("a", limit).allowed
    assert not limiter.check("a", limit).allowed


def test_local_limiter_keeps_at_most_max_keys_buckets() -> None:
    limiter = LocalRateLimiter(clock=FakeClock(), max_keys=2)
    limit = Limit(1.0, 1.0)
    for key in ("a", "b", "c"):
        assert limiter.check(key, limit).allowed
    assert limiter.check("a", limit).allowed  # evicted, so it came back full
    assert not limiter.check("c", limit).allowed


class DownStore:
    def __init__(self) -> None:
        self.calls = 0

    def register_script(self, name: str, source: str) -> None:
        pass

    def run_script(self, name: str, keys: Sequence[str] = (), args: Sequence[Any] = ()) -> Any:
        self.calls += 1
        raise SharedStateError("Redis at redis://x is unreachable")


def test_shared_limiter_falls_back_to_local_buckets_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    limiter = SharedRateLimiter(DownStore(), fallback=LocalRateLimiter(clock=clock))
    limit = Limit(1.0, 2.0)
    assert [limiter.check("k", limit).allowed for _ in range(3)] == [True, True, False]
    assert limiter.degraded
    assert sum("using in-process buckets" in r.message for r in caplog.records) == 1


def test_client_limits_key_own_rate_then_key_default_then_anonymous_by_address() -> None:
    limits = ClientLimits(anonymous_per_s=2.0, anonymous_burst=None, key_default_per_s=10.0, burst_factor=3.0)
    assert limits.for_request(key_id="k1", key_rate_per_s=5.0, client="1.2.3.4") == ("key:k1", Limit(5.0, 15.0))
    assert limits.for_request(key_id="k2", key_rate_per_s=None, client="1.2.3.4") == ("key:k2", Limit(10.0, 30.0))
    assert limits.for_request(key_id=None, key_rate_per_s=None, client="1.2.3.4") == (
        "client:1.2.3.4",
        Limit(2.0, 6.0),
    )
    unlimited = ClientLimits()
    assert unlimited.for_request(key_id=None, key_rate_per_s=None, client="x") is None
    assert unlimited.for_request(key_id="k", key_rate_per_s=None, client="x") is None
    assert unlimited.for_request(key_id="k", key_rate_per_s=1.0, client="x") == ("key:k", Limit(1.0, 2.0))
