"""Admission: per-request deadlines, a bounded queue, load shedding and the ladder level.

A request enters with a deadline (the default from settings, or its own within bounds).
At most ``max_in_flight`` requests run at once and at most ``max_queued`` wait; a request
beyond that is refused at once (:class:`OverloadedError`, 503 + ``Retry-After``) rather
than left to time out. A request is started only when its deadline still leaves room for
the measured cost of the level that would serve it; a waiting request whose deadline
passes is dropped without running (:class:`DeadlineExceededError`).

The gate is made of parts with one job each, each testable alone:

- :class:`SlotQueue`: the slots and the FIFO queue of waiters;
- :class:`ArrivalMeter`: requests per second reaching the gate, and answers from a cache;
- :class:`OverheadMeter`: the event loop thread's CPU time per request outside the searches;
- :class:`LevelChooser`: which ladder level to serve, and how (:class:`LevelPlan`).

On admission the :class:`~shoprec.core.ladder.DegradationPolicy` picks the level from the
pressure (running + waiting over ``max_in_flight``). A second, predictive rule looks at the
arrival rate: with ``utilization_target`` set, the chooser serves the best admissible level
whose measured cost (plus the per-request overhead) times the requests arriving per second
stays within ``utilization_target`` of ``parallelism`` busy seconds per second — so a burst
steps the ladder down before queues and latencies grow, and a fall in traffic steps it back
up (to a better level only with 20 % headroom, so it does not flap at the boundary). The
cheaper of the two rules' levels is served. With ``degrade`` off the ladder never leaves its
best level; the queue and the deadlines still refuse what cannot be served. The gate lives on
one event loop and is not shared between threads; each worker process has its own.
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
from shoprec.serving.search import PIPELINES, Pipeline
from shoprec.types import Effort

log = logging.getLogger(__name__)

FULL_LEVEL = LadderLevel("full", 0.0, 0.0, 0.0, {"pipeline": "full"})
DEFAULT_THRESHOLDS = LadderThresholds()
# (now) -> (arrival rate per s, cached answers per s, overhead ms per request)
Load = Callable[[float], tuple[float, float, float]]


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


@dataclass(frozen=True, slots=True)
class LevelPlan:
    """How a level is served: the pipeline and effort to search with, and whether the search
    runs on the event loop itself (``inline``) under the limit ``inline_max_ms``."""

    level: LadderLevel
    inline_max_ms: float
    pipeline: Pipeline
    effort: Effort
    inline: bool

    @classmethod
    def of(cls, level: LadderLevel, inline_max_ms: float) -> LevelPlan:
        pipeline, effort = serve_params(level)
        return cls(level, inline_max_ms, pipeline, effort, runs_inline(level, inline_max_ms))


# --- the slots and the queue -------------------------------------------------------------


class SlotQueue:
    """At most ``max_in_flight`` holders at once and at most ``max_queued`` waiting in FIFO
    order; the slot of a holder that leaves goes straight to the oldest waiter."""

    def __init__(self, max_in_flight: int, max_queued: int) -> None:
        if max_in_flight <= 0 or max_queued < 0:
            raise ConfigError(f"need max_in_flight > 0 and max_queued >= 0, got {max_in_flight}, {max_queued}")
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self.running = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def pressure(self) -> float:
        return (self.running + self.queued) / self.max_in_flight

    @property
    def full(self) -> bool:
        """No free slot, or earlier requests waiting for one."""
        return self.running >= self.max_in_flight or bool(self._waiters)

    @property
    def queue_full(self) -> bool:
        return len(self._waiters) >= self.max_queued

    def take(self) -> None:
        """Take a free slot (the caller checked :attr:`full`)."""
        self.running += 1

    def enqueue(self) -> asyncio.Future[None]:
        """Join the queue (the caller checked :attr:`queue_full`); :meth:`wait` for the slot."""
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(slot)
        return slot

    async def wait(self, slot: asyncio.Future[None], timeout_s: float) -> bool:
        """True once the queued ``slot`` is held, False when ``timeout_s`` passed first (it
        leaves the queue). Cancelling the wait gives back a slot handed over meanwhile."""
        try:
            await asyncio.wait_for(asyncio.shield(slot), timeout=max(0.0, timeout_s))
        except (TimeoutError, asyncio.CancelledError) as exc:
            if slot.done() and not slot.cancelled():
                self.release()  # the slot was handed over just as we gave up: pass it on
            else:
                slot.cancel()
                with suppress(ValueError):
                    self._waiters.remove(slot)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return False
        return True

    def release(self) -> None:
        """Hand the slot to the oldest waiter, or free it."""
        while self._waiters:
            slot = self._waiters.popleft()
            if not slot.done():
                slot.set_result(None)  # ``running`` stays: the slot changes hands
                return
        self.running -= 1


# --- the meters --------------------------------------------------------------------------


class ArrivalMeter:
    """Requests per second that reached the gate, and answers given from a cache before it."""

    def __init__(self, window_s: float = 2.0) -> None:
        if not window_s > 0:
            raise ConfigError(f"need rate_window_s > 0, got {window_s}")
        self.window_s = window_s
        self._arrivals: collections.deque[float] = collections.deque()
        self._cached: collections.deque[float] = collections.deque()

    def arrived(self, now: float) -> None:
        self._arrivals.append(now)

    def cached(self, now: float) -> None:
        self._cached.append(now)
        self._in_window(self._cached, now)  # keeps the deque bounded when nothing is admitted

    def rate(self, now: float) -> float:
        """The higher of the rate over the last ``window_s`` and the rate of the arrivals in
        its last twentieth (0.1 s by default) measured over the time they span, so a burst is
        seen after its eighth arrival, before a queue can form, while a lull takes the whole
        window to count."""
        long_rate = self._in_window(self._arrivals, now) / self.window_s
        first = bisect.bisect_right(self._arrivals, now - self.window_s / 20)
        recent = len(self._arrivals) - first
        if recent < 8:  # too few arrivals for a short-window rate to mean anything
            return long_rate
        span = max(now - self._arrivals[first], self.window_s / 400)
        return max(long_rate, (recent - 1) / span)

    def cached_rate(self, now: float) -> float:
        return self._in_window(self._cached, now) / self.window_s

    def _in_window(self, times: collections.deque[float], now: float) -> int:
        """Drop the times older than ``window_s`` from ``times``; how many are left."""
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return len(times)


class OverheadMeter:
    """The per-request cost the ladder's measured level costs leave out (HTTP parsing,
    validation, routing and serialisation): every ``interval_s`` (with at least 20 requests
    meanwhile, cached answers included), the ``cpu_clock`` seconds — the event loop thread's
    CPU time — spent per request, less the searches run on that thread, smoothed (EWMA 0.5).
    Without a ``cpu_clock`` the overhead stays 0."""

    def __init__(self, cpu_clock: Callable[[], float] | None = None, interval_s: float = 1.0) -> None:
        self.cpu_clock = cpu_clock
        self.interval_s = interval_s
        self.overhead_ms = 0.0
        self._mark: tuple[float, float] | None = None  # (wall, cpu) at the last update
        self._inline_cpu_s = 0.0  # searches run on the event loop thread since the last update
        self._served = 0

    def served(self) -> None:
        """A request was served (admitted or answered from a cache)."""
        self._served += 1

    def inline_search(self, cpu_s: float) -> None:
        """A search ran on the event loop thread itself for ``cpu_s`` (its measured time: it
        held the thread all along): the level's own cost, not overhead."""
        self._inline_cpu_s += max(0.0, cpu_s)

    def update(self, now: float) -> float:
        """The overhead in ms per request, re-measured when due."""
        mark = self._mark
        if self.cpu_clock is None or (mark is not None and (now - mark[0] < self.interval_s or self._served < 20)):
            return self.overhead_ms  # not due: the CPU clock (a system call) is not read
        cpu = self.cpu_clock()
        if mark is not None:
            sample = min(max(0.0, (cpu - mark[1] - self._inline_cpu_s) * 1000.0 / self._served), 100.0)
            self.overhead_ms = sample if self.overhead_ms == 0.0 else 0.5 * self.overhead_ms + 0.5 * sample
        self._mark = (now, cpu)
        self._served = 0
        self._inline_cpu_s = 0.0
        return self.overhead_ms


