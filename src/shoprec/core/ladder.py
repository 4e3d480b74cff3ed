"""The degradation ladder as a pure policy.

Each level is a way to answer a search with its cost (p50/p99 ms per query) and quality
(NDCG@10 on the held-out validation queries), both measured offline at build time and
stored in the manifest. Under pressure the policy moves to the cheapest level whose quality
loss against the best level stays within ``quality_loss_budget``; when pressure has stayed
low for ``step_up_hold_s`` it climbs back one level at a time (hysteresis: the thresholds
for going down and coming up differ, so the level does not flap at one load).

Pressure is a plain number supplied by the caller (the admission gate reports running plus
queued requests over its concurrency), and ``now`` is passed in, so tests drive it directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shoprec.errors import ConfigError


@dataclass(frozen=True, slots=True)
class LadderLevel:
    """One rung. ``params`` say how to serve it (pipeline, candidate counts, ANN effort)."""

    name: str
    p50_ms: float
    p99_ms: float
    ndcg: float
    params: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "ndcg@10": self.ndcg,
            "params": dict(self.params),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LadderLevel:
        try:
            return cls(
                name=str(d["name"]),
                p50_ms=float(d["p50_ms"]),
                p99_ms=float(d["p99_ms"]),
                ndcg=float(d["ndcg@10"]),
                params=dict(d.get("params", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad ladder level {d!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class LadderThresholds:
    step_down_pressure: float = 1.5
    step_up_pressure: float = 0.5
    step_up_hold_s: float = 2.0

    def __post_init__(self) -> None:
        if not (0 <= self.step_up_pressure < self.step_down_pressure):
            raise ConfigError(
                f"ladder thresholds need 0 <= step_up_pressure ({self.step_up_pressure}) "
                f"< step_down_pressure ({self.step_down_pressure})"
            )
        if not (math.isfinite(self.step_up_hold_s) and self.step_up_hold_s >= 0):
            raise ConfigError(f"step_up_hold_s must be >= 0, got {self.step_up_hold_s}")


def levels_from_manifest(manifest: Mapping[str, Any]) -> list[LadderLevel]:
    """The measured levels stored under ``"ladder"`` in a manifest (empty when it has none)."""
    ladder = manifest.get("ladder") or {}
    return [LadderLevel.from_json(d) for d in ladder.get("levels", [])]


def quality_loss(level: LadderLevel, best: LadderLevel) -> float:
    """Relative NDCG loss against the best level (0 when the best level scores 0)."""
    if best.ndcg <= 0:
        return 0.0 if level.ndcg >= best.ndcg else 1.0
    return max(0.0, (best.ndcg - level.ndcg) / best.ndcg)


def admissible_levels(levels: Sequence[LadderLevel], quality_loss_budget: float) -> list[LadderLevel]:
    """Levels within the budget, most expensive first (the top level always qualifies).
    A level that costs as much as one above it while scoring lower is never worth serving."""
    if not levels:
        raise ConfigError("a ladder needs at least one level")
    best = max(levels, key=lambda lv: lv.ndcg)
    top = levels[0]
    out = [top]
    for lv in sorted(levels[1:], key=lambda lv: -lv.p50_ms):
        if quality_loss(lv, best) <= quality_loss_budget + 1e-12 and lv.p50_ms < out[-1].p50_ms:
            out.append(lv)
    return out


class DegradationPolicy:
    """Which level to serve now. Not thread-safe by itself: the admission gate calls it
    under its own lock (or from the event loop)."""

    def __init__(
        self,
        levels: Sequence[LadderLevel],
        *,
        quality_loss_budget: float,
        thresholds: LadderThresholds = LadderThresholds(),
    ) -> None:
        if not (0 <= quality_loss_budget <= 1):
            raise ConfigError(f"quality_loss_budget must be in [0, 1], got {quality_loss_budget}")
        self.levels = admissible_levels(levels, quality_loss_budget)
        self.quality_loss_budget = quality_loss_budget
        self.thresholds = thresholds
        self._index = 0
        self._busy_s = -math.inf  # the last time the pressure was above step_up_pressure

    @property
    def current(self) -> LadderLevel:
        return self.levels[self._index]

    def update(self, pressure: float, now: float) -> LadderLevel:
        """Move with the pressure at ``now`` and return the level to serve.

        Climbing back counts from the last moment the pressure was seen above
        ``step_up_pressure`` (or the last step up): one level per ``step_up_hold_s`` of calm,
        so traffic that stopped altogether meets a ladder already climbed on its return.
        With a zero hold it climbs one level per calm update."""
        th = self.thresholds
        if pressure >= th.step_down_pressure:
            self._index = len(self.levels) - 1
            self._busy_s = now
        elif pressure > th.step_up_pressure:
            self._busy_s = now
        elif self._index > 0:
            if th.step_up_hold_s == 0:
                steps = 1
            else:
                steps = int(max(0.0, now - self._busy_s) // th.step_up_hold_s)
            if steps:
                self._index = max(0, self._index - steps)
                self._busy_s = now if th.step_up_hold_s == 0 else self._busy_s + steps * th.step_up_hold_s
        return self.current
