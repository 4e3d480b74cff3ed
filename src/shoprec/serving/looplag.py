"""Event-loop lag: the overload signal that requests still unread in socket buffers give.

Admission (:mod:`shoprec.serving.admission`) sees a request only once the event loop has
read and parsed it. When the loop itself is saturated — HTTP parsing, validation and
serialisation cost more than the searches at the cheapest ladder level — requests wait in
socket buffers where no deadline or queue bound can see them. The loop's lag shows it: a
timer that should fire every ``interval_s`` fires late. Like CoDel, only a *standing* delay
counts: the smallest lag over the last ``window_s`` (and at least the last two probes,
however far apart: a saturated loop runs long iterations, and the probe comes back once per
iteration); a GC pause or one slow request is a spike, not a standing delay.

What to do about it is a drop probability, as in PIE (RFC 8033): the front door refuses
each model-backed request with probability :attr:`LoopLagMonitor.shed_probability`, which
integrates the standing lag's distance from ``threshold_ms`` over time — it climbs while
the loop stays behind (fast when far behind, so the backlog hidden in clients' connection
pools drains) and falls while it keeps up. Refusing *everything* while overloaded, as this
module did before, idled the loop between bursts of refusals: past capacity it answered
about two thirds of what it could.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from collections.abc import Awaitable, Callable


class LoopLagMonitor:
    def __init__(
        self,
        threshold_ms: float,
        *,
        interval_s: float = 0.005,
        window_s: float = 0.1,
        gain_per_s: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """``gain_per_s``: how fast the shed probability moves, per second and per threshold
        of lag above (or below) the threshold; 4 takes it from 0 to 1 in 25 ms when the loop
        is 10 thresholds behind, and back to 0 in 250 ms once it keeps up."""
        self.threshold_ms = threshold_ms
        self.interval_s = interval_s
        self.window_s = window_s
        self.gain_per_s = gain_per_s
        self.clock = clock
        self.rng = rng
        self._samples: collections.deque[tuple[float, float]] = collections.deque()  # (at, lag ms)
        self.shed_probability = 0.0
        self.shed_total = 0

    def record(self, lag_ms: float, now: float) -> None:
        """One probe's lag; moves the shed probability by the standing lag since the last one."""
        last = self._samples[-1][0] if self._samples else now
        self._samples.append((now, lag_ms))
        # the last two samples stay whatever their age: a loop so far behind that one probe
        # comes back later than the window is the most overloaded of all
        while len(self._samples) > 2 and self._samples[0][0] < now - self.window_s:
            self._samples.popleft()
        if self.threshold_ms <= 0 or len(self._samples) < 2:
            return
        standing = self.lag_ms if self._samples[-1][0] - self._samples[0][0] >= self.window_s / 2 else 0.0
        error = max(-1.0, (standing - self.threshold_ms) / self.threshold_ms)
        p = self.shed_probability + self.gain_per_s * error * max(0.0, now - last)
        self.shed_probability = min(1.0, max(0.0, p))

    @property
    def lag_ms(self) -> float:
        """The smallest lag over the window (0 with no samples)."""
        return min((lag for _, lag in self._samples), default=0.0)

    @property
    def overloaded(self) -> bool:
        """Some requests are being refused now."""
        return self.shed_probability > 0.0

    def should_shed(self) -> bool:
        """Refuse this request? True with probability :attr:`shed_probability`."""
        p = self.shed_probability
        return p > 0.0 and (p >= 1.0 or self.rng() < p)

    async def run(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Probe the loop until cancelled."""
        while True:
            start = self.clock()
            await sleep(self.interval_s)
            now = self.clock()
            self.record(max(0.0, (now - start - self.interval_s) * 1000.0), now)
