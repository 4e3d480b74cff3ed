import math

import pytest

from shoprec.core.tokenbucket import BucketState, Decision, Limit, refill, take
from shoprec.errors import ConfigError


def test_a_new_bucket_is_full_and_allows_a_burst_then_refuses() -> None:
    limit = Limit(rate_per_s=2.0, burst=3.0)
    state = None
    allowed = []
    for _ in range(5):
        state, d = take(state, 100.0, limit)
        allowed.append(d.allowed)
    assert allowed == [True, True, True, False, False]


def test_refill_is_rate_times_elapsed_capped_at_burst() -> None:
    limit = Limit(rate_per_s=2.0, burst=3.0)
    assert refill(BucketState(0.0, 10.0), 10.25, limit).tokens == pytest.approx(0.5)
    assert refill(BucketState(0.0, 10.0), 11.0, limit).tokens == pytest.approx(2.0)
    assert refill(BucketState(0.0, 10.0), 99.0, limit).tokens == pytest.approx(3.0)


def test_retry_after_is_the_time_until_a_token_and_then_it_succeeds() -> None:
    limit = Limit(rate_per_s=4.0, burst=1.0)
    state, d = take(None, 0.0, limit)
    assert d.allowed and d.remaining == 0
    state, d = take(state, 0.1, limit)
    assert not d.allowed
    assert d.retry_after_s == pytest.approx(0.15)  # 0.4 tokens there, 0.6 missing at 4/s
    state, d = take(state, 0.1 + d.retry_after_s, limit)
    assert d.allowed


def test_a_refused_request_takes_nothing() -> None:
    limit = Limit(rate_per_s=1.0, burst=1.0)
    state, _ = take(None, 0.0, limit)
    for t in (0.2, 0.4, 0.6, 0.8):
        state, d = take(state, t, limit)
        assert not d.allowed
    state, d = take(state, 1.0, limit)
    assert d.allowed


def test_a_clock_stepping_back_adds_no_tokens() -> None:
    limit = Limit(rate_per_s=1.0, burst=5.0)
    state = BucketState(1.0, 50.0)
    assert refill(state, 40.0, limit) == BucketState(1.0, 50.0)


def test_sustained_rate_over_a_long_run_matches_the_limit() -> None:
    limit = Limit(rate_per_s=10.0, burst=5.0)
    state = None
    ok = 0
    for i in range(10_000):  # 100 requests/s for 100 s
        state, d = take(state, i * 0.01, limit)
        ok += d.allowed
    assert ok == pytest.approx(5 + 10 * 99.99, abs=2)


def test_cost_above_burst_can_never_succeed() -> None:
    _, d = take(None, 0.0, Limit(1.0, 2.0), cost=3.0)
    assert not d.allowed and math.isinf(d.retry_after_s)
    assert d.retry_after_header == "3600"


def test_retry_after_header_rounds_up_to_whole_seconds() -> None:
    assert Decision(False, 0.0, 0.01).retry_after_header == "1"
    assert Decision(False, 0.0, 1.2).retry_after_header == "2"


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (math.inf, 1), (1, 0.5), (1, math.nan)])
def test_bad_limits_fail_at_construction(rate: float, burst: float) -> None:
    with pytest.raises(ConfigError):
        Limit(rate, burst)
