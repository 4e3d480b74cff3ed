import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shoprec.core.ladder import LadderLevel, LadderThresholds
from shoprec.errors import ConfigError, DeadlineExceededError, OverloadedError
from shoprec.serving.admission import (
    FULL_LEVEL,
    AdmissionGate,
    ArrivalMeter,
    Deadline,
    LevelChooser,
    OverheadMeter,
    SlotQueue,
    runs_inline,
)
from shoprec.types import Effort

FULL = LadderLevel("full", 20.0, 40.0, 0.80, {"pipeline": "full"})
HYBRID = LadderLevel("hybrid", 10.0, 20.0, 0.79, {"pipeline": "hybrid"})
BM25 = LadderLevel("bm25", 1.0, 2.0, 0.60, {"pipeline": "bm25"})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gate(clock: FakeClock, **kw: object) -> AdmissionGate:
    args: dict[str, Any] = {"max_in_flight": 2, "max_queued": 1, "clock": clock}
    args.update(kw)
    return AdmissionGate(**args)


def rate_gate(clock: FakeClock, **kw: object) -> AdmissionGate:
    """A gate for the arrival-rate rule: full/hybrid/bm25 all admissible, no queueing, half a
    busy second per second (full at 20 ms fits up to 25/s, hybrid at 10 ms up to 50/s)."""
    args: dict[str, Any] = {
        "max_in_flight": 100,
        "levels": [FULL, HYBRID, BM25],
        "quality_loss_budget": 1.0,
        "utilization_target": 0.5,
        "rate_window_s": 1.0,
    }
    args.update(kw)
    return gate(clock, **args)


def test_a_request_whose_deadline_passed_is_not_started() -> None:
    clock = FakeClock()
    g = gate(clock)
    started = []

    async def run() -> None:
        async with g.admit(Deadline(clock.now - 0.001)):
            started.append(1)

    with pytest.raises(DeadlineExceededError) as err:
        asyncio.run(run())
    assert started == [] and g.slots.running == 0 and g.expired_total == 1
    assert err.value.status_code == 503 and err.value.retry_after_s >= 1


def test_a_deadline_too_short_for_any_level_is_not_started_but_a_cheaper_level_is_used_when_it_fits() -> None:
    clock = FakeClock()
    g = gate(clock, levels=[FULL, HYBRID, BM25], quality_loss_budget=1.0)

    async def level_for(budget_ms: float) -> str:
        async with g.admit(Deadline.after_ms(clock.now, budget_ms)) as level:
            return str(level.name)

    assert asyncio.run(level_for(500)) == "full"
    assert asyncio.run(level_for(15)) == "hybrid"  # full needs 20 ms
    assert asyncio.run(level_for(5)) == "bm25"
    with pytest.raises(DeadlineExceededError):
        asyncio.run(level_for(0.5))
    assert g.slots.running == 0


def test_beyond_the_queue_bound_requests_are_shed_at_once_with_retry_after() -> None:
    clock = FakeClock()
    g = gate(clock, max_in_flight=2, max_queued=1)

    async def scenario() -> tuple[list[str], int]:
        release = asyncio.Event()
        outcomes: list[str] = []

        async def request(i: int) -> None:
            try:
                async with g.admit(Deadline.after_ms(clock.now, 60_000)):
                    outcomes.append(f"run{i}")
                    await release.wait()
            except OverloadedError as exc:
                assert exc.status_code == 503 and exc.retry_after_s >= 1
                outcomes.append(f"shed{i}")

        tasks = [asyncio.create_task(request(i)) for i in range(5)]
        for _ in range(10):
            await asyncio.sleep(0)
        running_then = g.slots.running
        queued_then = g.slots.queued
        release.set()
        await asyncio.gather(*tasks)
        assert (running_then, queued_then) == (2, 1)
        return outcomes, g.shed_total

    outcomes, shed = asyncio.run(scenario())
    assert sorted(o for o in outcomes if o.startswith("shed")) == ["shed3", "shed4"]
    assert sorted(o for o in outcomes if o.startswith("run")) == ["run0", "run1", "run2"]
    assert shed == 2 and g.slots.running == 0 and g.slots.queued == 0


