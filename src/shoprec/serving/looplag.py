"""Event-loop lag: the overload signal that requests still unread in socket buffers give.

Admission (:mod:`shoprec.serving.admission`) sees a request only once the event loop has
read and parsed it. When the loop itself is saturated — HTTP parsing, validation and
serialisation cost more than the searches at the cheapest ladder level — requests wait in
socket buffers where no deadline or queue bound can see them. The loop's lag shows it: a
timer that should fire every ``interval_s`` fires late. Like CoDel, only a *standing* delay
counts: the loop is overloaded when even the smallest lag over the last ``window_s`` (and at
least the last two probes, however far apart: a saturated loop runs long iterations, and the
probe comes back once per iteration) is above ``threshold_ms`` (a GC pause or one slow
request is a spike, not a standing delay).
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Awaitable, Callable


class LoopLagMonitor:
    def __init__(
        self,
        threshold_ms: float,
        *,
        interval_s: float = 0.005,
        window_s: float = 0.1,
        hold_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold_ms = threshold_ms
        self.interval_s = interval_s
        self.window_s = window_s
        self.hold_s = hold_s
        self._hold_until = -math.inf
        self.clock = clock
        self._samples: collections.deque[tuple[float, float]] = collections.deque()  # (at, lag ms)
        self.shed_total = 0

    def record(self, lag_ms: float, now: float) -> None:
        self._samples.append((now, lag_ms))
        # the last two samples stay whatever their age: a loop so far behind that one probe
        # comes back later than the window is the most overloaded of all
        while len(self._samples) > 2 and self._samples[0][0] < now - self.window_s:
            self._samples.popleft()

    @property
    def lag_ms(self) -> float:
        """The smallest lag over the window (0 with no samples)."""
        return min((lag for _, lag in self._samples), default=0.0)

    @property
    def overloaded(self) -> bool:
        """A standing lag now — and for ``hold_s`` after one was last seen: shedding must
        outpace the arrivals for a while, or the backlog that built up before it started
        (in clients' connection pools, where no server can see it) never drains."""
        if self.threshold_ms <= 0 or len(self._samples) < 2:
            return False
        span = self._samples[-1][0] - self._samples[0][0]
        if span >= self.window_s / 2 and self.lag_ms > self.threshold_ms:
            self._hold_until = self._samples[-1][0] + self.hold_s
            return True
        return self.clock() < self._hold_until

    async def run(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Probe the loop until cancelled."""
        while True:
            start = self.clock()
            await sleep(self.interval_s)
            now = self.clock()
            self.record(max(0.0, (now - start - self.interval_s) * 1000.0), now)
