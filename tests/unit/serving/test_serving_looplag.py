"""The event-loop lag monitor: a standing delay raises the shed probability, a spike does
not; the probability falls again, not at once, when the loop keeps up."""

from __future__ import annotations

import asyncio

from shoprec.serving.looplag import LoopLagMonitor


def probes(m: LoopLagMonitor, t: float, lags: list[float], every_s: float = 0.01) -> float:
    for lag in lags:
        t += every_s
        m.record(lag, t)
    return t


def test_a_standing_lag_over_the_window_raises_the_shed_probability_and_a_spike_does_not() -> None:
    m = LoopLagMonitor(20.0, window_s=0.1, gain_per_s=4.0)
    t = probes(m, 0.0, [1, 2, 90, 1, 2, 1, 3, 1, 2, 1, 2])  # one 90 ms spike (a GC pause, a slow request)
    assert m.shed_probability == 0.0 and not m.overloaded and m.lag_ms <= 3
    t = probes(m, t, [35.0] * 11)  # every probe late by 35 ms for 0.11 s
    assert m.overloaded and m.lag_ms == 35.0
    first = m.shed_probability
    assert 0.0 < first < 0.1  # 0.75 thresholds behind, for the probes since the window filled
    t = probes(m, t, [35.0] * 20)
    assert abs(m.shed_probability - first - 20 * 4.0 * 0.75 * 0.01) < 1e-9  # integrates while it stands
    high = m.shed_probability
    t = probes(m, t, [5.0])  # the loop caught up once: the standing lag is small again
    assert 0.0 < m.shed_probability < high  # falling, not gone
    probes(m, t, [1.0] * 20)
    assert m.shed_probability == 0.0 and not m.overloaded


def test_too_few_samples_or_a_zero_threshold_never_shed() -> None:
    m = LoopLagMonitor(20.0, window_s=0.1)
    m.record(500.0, 0.0)
    assert not m.overloaded and not m.should_shed()  # one sample spans no time
    off = LoopLagMonitor(0.0, window_s=0.1, rng=lambda: 0.0)
    probes(off, 0.0, [500.0] * 20)
    assert not off.overloaded and not off.should_shed()


def test_each_request_is_refused_with_the_shed_probability() -> None:
    draws = iter([0.1, 0.3, 0.29, 0.9, 0.0])
    m = LoopLagMonitor(20.0, rng=lambda: next(draws))
    m.shed_probability = 0.3
    assert [m.should_shed() for _ in range(5)] == [True, False, True, False, True]
    m.shed_probability = 1.0
    assert m.should_shed()  # certain: no draw (the iterator is spent)
    m.shed_probability = 0.0
    assert not m.should_shed()


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


def test_a_loop_so_saturated_that_probes_come_back_a_window_apart_sheds_everything() -> None:
    m = LoopLagMonitor(20.0, window_s=0.1, rng=lambda: 0.99)
    t = probes(m, 0.0, [145.0] * 3, every_s=0.15)  # each loop iteration takes 150 ms: one probe each
    assert m.shed_probability == 1.0 and m.lag_ms == 145.0 and m.should_shed()
    probes(m, t, [2.0], every_s=0.15)  # caught up: 150 ms of keeping up takes 0.6 off
    assert 0.0 < m.shed_probability < 1.0


def test_shedding_outlasts_the_lag_so_a_hidden_backlog_drains() -> None:
    """Shedding is cheap: the loop catches up at once, but the backlog that built up before
    (in clients' connection pools) is still there; refusals taper off over gain-set time."""
    m = LoopLagMonitor(20.0, window_s=0.1, gain_per_s=4.0)
    t = probes(m, 0.0, [220.0] * 12)  # ten thresholds behind: p reaches 1 within the window
    assert m.shed_probability == 1.0
    t = probes(m, t, [0.0] * 10)  # 0.1 s of keeping up: 0.4 off
    assert abs(m.shed_probability - 0.6) < 1e-9
    probes(m, t, [0.0] * 15)
    assert m.shed_probability == 0.0