# --- the level -----------------------------------------------------------------------------


class LevelChooser:
    """Which ladder level serves the next request: the cheaper of the pressure policy's level
    and the arrival-rate rule's, then a cheaper admissible one when only that still fits the
    request's deadline. Also how each level is served (:meth:`plan`)."""

    def __init__(
        self,
        levels: Sequence[LadderLevel] = (FULL_LEVEL,),
        *,
        quality_loss_budget: float = 0.0,
        thresholds: LadderThresholds = DEFAULT_THRESHOLDS,
        utilization_target: float = 0.0,
        parallelism: float = 1.0,
        degrade: bool = True,
    ) -> None:
        if not (0.0 <= utilization_target <= 1.0 and parallelism > 0):
            raise ConfigError(
                f"need utilization_target in [0, 1] and parallelism > 0, got {utilization_target}, {parallelism}"
            )
        self.quality_loss_budget = quality_loss_budget
        self.thresholds = thresholds
        self.utilization_target = utilization_target
        self.parallelism = parallelism
        self.degrade = degrade
        # True while requests are being refused before they reach the gate (the front door's
        # loop-lag shedder): the arrivals the gate sees then undercount the load
        self.shedding_upstream: Callable[[], bool] = lambda: False
        self._source: object = None
        self._set_levels(levels)

    def _set_levels(self, levels: Sequence[LadderLevel]) -> None:
        self.measured: tuple[LadderLevel, ...] = tuple(levels)  # every measured level, admissible or not
        served = levels or (FULL_LEVEL,)
        self.policy = DegradationPolicy(
            served if self.degrade else served[:1],
            quality_loss_budget=self.quality_loss_budget,
            thresholds=self.thresholds,
        )
        self.last_chosen: LadderLevel = self.policy.levels[0]  # the level of the last search admitted
        self._rate_index = 0
        self._rate_busy_s = -math.inf  # the last time the arrival rate needed the current level or a cheaper one
        self._plans: dict[str, LevelPlan] = {}
        self._inline_pipelines: dict[tuple[str, float], bool] = {}

    def use_ladder(self, source: object, levels: Sequence[LadderLevel] | Callable[[], Sequence[LadderLevel]]) -> None:
        """Serve the ladder measured for ``source`` (a model version); a no-op while it is the
        same, so the caller can ask on every request (``levels`` may be a function, called
        only on a change). No measured levels: full only."""
        if source == self._source:
            return
        self._source = source
        self._set_levels(levels() if callable(levels) else levels)
        names = ", ".join(f"{lv.name} ({lv.p50_ms:.1f} ms, ndcg {lv.ndcg:.3f})" for lv in self.policy.levels)
        log.info(
            "degradation ladder for %s within a %.0f%% quality loss: %s", source, self.quality_loss_budget * 100, names
        )

    @property
    def current(self) -> LadderLevel:
        return self.policy.current

    def plan(self, level: LadderLevel, inline_max_ms: float) -> LevelPlan:
        """:meth:`LevelPlan.of`, worked out once per level object and limit (asked on every request)."""
        plan = self._plans.get(level.name)
        if plan is None or plan.level is not level or plan.inline_max_ms != inline_max_ms:
            plan = self._plans[level.name] = LevelPlan.of(level, inline_max_ms)
        return plan

    def pipeline_runs_inline(self, pipeline: str, max_ms: float) -> bool:
        """Whether an explicitly requested ``pipeline`` is cheap enough to search on the event
        loop: the ladder measured a level that serves it (admissible or not) under ``max_ms``."""
        key = (pipeline, max_ms)
        inline = self._inline_pipelines.get(key)
        if inline is None:
            inline = any(lv.params.get("pipeline") == pipeline and runs_inline(lv, max_ms) for lv in self.measured)
            self._inline_pipelines[key] = inline
        return inline

    def choose(self, pressure: float, now: float, remaining_ms: float, load: Load) -> LadderLevel | None:
        """The level to serve, or None when no admissible level fits ``remaining_ms``.
        ``load(now)`` gives (arrival rate, cached answers per second, overhead ms per request)
        for the arrival-rate rule; it is asked only while that rule is on."""
        levels = self.policy.levels
        index = levels.index(self.policy.update(pressure, now))
        index = max(index, self._rate_level(now, load))
        for level in levels[index:]:
            if level.p50_ms < remaining_ms:
                self.last_chosen = level
                return level
        return None

    def step_down(self, pressure: float, now: float) -> None:
        """Tell the pressure policy about a pressure seen outside :meth:`choose` (a request
        queued or refused): it reacts to it at once."""
        self.policy.update(pressure, now)

    def _rate_level(self, now: float, load: Load) -> int:
        """Index of the best level the arrival rate allows (0 when the rule is off)."""
        levels = self.policy.levels
        if self.utilization_target <= 0 or len(levels) == 1:
            return 0
        if self.shedding_upstream():  # overloaded beyond what admission sees: the cheapest level
            self._rate_index, self._rate_busy_s = len(levels) - 1, now
            return self._rate_index
        rate, cached_rate, extra = load(now)
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


