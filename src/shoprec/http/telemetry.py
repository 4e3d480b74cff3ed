"""The metrics' view of the serving objects: :class:`MetricsFeed` reads what they count as
plain numbers (the admission gate, the front door, the rate limits, the caches, the model
runtime, the fast path) into one :class:`~shoprec.types.MetricsSnapshot` and hands it to the
:class:`~shoprec.types.Metrics`: before each scrape, and every ``interval_s`` in each worker
when several share the metrics (:meth:`MetricsFeed.run`)."""

from __future__ import annotations

import asyncio
import logging

from shoprec.http.fastpath import FastPathStats
from shoprec.http.state import AppServices
from shoprec.serving.looplag import LoopLagMonitor
from shoprec.types import CacheCounts, Metrics, MetricsSnapshot

log = logging.getLogger(__name__)


class MetricsFeed:
    def __init__(
        self, metrics: Metrics, services: AppServices, loop_lag: LoopLagMonitor, fast_path: FastPathStats
    ) -> None:
        self.metrics = metrics
        self.services = services
        self.loop_lag = loop_lag
        self.fast_path = fast_path

    def snapshot(self) -> MetricsSnapshot:
        overload = self.services.overload
        gate = overload.gate
        cache = self.services.accelerated.cache
        caches = {
            ("embedding", "local"): CacheCounts(cache.embeddings.hits + cache.embeddings.misses, cache.embeddings.hits),
            ("result", "local"): CacheCounts(cache.results.hits + cache.results.misses, cache.results.hits),
        }
        if cache.shared is not None:
            for name in ("embedding", "result"):
                caches[(name, "redis")] = CacheCounts(cache.shared_lookups[name], cache.shared_hits[name])
        return MetricsSnapshot(
            refusals={
                "rate_limit": overload.rate_limited_total,
                "queue_full": gate.shed_total,
                "deadline": gate.expired_total,
                "front_door": self.loop_lag.shed_total,
            },
            in_flight=gate.slots.running,
            queued=gate.slots.queued,
            level=gate.chooser.last_chosen.name,
            levels=[level.name for level in gate.chooser.policy.levels],
            caches=caches,
            model=self.services.runtime.counts(),
            loop_lag_s=self.loop_lag.lag_ms / 1000.0,
            shed_probability=self.loop_lag.shed_probability,
            fast_path={"fast_path": self.fast_path.served, "route": self.fast_path.passed_on},
        )

    def sync(self) -> None:
        self.metrics.sync(self.snapshot())

    async def run(self, interval_s: float) -> None:
        """Sync every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.sync()
            except Exception:  # the next sync retries; serving goes on
                log.exception("could not update the metrics")
