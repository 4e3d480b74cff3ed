"""Session-based next-click prediction (the GRU4Rec / session-kNN protocol). Pure: numpy only.

Protocol:

- a click log is ``SessionId, ItemId, Time`` rows; a session is its clicks in time order,
  consecutive repeats of one item kept (they are real clicks) — as in the reference code;
- training sessions give the models; for every test session of at least 2 clicks and
  every position ``i >= 1``, the history is clicks ``[0, i)`` and the target click ``i``;
- targets whose item never occurs in training cannot be ranked by any model: they are
  skipped and counted; every training item is a candidate (nothing excluded);
- HR@k = 1 if the target's 0-based rank < k; MRR@k = 1 / (rank + 1) if rank < k, else 0.
  Ranks come from :func:`shoprec.core.sequences.target_ranks` (stable ties).

Opening a click log is :func:`shoprec.catalog.loaders.read_clicks`: core does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from shoprec.errors import DataError, RowError
from shoprec.types import Event, LoadReport

HEADER = ("sessionid", "itemid", "time")


def parse_clicks(lines: Iterable[str], source: str = "<clicks>") -> tuple[dict[str, list[str]], LoadReport]:
    """Tab-separated ``SessionId  ItemId  Time`` rows (header optional) -> ``{session: [items]}``
    in time order (stable for equal times). A malformed row raises
    :class:`~shoprec.errors.RowError` naming the source and its 1-based line."""
    clicks: dict[str, list[tuple[float, int, str]]] = {}
    rows = 0
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t")
        if line_no == 1 and tuple(p.strip().lower() for p in parts) == HEADER:
            continue
        if len(parts) != 3:
            raise RowError(source, line_no, f"expected 3 tab-separated fields, got {len(parts)}")
        session, item, when = (p.strip() for p in parts)
        if not session or not item:
            raise RowError(source, line_no, "empty session or item id")
        try:
            t = float(when)
        except ValueError:
            raise RowError(source, line_no, f"time {when!r} is not a number") from None
        if not np.isfinite(t):
            raise RowError(source, line_no, f"time {when!r} is not finite")
        rows += 1
        clicks.setdefault(session, []).append((t, rows, item))
    sessions = {s: [item for _, _, item in sorted(c)] for s, c in clicks.items()}
    return sessions, LoadReport(path=source, rows=rows, kept=len(sessions), duplicates=0, skipped=0)


def next_click_cases(
    sessions: Mapping[str, Sequence[str]], index: Mapping[str, int]
) -> tuple[list[list[int]], list[int], int]:
    """(histories, targets, skipped): one case per click after the first of each session.

    Items map through ``index`` (1-based ids); a target missing from it is skipped and
    counted; history items missing from it are dropped (no model knows them)."""
    histories: list[list[int]] = []
    targets: list[int] = []
    skipped = 0
    for items in sessions.values():
        ids = [index.get(i, 0) for i in items]
        for pos in range(1, len(ids)):
            if ids[pos] == 0:
                skipped += 1
                continue
            histories.append([i for i in ids[:pos] if i])
            targets.append(ids[pos])
    return histories, targets, skipped


def hit_and_mrr(ranks: npt.NDArray[np.integer], ks: Sequence[int]) -> dict[str, float]:
    """Mean HR@k and MRR@k for single-target 0-based ``ranks``."""
    r = np.asarray(ranks, dtype=np.int64)
    out: dict[str, float] = {}
    for k in ks:
        hit = r < k
        out[f"hr@{k}"] = float(hit.mean()) if r.size else 0.0
        out[f"mrr@{k}"] = float(np.where(hit, 1.0 / (r + 1), 0.0).mean()) if r.size else 0.0
    return out


def time_split(events: Sequence[Event], holdout_fraction: float) -> tuple[list[Event], dict[str, list[str]]]:
    """The events before the last ``holdout_fraction`` of them (by time), and the held-out slice
    as next-click sequences: for each user with an event in the slice, their items in time order
    (the earlier ones are the history) ending at their last event in the slice, so the last item
    is the held-out target. Users with a single item have nothing to predict from and are left out."""
    if not 0 < holdout_fraction < 1:
        raise DataError(f"holdout fraction must be within (0, 1), got {holdout_fraction}")
    ordered = sorted(events, key=lambda e: e.timestamp)
    cut = int(round(len(ordered) * (1 - holdout_fraction)))
    train, held = ordered[:cut], ordered[cut:]
    held_users = {e.user_id for e in held}
    sequences: dict[str, list[str]] = {}
    for e in ordered:
        if e.user_id in held_users:
            sequences.setdefault(e.user_id, []).append(e.item_id)
    return train, {u: s for u, s in sequences.items() if len(s) >= 2}
