"""Admission: per-request deadlines, a bounded queue, load shedding and the ladder level.

A request enters with a deadline (the default from settings, or its own within bounds).
At most ``max_in_flight`` requests run at once and at most ``max_queued`` wait; a request
beyond that is refused at once (:class:`OverloadedError`, 503 + ``Retry-After``) rather
than left to time out. A request is started only when its deadline still leaves room for
the measured cost of the level that would serve it; a waiting request whose deadline
passes is dropped without running (:class:`DeadlineExceededError`).

On admission the :class:`~shoprec.core.ladder.DegradationPolicy` picks the level from the
pressure (running + waiting over ``max_in_flight``). A second, predictive rule looks at the
arrival rate: with ``utilization_target`` set, the gate serves the best admissible level
whose measured cost (plus the per-request overhead: the event loop thread's CPU time per
request, with ``cpu_clock``), times the requests arriving per second (over ``rate_window_s``, or its
last twentieth when that is higher), stays within ``utilization_target`` of ``parallelism``
busy seconds per second — so a burst steps
the ladder down before queues and latencies grow, and a fall in traffic steps it back up
(to a better level only with 20 % headroom, so it does not flap at the boundary). The
cheaper of the two rules' levels is served. The gate lives on one event loop and is not
shared between threads; each worker process has its own.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import cast

from shoprec.core.ladder import DegradationPolicy, LadderLevel, LadderThresholds
from shoprec.errors import ConfigError, DeadlineExceededError, OverloadedError
from shoprec.serving.search import PIPELINES, Effort, Pipeline

log = logging.getLogger(__name__)

FULL_LEVEL = LadderLevel("full", 0.0, 0.0, 0.0, {"pipeline": "full"})
DEFAULT_THRESHOLDS = LadderThresholds()


def serve_params(level: LadderLevel) -> tuple[Pipeline, Effort]:
    """How to call :meth:`SearchService.search` for a level."""
    p = level.params
    pipeline = str(p.get("pipeline", "full"))
    if pipeline not in PIPELINES:
        raise ConfigError(f"ladder level {level.name!r} names an unknown pipeline {pipeline!r}")
    effort = Effort(
        lexical_candidates=_opt_int(p.get("lexical_candidates")),
        dense_candidates=_opt_int(p.get("dense_candidates")),
        ef_search=_opt_int(p.get("ef_search")),
    )
    return pipeline, effort


def runs_inline(level: LadderLevel, max_ms: float) -> bool:
    """Whether a level is cheap enough to search on the event loop itself: its cost was
    measured (a ladder without measurements, like :data:`FULL_LEVEL`, never is) and its p50
    is at most ``max_ms``."""
    return 0.0 < level.p50_ms <= max_ms


def _opt_int(value: object) -> int | None:
    return None if value is None else int(cast(int, value))


@dataclass(frozen=True, slots=True)
class Deadline:
    """An absolute deadline on the gate's clock (seconds)."""

    at_s: float

    @classmethod
    def after_ms(cls, now_s: float, budget_ms: float) -> Deadline:
        return cls(now_s + budget_ms / 1000.0)

    def remaining_ms(self, now_s: float) -> float:
        return (self.at_s - now_s) * 1000.0


