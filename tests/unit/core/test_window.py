"""core/window.py: throughput and percentiles over the last seconds, on a clock the test moves."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.core.window import RequestWindow


def test_percentiles_are_within_one_bin_of_the_exact_ones() -> None:
    rng = np.random.default_rng(0)
    durations = rng.lognormal(mean=np.log(0.004), sigma=0.8, size=5000)
    window = RequestWindow(60, started_s=100.0)
    for i, d in enumerate(durations):
        window.add(100.0 + i * 0.01, float(d))  # 50 s of requests
    s = window.summary(150.0)
    assert s.requests == 5000 and s.span_s == pytest.approx(50.0)
    assert s.requests_per_s == pytest.approx(100.0)
    bin_ratio = 10 ** (1 / 40)  # the default 40 bins per decade
    for got, q in ((s.p50_ms, 50), (s.p99_ms, 99)):
        exact = float(np.percentile(durations, q)) * 1000
        assert got is not None and exact / bin_ratio <= got <= exact * bin_ratio**2


def test_old_seconds_leave_the_window_and_reused_rows_start_empty() -> None:
    window = RequestWindow(10, started_s=0.0)
    for t in range(5):
        window.add(t + 0.5, 0.001)
    window.add(4.9, 1.0)  # one slow request
    s = window.summary(9.9)
    assert s.requests == 6 and s.span_s == 9.9 and s.p99_ms is not None and s.p99_ms >= 1000
    window.add(7.5, 0.002)
    window.add(12.2, 0.002)  # second 12 reuses the row of second 2, which starts empty again
    s = window.summary(14.5)  # the window is seconds 5-14: the first six requests are out
    assert s.requests == 2 and s.span_s == 10.0 and s.requests_per_s == pytest.approx(0.2)
    assert s.p99_ms is not None and s.p99_ms < 3


def test_an_empty_window_has_no_percentiles() -> None:
    window = RequestWindow(5, started_s=0.0)
    window.add(1.0, 0.01)
    s = window.summary(100.0)
    assert s == type(s)(5, 5.0, 0, 0.0, None, None)
    with pytest.raises(ValueError):
        RequestWindow(0, started_s=0.0)
