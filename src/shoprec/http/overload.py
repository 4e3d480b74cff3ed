"""HTTP glue for rate limits, deadlines and load shedding (the policies live in ``serving``).

- :meth:`Overload.rate_limit` is a route dependency placed after authentication: it reads
  ``request.state.api_key`` (None when anonymous, then the client address is the key) and
  refuses with :class:`~shoprec.errors.RateLimitedError` (429 + ``Retry-After``);
- :meth:`Overload.deadline` turns the ``deadline_ms`` query parameter or the
  ``X-Deadline-Ms`` header (bounded by settings; the default from settings) into a deadline;
- :attr:`Overload.gate` admits, queues or sheds (503 + ``Retry-After``) and picks the
  degradation level (never below the best one with ``degrade_under_load`` off); the search
  reports it in ``degradation_level`` and ``X-Degradation-Level``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from shoprec.core.ladder import LadderThresholds
from shoprec.errors import RateLimitedError
from shoprec.serving.admission import AdmissionGate, Deadline
from shoprec.serving.ratelimit import ClientLimits, LocalRateLimiter, RateLimiter, SharedRateLimiter
from shoprec.settings import Settings

log = logging.getLogger(__name__)

DEADLINE_HEADER = "X-Deadline-Ms"
LEVEL_HEADER = "X-Degradation-Level"


def default_parallelism(workers: int) -> float:
    """The CPUs this process may run on, shared among ``workers`` processes (at least one)."""
    return max(1.0, len(os.sched_getaffinity(0)) / max(1, workers))


class Overload:
    def __init__(
        self,
        settings: Settings,
        *,
        limiter: RateLimiter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.clock = clock
        self.rate_limited_total = 0  # refused with 429
        self.limits = ClientLimits(
            anonymous_per_s=settings.rate_limit_anonymous_per_s,
            anonymous_burst=settings.rate_limit_anonymous_burst,
            key_default_per_s=settings.rate_limit_key_default_per_s,
            burst_factor=settings.rate_limit_burst_factor,
        )
        self.gate = AdmissionGate(
            max_in_flight=settings.max_in_flight,
            max_queued=settings.max_queued,
            quality_loss_budget=settings.quality_loss_budget,
            thresholds=LadderThresholds(
                step_down_pressure=settings.ladder_step_down_pressure,
                step_up_pressure=settings.ladder_step_up_pressure,
                step_up_hold_s=settings.ladder_step_up_hold_s,
            ),
            clock=clock,
            utilization_target=settings.ladder_utilization_target,
            parallelism=settings.ladder_parallelism or default_parallelism(settings.workers),
            cpu_clock=time.thread_time,  # read on the event loop's thread: its CPU per request
            degrade=settings.degrade_under_load,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> Overload:
        """In-process buckets, or buckets shared through Redis when ``redis_url`` is set."""
        local = LocalRateLimiter(clock=clock)
        limiter: RateLimiter = local
        if settings.redis_url is not None:
            from shoprec.adapters.redis import RedisStore  # the one module that imports redis-py

            limiter = SharedRateLimiter(RedisStore(settings.redis_url), fallback=local)
            log.info("rate limits shared through Redis at %s", settings.redis_url)
        return cls(settings, limiter=limiter, clock=clock)

    async def rate_limit(self, request: Request) -> None:
        """Route dependency: take a token for the caller, or refuse with 429."""
        api_key = getattr(request.state, "api_key", None)
        if api_key is None and self.limits.anonymous_per_s is None:
            return  # anonymous, and anonymous requests are unlimited: for_request's answer, sooner
        target = self.limits.for_request(
            key_id=getattr(api_key, "key_id", None),
            key_rate_per_s=getattr(api_key, "rate_limit_per_s", None),
            client=request.client.host if request.client else None,
        )
        if target is None:
            return
        bucket, limit = target
        if isinstance(self.limiter, SharedRateLimiter):  # a network round trip: off the event loop
            decision = await run_in_threadpool(self.limiter.check, bucket, limit)
        else:
            decision = self.limiter.check(bucket, limit)
        if not decision.allowed:
            self.rate_limited_total += 1
            raise RateLimitedError(
                f"rate limit of {limit.rate_per_s:g} requests/s (burst {limit.burst:g}) exceeded",
                retry_after_s=decision.retry_after_s,
            )

    def deadline(self, deadline_ms: int | None, header_deadline_ms: int | None) -> Deadline:
        """The request's deadline: the query parameter, else the header, else the default."""
        budget_ms = deadline_ms or header_deadline_ms or self.settings.deadline_ms
        return Deadline.after_ms(self.clock(), budget_ms)
