"""Token bucket arithmetic, pure: the caller passes ``now`` (seconds, any monotonic origin).

A bucket holds at most ``burst`` tokens and refills at ``rate_per_s``; a request takes
``cost`` tokens or is refused with the time until it could succeed. The Redis-shared
limiter runs the same arithmetic in a Lua script (see :mod:`shoprec.serving.ratelimit`),
so one process and many replicas refuse the same requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shoprec.errors import ConfigError

MAX_RETRY_AFTER_S = 3600.0


@dataclass(frozen=True, slots=True)
class BucketState:
    tokens: float
    updated_s: float


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: float
    retry_after_s: float  # 0 when allowed

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` is whole seconds; round up so a client that obeys it succeeds."""
        wait_s = min(self.retry_after_s, MAX_RETRY_AFTER_S)
        return str(max(1, math.ceil(wait_s)))


@dataclass(frozen=True, slots=True)
class Limit:
    """A rate in tokens per second and the bucket size (the largest burst allowed at once)."""

    rate_per_s: float
    burst: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_per_s) and self.rate_per_s > 0):
            raise ConfigError(f"rate_per_s must be a positive number, got {self.rate_per_s!r}")
        if not (math.isfinite(self.burst) and self.burst >= 1):
            raise ConfigError(f"burst must be a number >= 1, got {self.burst!r}")


def refill(state: BucketState, now: float, limit: Limit) -> BucketState:
    """The bucket at ``now``; a clock that steps backwards adds nothing (and never removes)."""
    elapsed = max(0.0, now - state.updated_s)
    tokens = min(limit.burst, state.tokens + elapsed * limit.rate_per_s)
    return BucketState(tokens, max(now, state.updated_s))


def take(state: BucketState | None, now: float, limit: Limit, cost: float = 1.0) -> tuple[BucketState, Decision]:
    """Try to take ``cost`` tokens at ``now``. A missing state is a full bucket. A refused
    request takes nothing, so a client that keeps retrying is not starved for ever."""
    if cost <= 0:
        raise ValueError(f"cost must be positive, got {cost}")
    current = refill(state or BucketState(limit.burst, now), now, limit)
    if current.tokens >= cost:
        left = current.tokens - cost
        return BucketState(left, current.updated_s), Decision(True, left, 0.0)
    if cost > limit.burst:
        return current, Decision(False, current.tokens, math.inf)
    wait_s = (cost - current.tokens) / limit.rate_per_s
    return current, Decision(False, current.tokens, wait_s)