def test_a_queued_request_whose_deadline_passes_while_waiting_never_runs() -> None:
    clock = FakeClock()
    g = gate(clock, max_in_flight=1, max_queued=4)

    async def scenario() -> list[str]:
        release = asyncio.Event()
        log: list[str] = []

        async def long() -> None:
            async with g.admit(Deadline.after_ms(clock.now, 60_000)):
                log.append("long")
                await release.wait()

        async def short() -> None:
            try:
                async with g.admit(Deadline.after_ms(clock.now, 1)):  # 1 ms on the loop's own timer
                    log.append("short ran")
            except DeadlineExceededError:
                log.append("short expired")

        first = asyncio.create_task(long())
        await asyncio.sleep(0)
        await short()
        release.set()
        await first
        return log

    assert asyncio.run(scenario()) == ["long", "short expired"]
    assert g.slots.running == 0 and g.slots.queued == 0


def test_the_queue_hands_slots_over_in_order() -> None:
    clock = FakeClock()
    g = gate(clock, max_in_flight=1, max_queued=10)

    async def scenario() -> list[int]:
        order: list[int] = []

        async def request(i: int) -> None:
            async with g.admit(Deadline.after_ms(clock.now, 60_000)):
                order.append(i)
                await asyncio.sleep(0)

        await asyncio.gather(*(request(i) for i in range(6)))
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4, 5]
    assert g.slots.running == 0


def test_pressure_steps_the_ladder_down_and_calm_brings_it_back() -> None:
    clock = FakeClock()
    th = LadderThresholds(step_down_pressure=1.5, step_up_pressure=0.5, step_up_hold_s=2.0)
    g = gate(clock, max_in_flight=2, max_queued=4, levels=[FULL, HYBRID, BM25], quality_loss_budget=0.05, thresholds=th)

    async def scenario() -> list[str]:
        release = asyncio.Event()
        seen: list[str] = []

        async def request() -> None:
            async with g.admit(Deadline.after_ms(clock.now, 60_000)) as level:
                seen.append(level.name)
                await release.wait()

        tasks = [asyncio.create_task(request()) for _ in range(5)]  # 2 run, 3 wait: pressure 2.5
        for _ in range(10):
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*tasks)
        return seen

    seen = asyncio.run(scenario())
    assert seen[:2] == ["full", "full"] and seen[2:] == ["hybrid"] * 3  # bm25 is over the budget

    async def one() -> str:
        async with g.admit(Deadline.after_ms(clock.now, 60_000)) as level:
            return str(level.name)

    assert asyncio.run(one()) == "hybrid"
    clock.now += 2.0
    assert asyncio.run(one()) == "full"


def _admit_at_rate(
    g: AdmissionGate,
    clock: FakeClock,
    rate_per_s: float,
    seconds: float,
    on_admit: Callable[[], None] | None = None,
) -> list[str]:
    """Requests arriving evenly at ``rate_per_s`` for ``seconds`` (each finishes at once,
    after ``on_admit`` ran while it held its slot)."""
    served: list[str] = []

    async def one() -> None:
        async with g.admit(Deadline.after_ms(clock.now, 1000)) as level:
            served.append(level.name)
            if on_admit is not None:
                on_admit()

    for _ in range(int(rate_per_s * seconds)):
        asyncio.run(one())
        clock.now += 1.0 / rate_per_s
    return served


def test_arrival_rate_steps_down_before_queues_form_and_back_up_with_headroom() -> None:
    clock = FakeClock()
    # budget: 0.5 busy seconds per second. full (20 ms) fits up to 25/s, hybrid (10 ms) up to 50/s.
    g = rate_gate(clock, parallelism=1.0)
    assert set(_admit_at_rate(g, clock, 10, 2)) == {"full"}
    burst = _admit_at_rate(g, clock, 100, 2)
    assert burst[-1] == "bm25" and "hybrid" in burst  # steps down as the measured rate climbs
    assert g.slots.running == 0 and g.shed_total == 0  # nothing queued or shed: the ladder absorbed it
    calmer = _admit_at_rate(g, clock, 35, 5)
    assert calmer[-1] == "hybrid"
    # back up only after step_up_hold_s (2 s) of a rate the better level fits
    assert calmer.index("hybrid") >= 2 * 35
    # 24/s would fit full (480 ms of 500) but not with 20 % headroom: stay on hybrid, no flapping.
    assert _admit_at_rate(g, clock, 24, 5)[-1] == "hybrid"
    assert _admit_at_rate(g, clock, 10, 5)[-1] == "full"