class AdmissionGate:
    def __init__(
        self,
        *,
        max_in_flight: int,
        max_queued: int,
        levels: Sequence[LadderLevel] = (FULL_LEVEL,),
        quality_loss_budget: float = 0.0,
        thresholds: LadderThresholds = DEFAULT_THRESHOLDS,
        clock: Callable[[], float] = time.monotonic,
        utilization_target: float = 0.0,
        parallelism: float = 1.0,
        rate_window_s: float = 2.0,
        cpu_clock: Callable[[], float] | None = None,
        overhead_interval_s: float = 1.0,
    ) -> None:
        if max_in_flight <= 0 or max_queued < 0:
            raise ConfigError(f"need max_in_flight > 0 and max_queued >= 0, got {max_in_flight}, {max_queued}")
        if not (0.0 <= utilization_target <= 1.0 and parallelism > 0 and rate_window_s > 0):
            raise ConfigError(
                f"need utilization_target in [0, 1], parallelism > 0 and rate_window_s > 0, got "
                f"{utilization_target}, {parallelism}, {rate_window_s}"
            )
        self.utilization_target = utilization_target
        self.parallelism = parallelism
        self.rate_window_s = rate_window_s
        self._arrivals: collections.deque[float] = collections.deque()
        self._cached: collections.deque[float] = collections.deque()  # answered from a cache, not admitted
        # per-request cost outside the measured search (HTTP, validation, serialisation), from
        # the event loop thread's CPU time: see ``_update_overhead``
        self.cpu_clock = cpu_clock
        self.overhead_interval_s = overhead_interval_s
        self.overhead_ms = 0.0
        self._overhead_mark: tuple[float, float] | None = None  # (wall, cpu) at the last update
        self._inline_cpu_s = 0.0  # searches run on the event loop thread since the last update
        self._served = 0
        self._rate_index = 0
        self._rate_busy_s = -math.inf  # the last time the arrival rate needed the current level or a cheaper one
        # True while requests are being refused before they reach the gate (the front door's
        # loop-lag shedder): the arrivals the gate sees then undercount the load
        self.shedding_upstream: Callable[[], bool] = lambda: False
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self.quality_loss_budget = quality_loss_budget
        self.thresholds = thresholds
        self.policy = DegradationPolicy(levels, quality_loss_budget=quality_loss_budget, thresholds=thresholds)
        self.measured: tuple[LadderLevel, ...] = tuple(levels)  # every measured level, admissible or not
        # worked out once per level object (plan) and per pipeline (pipeline_runs_inline)
        self._plans: dict[str, tuple[LadderLevel, float, Pipeline, Effort, bool]] = {}
        self._inline_pipelines: dict[tuple[str, float], bool] = {}
        self._ladder_source: object = None
        self.clock = clock
        self.running = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.shed_total = 0
        self.expired_total = 0

    def use_ladder(self, source: object, levels: Sequence[LadderLevel] | Callable[[], Sequence[LadderLevel]]) -> None:
        """Serve the ladder measured for ``source`` (a model version); a no-op while it is the
        same, so the route can call it on every request (``levels`` may be a function, called
        only on a change). No measured levels: full only."""
        if source == self._ladder_source:
            return
        if callable(levels):
            levels = levels()
        self._ladder_source = source
        self.measured = tuple(levels)
        self._inline_pipelines = {}
        self.policy = DegradationPolicy(
            levels or (FULL_LEVEL,), quality_loss_budget=self.quality_loss_budget, thresholds=self.thresholds
        )
        self._rate_index = 0
        names = ", ".join(f"{lv.name} ({lv.p50_ms:.1f} ms, ndcg {lv.ndcg:.3f})" for lv in self.policy.levels)
        log.info(
            "degradation ladder for %s within a %.0f%% quality loss: %s", source, self.quality_loss_budget * 100, names
        )

    def pipeline_runs_inline(self, pipeline: str, max_ms: float) -> bool:
        """Whether an explicitly requested ``pipeline`` is cheap enough to search on the event
        loop: the ladder measured a level that serves it (admissible or not) under ``max_ms``."""
        key = (pipeline, max_ms)
        inline = self._inline_pipelines.get(key)
        if inline is None:
            inline = any(lv.params.get("pipeline") == pipeline and runs_inline(lv, max_ms) for lv in self.measured)
            self._inline_pipelines[key] = inline
        return inline

    def plan(self, level: LadderLevel, inline_max_ms: float) -> tuple[Pipeline, Effort, bool]:
        """``serve_params(level)`` and ``runs_inline(level, inline_max_ms)``, worked out once per
        level (the route asks on every request)."""
        entry = self._plans.get(level.name)
        if entry is None or entry[0] is not level or entry[1] != inline_max_ms:
            pipeline, effort = serve_params(level)
            entry = (level, inline_max_ms, pipeline, effort, runs_inline(level, inline_max_ms))
            self._plans[level.name] = entry
        return entry[2], entry[3], entry[4]

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def pressure(self) -> float:
        return (self.running + self.queued) / self.max_in_flight

    def retry_after_s(self) -> float:
        """About when the queue will have drained, at the current level's measured cost."""
        per_request_s = max(self.policy.current.p50_ms, 1.0) / 1000.0
        return max(1.0, math.ceil((self.queued + self.running) * per_request_s / self.max_in_flight))

    def arrival_rate(self, now: float) -> float:
        """Requests per second that reached the gate: the higher of the rate over the last
        ``rate_window_s`` and the rate of the arrivals in its last twentieth (0.1 s by default)
        measured over the time they span, so a burst is seen after its eighth arrival, before a
        queue can form, while a lull takes the whole window to count."""
        long_rate = self._in_window(self._arrivals, now) / self.rate_window_s
        first = bisect.bisect_right(self._arrivals, now - self.rate_window_s / 20)
        recent = len(self._arrivals) - first
        if recent < 8:  # too few arrivals for a short-window rate to mean anything
            return long_rate
        span = max(now - self._arrivals[first], self.rate_window_s / 400)
        return max(long_rate, (recent - 1) / span)

    def note_inline_cpu(self, cpu_s: float) -> None:
        """A search ran on the event loop thread itself (a level cheaper than a thread hop) for
        ``cpu_s`` (its measured time: it held the thread all along): that is the level's
        measured cost, not per-request overhead."""
        self._inline_cpu_s += max(0.0, cpu_s)

    def note_cached(self) -> None:
        """A request answered from a cache before admission: it costs the process the
        per-request overhead only, which the utilization rule and the overhead estimate count."""
        now = self.clock()
        self._cached.append(now)
        self._in_window(self._cached, now)  # keeps the deque bounded when nothing is admitted
        self._served += 1

    def _in_window(self, times: collections.deque[float], now: float) -> int:
        """Drop the times older than ``rate_window_s`` from ``times``; how many are left."""
        while times and times[0] <= now - self.rate_window_s:
            times.popleft()
        return len(times)

    def _update_overhead(self, now: float) -> None:
        """Every ``overhead_interval_s`` (with at least 20 requests meanwhile, cached answers
        included): the ``cpu_clock`` seconds spent per request — the event loop thread's CPU
        time, i.e. HTTP parsing, validation, routing and serialisation, while the searches
        themselves run in worker threads — is the per-request overhead the ladder's measured
        costs leave out; smoothed (EWMA 0.5)."""
        if self.cpu_clock is None:
            return
        mark = self._overhead_mark
        if mark is not None and (now - mark[0] < self.overhead_interval_s or self._served < 20):
            return  # not due: the CPU clock (a system call) is not read
        cpu = self.cpu_clock()
        if mark is None:
            self._overhead_mark = (now, cpu)
            self._served = 0
            self._inline_cpu_s = 0.0
            return
        cpu0 = mark[1]
        sample = min(max(0.0, (cpu - cpu0 - self._inline_cpu_s) * 1000.0 / self._served), 100.0)
        self.overhead_ms = sample if self.overhead_ms == 0.0 else 0.5 * self.overhead_ms + 0.5 * sample
        self._overhead_mark = (now, cpu)
        self._served = 0
        self._inline_cpu_s = 0.0

    def _rate_level(self, now: float) -> int:
        """Index of the best level the arrival rate allows (0 when the rule is off)."""
        if self.utilization_target <= 0:
            return 0
        levels = self.policy.levels
        if self.shedding_upstream():  # overloaded beyond what admission sees: the cheapest level
            self._rate_index, self._rate_busy_s = len(levels) - 1, now
            return self._rate_index
        rate = self.arrival_rate(now)
        self._update_overhead(now)
        extra = self.overhead_ms
        cached_rate = self._in_window(self._cached, now) / self.rate_window_s
        # busy ms per second left for admitted requests once cached answers had their share
        budget_ms = max(0.0, 1000.0 * self.parallelism * self.utilization_target - cached_rate * extra)
        fits = next((i for i, lv in enumerate(levels) if rate * (lv.p50_ms + extra) <= budget_ms), len(levels) - 1)
        if fits < self._rate_index:  # a better level needs headroom before we climb to it
            fits = next(
                (i for i in range(fits, self._rate_index) if rate * (levels[i].p50_ms + extra) <= 0.8 * budget_ms),
                self._rate_index,
            )
        if fits >= self._rate_index:
            self._rate_busy_s = now
        elif now - self._rate_busy_s < self.thresholds.step_up_hold_s:
            # ... and calm for step_up_hold_s: an event loop stalled by a burst reads few
            # requests, and that lull in arrivals must not bring the expensive level back
            fits = self._rate_index
        self._rate_index = fits
        return fits

    def _level_for(self, deadline: Deadline, now: float) -> LadderLevel:
        """The cheaper of the pressure policy's level and the arrival-rate level, or a cheaper
        admissible one when only that still fits the deadline."""
        levels = self.policy.levels
        chosen = self.policy.update(self.pressure, now)
        by_rate = self._rate_level(now)
        if by_rate > levels.index(chosen):
            chosen = levels[by_rate]
        remaining = deadline.remaining_ms(now)
        for level in levels[levels.index(chosen) :]:
            if level.p50_ms < remaining:
                self._served += 1
                return level
        self.expired_total += 1
        raise DeadlineExceededError(
            f"the deadline leaves {max(remaining, 0.0):.0f} ms, less than the cheapest admissible level needs",
            retry_after_s=self.retry_after_s(),
        )

    def admit(self, deadline: Deadline) -> _Admission:
        """``async with gate.admit(deadline) as level``: holds a slot for the body of the
        ``async with`` and gives the level to serve."""
        return _Admission(self, deadline)

    async def _enter(self, deadline: Deadline) -> LadderLevel:
        now = self.clock()
        self._arrivals.append(now)
        if deadline.remaining_ms(now) <= 0:
            self.expired_total += 1
            raise DeadlineExceededError("the request's deadline had passed before it started", retry_after_s=1.0)
        if self.running < self.max_in_flight and not self._waiters:
            level = self._level_for(deadline, now)
            self.running += 1
            return level
        await self._wait_for_slot(deadline, now)
        try:
            return self._level_for(deadline, self.clock())
        except BaseException:
            self._release()
            raise

    async def _wait_for_slot(self, deadline: Deadline, now: float) -> None:
        if len(self._waiters) >= self.max_queued:
            self.shed_total += 1
            self.policy.update(self.pressure, now)  # step down now: this is the pressure to react to
            raise OverloadedError(
                f"overloaded: {self.running} running and {self.queued} queued", retry_after_s=self.retry_after_s()
            )
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(slot)
        self.policy.update(self.pressure, now)
        try:
            await asyncio.wait_for(asyncio.shield(slot), timeout=max(0.0, deadline.remaining_ms(now) / 1000.0))
        except (TimeoutError, asyncio.CancelledError) as exc:
            if slot.done() and not slot.cancelled():
                self._release()  # the slot was handed over just as we gave up: pass it on
            else:
                slot.cancel()
                self._drop(slot)
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.expired_total += 1
            raise DeadlineExceededError(
                "the request's deadline passed while it waited in the queue", retry_after_s=self.retry_after_s()
            ) from None

    def _drop(self, slot: asyncio.Future[None]) -> None:
        with suppress(ValueError):
            self._waiters.remove(slot)

    def _release(self) -> None:
        """Hand the slot to the oldest waiter, or free it."""
        while self._waiters:
            slot = self._waiters.popleft()
            if not slot.done():
                slot.set_result(None)  # ``running`` stays: the slot changes hands
                return
        self.running -= 1


class _Admission:
    """The ``async with`` of :meth:`AdmissionGate.admit` (a plain class: a generator-based
    context manager costs several times more, on every request)."""

    __slots__ = ("_deadline", "_gate")

    def __init__(self, gate: AdmissionGate, deadline: Deadline) -> None:
        self._gate = gate
        self._deadline = deadline

    async def __aenter__(self) -> LadderLevel:
        return await self._gate._enter(self._deadline)

    async def __aexit__(self, *exc_info: object) -> None:
        self._gate._release()