# --- the gate ------------------------------------------------------------------------------


class AdmissionGate:
    """Admits, queues or refuses a request and gives the level to serve it at: the parts
    above, wired together (see the module docstring)."""

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
        degrade: bool = True,
    ) -> None:
        self.slots = SlotQueue(max_in_flight, max_queued)
        self.arrivals = ArrivalMeter(rate_window_s)
        self.overhead = OverheadMeter(cpu_clock, overhead_interval_s)
        self.chooser = LevelChooser(
            levels,
            quality_loss_budget=quality_loss_budget,
            thresholds=thresholds,
            utilization_target=utilization_target,
            parallelism=parallelism,
            degrade=degrade,
        )
        self.clock = clock
        self.shed_total = 0  # refused: the queue was full
        self.expired_total = 0  # refused: the deadline could not be met

    def admit(self, deadline: Deadline) -> _Admission:
        """``async with gate.admit(deadline) as level``: holds a slot for the body of the
        ``async with`` and gives the level to serve."""
        return _Admission(self, deadline)

    def note_cached(self) -> None:
        """A request answered from a cache before admission: it costs the process the
        per-request overhead only, which the arrival-rate rule and the overhead count."""
        self.arrivals.cached(self.clock())
        self.overhead.served()

    def retry_after_s(self) -> float:
        """About when the queue will have drained, at the current level's measured cost."""
        per_request_s = max(self.chooser.current.p50_ms, 1.0) / 1000.0
        s = self.slots
        return max(1.0, math.ceil((s.queued + s.running) * per_request_s / s.max_in_flight))

    def _load(self, now: float) -> tuple[float, float, float]:
        return self.arrivals.rate(now), self.arrivals.cached_rate(now), self.overhead.update(now)

    def _level(self, deadline: Deadline, now: float) -> LadderLevel:
        remaining = deadline.remaining_ms(now)
        level = self.chooser.choose(self.slots.pressure, now, remaining, self._load)
        if level is None:
            self.expired_total += 1
            raise DeadlineExceededError(
                f"the deadline leaves {max(remaining, 0.0):.0f} ms, less than the cheapest admissible level needs",
                retry_after_s=self.retry_after_s(),
            )
        self.overhead.served()
        return level

    async def _enter(self, deadline: Deadline) -> LadderLevel:
        now = self.clock()
        self.arrivals.arrived(now)
        if deadline.remaining_ms(now) <= 0:
            self.expired_total += 1
            raise DeadlineExceededError("the request's deadline had passed before it started", retry_after_s=1.0)
        slots = self.slots
        if not slots.full:
            level = self._level(deadline, now)
            slots.take()
            return level
        if slots.queue_full:
            self.shed_total += 1
            self.chooser.step_down(slots.pressure, now)  # this is the pressure to react to
            raise OverloadedError(
                f"overloaded: {slots.running} running and {slots.queued} queued", retry_after_s=self.retry_after_s()
            )
        slot = slots.enqueue()
        self.chooser.step_down(slots.pressure, now)
        if not await slots.wait(slot, deadline.remaining_ms(now) / 1000.0):
            self.expired_total += 1
            raise DeadlineExceededError(
                "the request's deadline passed while it waited in the queue", retry_after_s=self.retry_after_s()
            )
        try:
            return self._level(deadline, self.clock())
        except BaseException:
            slots.release()
            raise


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
        self._gate.slots.release()