def test_a_lull_inside_a_burst_does_not_bring_the_expensive_level_back() -> None:
    """A stalled event loop reads few requests for a moment: the gate sees a lull in arrivals
    (the short-window rate falls back to the 2 s average) but stays down for the hold."""
    clock = FakeClock()
    g = rate_gate(clock, parallelism=1.0)
    assert _admit_at_rate(g, clock, 10, 5)[-1] == "full"
    assert _admit_at_rate(g, clock, 400, 0.05)[-1] == "bm25"  # a burst from idle
    clock.now += 0.3  # the loop stalls: nothing reaches the gate
    assert set(_admit_at_rate(g, clock, 5, 1)) == {"bm25"}  # a trickle, well within full's budget
    clock.now += 2.0
    assert _admit_at_rate(g, clock, 5, 0.5)[-1] == "full"  # calm for the hold: back to full


def test_arrival_rate_rule_off_by_zero_target_and_validated() -> None:
    clock = FakeClock()
    g = gate(clock, max_in_flight=1000, quality_loss_budget=1.0, levels=[FULL, HYBRID, BM25])
    assert set(_admit_at_rate(g, clock, 500, 1)) == {"full"}
    for bad in ({"utilization_target": 1.5}, {"parallelism": 0.0}, {"rate_window_s": 0.0}):
        with pytest.raises(ConfigError):
            gate(clock, **bad)


def test_a_burst_is_seen_within_a_twentieth_of_the_rate_window() -> None:
    clock = FakeClock()
    g = rate_gate(clock, rate_window_s=2.0)
    assert set(_admit_at_rate(g, clock, 10, 4)) == {"full"}
    # 100/s for 0.1 s (the short window): the 2 s average is still only ~15/s, which full fits
    assert _admit_at_rate(g, clock, 100, 0.1)[-1] == "bm25"
    assert 90 <= g.arrivals.rate(clock.now) <= 110


class CpuClock:
    """The event loop thread's CPU time: advanced by the test for each request's overhead."""

    def __init__(self, per_request_s: float) -> None:
        self.t = 0.0
        self.per_request_s = per_request_s

    def __call__(self) -> float:
        return self.t


def test_measured_per_request_overhead_counts_against_the_budget() -> None:
    # full costs 20 ms as measured offline; the process really spends 20 ms more per request
    # (HTTP, serialisation): at 15/s that is 600 ms per second, over a 500 ms budget
    def run(cpu: CpuClock | None) -> list[str]:
        clock = FakeClock()
        g = rate_gate(clock, cpu_clock=cpu)

        def overhead() -> None:  # the search itself runs on another thread
            if cpu is not None:
                cpu.t += cpu.per_request_s

        served = _admit_at_rate(g, clock, 15, 4, on_admit=overhead)
        if cpu is not None:
            assert g.overhead.overhead_ms == pytest.approx(20.0, rel=0.05)
        return served

    assert set(run(None)) == {"full"}  # 15 x 20 ms = 300 ms: fits without the overhead
    with_overhead = run(CpuClock(0.020))
    assert with_overhead[:20] == ["full"] * 20 and with_overhead[-1] == "hybrid"


def test_cached_answers_count_as_overhead_only() -> None:
    clock = FakeClock()
    cpu = CpuClock(0.005)
    g = rate_gate(clock, cpu_clock=cpu)

    def search_and_four_cached() -> None:  # 10 searches/s and 40 cached answers/s, 5 ms of overhead each
        cpu.t += cpu.per_request_s
        for _ in range(4):
            g.note_cached()
            cpu.t += cpu.per_request_s

    served = _admit_at_rate(g, clock, 10, 4, on_admit=search_and_four_cached)
    assert g.overhead.overhead_ms == pytest.approx(5.0, rel=0.05)  # not 25 ms: cached answers are counted too
    # 10 x (20 + 5) + 40 x 5 = 450 ms of the 500 ms budget: full still fits
    assert served[-1] == "full"


