"""The event-loop lag monitor: a standing delay is overload, a spike is not."""

from __future__ import annotations

import asyncio

from shoprec.serving.looplag import LoopLagMonitor


def test_a_standing_lag_over_the_window_is_overload_and_a_spike_is_not() -> None:
    m = LoopLagMonitor(20.0, window_s=0.1)
    t = 0.0
    for lag in [1, 2, 90, 1, 2, 1, 3, 1, 2, 1, 2]:  # one 90 ms spike (a GC pause, a slow request)
        t += 0.01
        m.record(lag, t)
    assert not m.overloaded and m.lag_ms <= 3
    for _ in range(11):  # every probe late by 30-40 ms for 0.11 s
        t += 0.01
        m.record(35.0, t)
    assert m.overloaded and m.lag_ms == 35.0
    t += 0.01
    m.record(5.0, t)  # the loop caught up once: the smallest lag in the window is small again
    assert not m.overloaded


def test_too_few_samples_or_a_zero_threshold_never_shed() -> None:
    m = LoopLagMonitor(20.0, window_s=0.1)
    m.record(500.0, 0.0)
    assert not m.overloaded  # one sample spans no time
    off = LoopLagMonitor(0.0, window_s=0.1)
    for i in range(20):
        off.record(500.0, i * 0.01)
    assert not off.overloaded


def test_the_probe_measures_how_late_the_timer_fires() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    async def late_sleep(seconds: float) -> None:
        now[0] += seconds + 0.030  # the loop gets back 30 ms late every time
        await asyncio.sleep(0)

    m = LoopLagMonitor(20.0, interval_s=0.005, window_s=0.1, clock=clock)

    async def probe_for_a_while() -> None:
        task = asyncio.create_task(m.run(sleep=late_sleep))
        while now[0] < 0.2:
            await asyncio.sleep(0)
        task.cancel()

    asyncio.run(probe_for_a_while())
    assert abs(m.lag_ms - 30.0) < 1e-6 and m.overloaded


def test_a_loop_so_saturated_that_probes_come_back_a_window_apart_is_overloaded() -> None:
    m = LoopLagMonitor(20.0, window_s=0.1)
    t = 0.0
    for _ in range(3):  # each iteration of the loop now takes 150 ms: one probe per iteration
        t += 0.15
        m.record(145.0, t)
    assert m.overloaded and m.lag_ms == 145.0
    t += 0.15
    m.record(2.0, t)  # caught up
    assert not m.overloaded


def test_shedding_holds_after_the_lag_is_gone_so_a_hidden_backlog_drains() -> None:
    now = [0.0]
    m = LoopLagMonitor(20.0, window_s=0.1, hold_s=0.1, clock=lambda: now[0])
    for _ in range(11):
        now[0] += 0.01
        m.record(35.0, now[0])
    assert m.overloaded
    now[0] += 0.01
    m.record(1.0, now[0])  # shedding is cheap: the loop caught up at once
    assert m.overloaded  # but it keeps shedding for hold_s after the last standing lag
    now[0] += 0.095
    assert not m.overloaded