def test_a_burst_is_measured_at_its_rate_from_its_eighth_arrival() -> None:
    clock = FakeClock()
    g = rate_gate(clock, rate_window_s=2.0)
    assert set(_admit_at_rate(g, clock, 10, 4)) == {"full"}
    # 400/s from idle: 8 arrivals span 17.5 ms; their rate, not 8 / 0.1 s, is what counts
    burst = _admit_at_rate(g, clock, 400, 0.025)
    assert burst[:7] == ["full"] * 7 and burst[8:] == ["bm25"] * (len(burst) - 8)
    assert 380 <= g.arrivals.rate(clock.now - 1.0 / 400) <= 420


def test_searches_run_on_the_event_loop_are_not_counted_as_overhead() -> None:
    clock = FakeClock()
    cpu = CpuClock(0.005)
    g = rate_gate(clock, cpu_clock=cpu)

    def search_inline() -> None:  # 5 ms of HTTP overhead plus a 3 ms search on the loop thread
        cpu.t += cpu.per_request_s + 0.003
        g.overhead.inline_search(0.003)

    _admit_at_rate(g, clock, 10, 4, on_admit=search_inline)
    assert g.overhead.overhead_ms == pytest.approx(5.0, rel=0.05)


def test_only_measured_cheap_levels_run_inline() -> None:
    assert runs_inline(BM25, 1.0) == (0 < BM25.p50_ms <= 1.0)
    assert not runs_inline(FULL, FULL.p50_ms - 0.001)
    assert runs_inline(FULL, FULL.p50_ms)
    assert not runs_inline(FULL_LEVEL, 50.0)  # no measured cost: never on the event loop


def test_an_explicit_pipeline_runs_inline_when_the_ladder_measured_it_cheap() -> None:
    """Even a level the quality budget leaves out of the ladder measured what its pipeline costs."""
    g = gate(FakeClock(), levels=[FULL, HYBRID, BM25], quality_loss_budget=0.05)
    assert BM25 not in g.chooser.policy.levels and BM25 in g.chooser.measured
    assert g.chooser.pipeline_runs_inline("bm25", 1.0)
    assert not g.chooser.pipeline_runs_inline("bm25", 0.5) and not g.chooser.pipeline_runs_inline("hybrid", 1.0)
    assert not g.chooser.pipeline_runs_inline("dense", 50.0)  # no level serves it: never measured
    g.chooser.use_ladder("v2", [FULL])
    assert g.chooser.measured == (FULL,) and not g.chooser.pipeline_runs_inline("bm25", 1.0)
    assert not gate(FakeClock()).chooser.pipeline_runs_inline("full", 50.0)  # the unmeasured default ladder


def test_while_the_front_door_sheds_the_ladder_serves_its_cheapest_level() -> None:
    """Refused requests never reach the gate, so the arrivals it sees undercount the load:
    while requests are refused upstream it serves the cheapest level, and climbs back only
    after step_up_hold_s without refusals."""
    clock = FakeClock()
    g = rate_gate(clock, parallelism=1.0)
    shedding = [False]
    g.chooser.shedding_upstream = lambda: shedding[0]
    assert set(_admit_at_rate(g, clock, 5, 1)) == {"full"}
    shedding[0] = True
    assert set(_admit_at_rate(g, clock, 5, 0.5)) == {"bm25"}  # a trickle gets through: still cheapest
    shedding[0] = False
    assert set(_admit_at_rate(g, clock, 5, 1.5)) == {"bm25"}  # within the hold
    assert _admit_at_rate(g, clock, 5, 1)[-1] == "full"


def test_a_levels_plan_is_worked_out_once_and_again_for_another_level_or_limit() -> None:
    chooser = LevelChooser([FULL, BM25])

    def how(level: LadderLevel, limit_ms: float) -> tuple[str, Effort, bool]:
        plan = chooser.plan(level, limit_ms)
        return plan.pipeline, plan.effort, plan.inline

    assert how(BM25, 1.0) == ("bm25", Effort(), True)
    assert chooser.plan(BM25, 1.0) is chooser.plan(BM25, 1.0)  # the same plan, not a new one per request
    assert how(FULL, 1.0) == ("full", Effort(), False)
    assert how(BM25, 0.5) == ("bm25", Effort(), False)  # another inline limit
    lite = LadderLevel("bm25", 0.5, 1.0, 0.6, {"pipeline": "bm25", "lexical_candidates": 30})
    assert how(lite, 1.0) == ("bm25", Effort(lexical_candidates=30), True)  # same name, a new ladder's level
    with pytest.raises(ConfigError):
        chooser.plan(LadderLevel("odd", 1.0, 2.0, 0.5, {"pipeline": "nope"}), 1.0)


# --- the parts alone ---------------------------------------------------------------------


def test_slot_queue_hands_a_freed_slot_to_the_oldest_waiter_and_drops_a_timed_out_one() -> None:
    async def scenario() -> None:
        slots = SlotQueue(max_in_flight=1, max_queued=2)
        assert not slots.full
        slots.take()
        assert slots.full and not slots.queue_full and slots.pressure == 1.0
        first, second = slots.enqueue(), slots.enqueue()
        assert slots.queue_full and slots.pressure == 3.0
        waiting = asyncio.create_task(slots.wait(first, 60.0))
        assert not await slots.wait(second, 0.0)  # gave up: it leaves the queue
        assert slots.queued == 1
        slots.release()  # handed over, not freed
        assert await waiting and slots.running == 1 and slots.queued == 0
        slots.release()
        assert slots.running == 0 and not slots.full

    asyncio.run(scenario())
    with pytest.raises(ConfigError):
        SlotQueue(max_in_flight=0, max_queued=1)


def test_arrival_meter_sees_a_burst_from_its_eighth_arrival_and_forgets_old_ones() -> None:
    meter = ArrivalMeter(window_s=2.0)
    for i in range(7):
        meter.arrived(100.0 + i * 0.001)
    assert meter.rate(100.006) == pytest.approx(3.5)  # seven arrivals: the 2 s window's rate
    meter.arrived(100.007)
    assert meter.rate(100.007) == pytest.approx(1000.0)  # eight within 7 ms: their own rate
    assert meter.rate(103.0) == 0.0
    for _ in range(4):
        meter.cached(103.0)
    assert meter.cached_rate(103.5) == 2.0 and meter.cached_rate(105.5) == 0.0


def test_overhead_meter_counts_cpu_per_request_less_inline_searches() -> None:
    cpu = CpuClock(0.0)
    meter = OverheadMeter(cpu, interval_s=1.0)
    assert meter.update(0.0) == 0.0  # the first reading only marks the start
    for _ in range(40):
        meter.served()
        cpu.t += 0.004
    meter.inline_search(0.040)
    assert meter.update(0.5) == 0.0  # not due yet
    assert meter.update(1.0) == pytest.approx(3.0)  # (160 ms - 40 ms inline) / 40 requests
    assert OverheadMeter(None).update(5.0) == 0.0  # no CPU clock: no overhead


def test_with_degradation_off_the_chooser_keeps_the_best_level_whatever_the_load() -> None:
    busy = LevelChooser([FULL, HYBRID, BM25], quality_loss_budget=1.0, utilization_target=0.5, degrade=False)
    flood = lambda now: (10_000.0, 0.0, 5.0)  # noqa: E731
    assert busy.choose(pressure=100.0, now=1.0, remaining_ms=1000.0, load=flood) is FULL
    assert busy.choose(pressure=100.0, now=2.0, remaining_ms=15.0, load=flood) is None  # full does not fit
    assert busy.measured == (FULL, HYBRID, BM25) and busy.pipeline_runs_inline("bm25", 1.0)
    degrading = LevelChooser([FULL, HYBRID, BM25], quality_loss_budget=1.0, utilization_target=0.5)
    assert degrading.choose(pressure=100.0, now=1.0, remaining_ms=1000.0, load=flood) is BM25


def test_with_two_cores_full_quality_holds_while_searches_use_a_fraction_of_them() -> None:
    """The rule counts the cores the searches can use: at 40/s full (20 ms) keeps 0.8 core busy,
    well within 2 cores x 0.5, so it stays at full where one core's budget steps down."""
    clock = FakeClock()
    one, two = rate_gate(clock, parallelism=1.0), rate_gate(FakeClock(), parallelism=2.0)
    assert _admit_at_rate(one, clock, 40, 2)[-1] != "full"
    clock2 = two.clock
    assert isinstance(clock2, FakeClock)
    assert set(_admit_at_rate(two, clock2, 40, 2)) == {"full"}
    assert _admit_at_rate(two, clock2, 120, 2)[-1] != "full"  # 2.4 cores: more than it has
