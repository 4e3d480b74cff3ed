"""Next-item recommendation under the S3Rec/ICLRec leave-last-out protocol. Pure: numpy only.

Protocol (shared by every sequential model we evaluate):

- each user is a time-ordered item sequence; the last item is the *test* target, the one
  before it the *validation* target, everything before that is *training*;
- users with fewer than 3 items cannot be evaluated: they are skipped and counted;
- a model scores **all** items for each history; nothing is excluded except the padding
  id 0 (already-seen items stay candidates: repeat purchases are real);
- the target's 0-based rank is its position in a *stable* descending sort of the scores:
  the number of items with a strictly higher score, plus the number of items with an
  equal score and a smaller id. That matches the argsort used by the reference ICLRec
  code up to how it breaks ties, while staying deterministic; ``ties="pessimistic"``
  (every tie ranks above the target) and ``ties="optimistic"`` are there to bound it;
- HR@k = 1 if rank < k; NDCG@k = 1 / log2(rank + 2) if rank < k (one relevant item).

Item ids in files are strings. :func:`build_vocabulary` numbers them from 1 (0 is
padding); models and :func:`evaluate_ranking` work on those integer ids.

The format is parsed here (:func:`parse_sequences`, from lines); opening the file is
:func:`shoprec.catalog.loaders.read_sequences`, since core does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

from shoprec.core.metrics import ndcg_single_target
from shoprec.errors import DataError, RowError
from shoprec.types import LoadReport

T = TypeVar("T")

PAD_ID = 0
MIN_EVALUABLE_ITEMS = 3

Ties = Literal["stable", "pessimistic", "optimistic"]
ScoreFn = Callable[[Sequence[Sequence[int]]], npt.NDArray[np.floating]]


def parse_sequences(
    lines: Iterable[str], source: str = "<sequences>", *, min_items: int = MIN_EVALUABLE_ITEMS
) -> tuple[dict[str, list[str]], LoadReport]:
    """Parse ``user_id item item ...`` lines (time order) into ``{user: [items]}``.

    Blank lines are ignored. A line with a user but no item, or a user seen twice, raises
    :class:`~shoprec.errors.RowError` (1-based line number). Users with fewer than
    ``min_items`` items are skipped and counted in the report's ``skipped``.
    """
    seqs: dict[str, list[str]] = {}
    seen: set[str] = set()
    rows = skipped = 0
    for line_no, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        rows += 1
        user, items = parts[0], parts[1:]
        if not items:
            raise RowError(source, line_no, f"user {user!r} has no items")
        if user in seen:
            raise RowError(source, line_no, f"user {user!r} appears on more than one line")
        seen.add(user)
        if len(items) < min_items:
            skipped += 1
            continue
        seqs[user] = items
    problems = (f"{skipped} users with fewer than {min_items} items skipped",) if skipped else ()
    report = LoadReport(path=source, rows=rows, kept=len(seqs), duplicates=0, skipped=skipped, problems=problems)
    return seqs, report


def leave_last_out(
    seqs: Mapping[str, Sequence[T]],
) -> tuple[dict[str, list[T]], dict[str, T], dict[str, T]]:
    """Split each sequence into (training prefix, validation target, test target)."""
    train: dict[str, list[T]] = {}
    valid: dict[str, T] = {}
    test: dict[str, T] = {}
    for user, items in seqs.items():
        if len(items) < MIN_EVALUABLE_ITEMS:
            raise DataError(f"user {user!r} has {len(items)} items; leave-last-out needs {MIN_EVALUABLE_ITEMS}")
        train[user] = list(items[:-2])
        valid[user] = items[-2]
        test[user] = items[-1]
    return train, valid, test


def _item_sort_key(item: str) -> tuple[int, int, str]:
    return (0, int(item), "") if item.isdigit() else (1, 0, item)


def build_vocabulary(seqs: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Every item of ``seqs`` once, numeric ids in numeric order, then the rest sorted.

    Item ``vocab[i]`` gets the integer id ``i + 1``; 0 is padding.
    """
    items = {i for s in seqs.values() for i in s}
    return tuple(sorted(items, key=_item_sort_key))


def encode_sequences(seqs: Mapping[str, Sequence[str]], vocab: Sequence[str]) -> dict[str, list[int]]:
    """Map item strings to integer ids (1-based); an item missing from ``vocab`` is an error."""
    index = {item: i + 1 for i, item in enumerate(vocab)}
    out: dict[str, list[int]] = {}
    for user, items in seqs.items():
        try:
            out[user] = [index[i] for i in items]
        except KeyError as exc:
            raise DataError(f"user {user!r}: item {exc.args[0]!r} not in the vocabulary") from exc
    return out


def popularity_scores(train: Iterable[Sequence[int]], n_items: int | None = None) -> npt.NDArray[np.float32]:
    """Interaction counts per item id, float32 ``[n_items + 1]`` (index 0, padding, is 0)."""
    flat = np.fromiter((i for s in train for i in s), dtype=np.int64)
    size = (int(flat.max()) if flat.size else 0) + 1 if n_items is None else n_items + 1
    if flat.size and (flat.min() < 0 or flat.max() >= size):
        raise DataError(f"item ids must lie in 0..{size - 1}")
    counts = np.bincount(flat, minlength=size).astype(np.float32)
    counts[PAD_ID] = 0.0
    return counts


def target_ranks(
    scores: npt.NDArray[np.floating], targets: npt.NDArray[np.integer], *, ties: Ties = "stable"
) -> npt.NDArray[np.int64]:
    """0-based rank of each target among all non-padding items.

    ``scores`` is ``[batch, n_items + 1]`` (column 0 is padding and never counts);
    ``targets`` holds ids in ``1..n_items``. NaN scores rank below every number.
    """
    n_real = scores.shape[1] - 1
    rows = np.arange(scores.shape[0])
    target_scores = scores[rows, targets]
    real = scores[:, 1:]
    t = target_scores[:, None]
    # NaN compares False, so a NaN item never outranks anyone; a NaN target ranks last.
    higher = np.count_nonzero(real > t, axis=1)
    if ties == "optimistic":
        ranks = higher
    else:
        equal = np.count_nonzero(real == t, axis=1) - 1  # the target equals itself
        if ties == "pessimistic":
            ranks = higher + equal
        else:
            ranks = higher.copy()
            for r in np.flatnonzero(equal):  # float scores rarely tie: only those rows
                ranks[r] += np.count_nonzero(real[r, : targets[r] - 1] == target_scores[r])
    out: npt.NDArray[np.int64] = np.where(np.isnan(target_scores), n_real - 1, ranks).astype(np.int64)
    return out


def metrics_from_ranks(ranks: Sequence[int] | npt.NDArray[np.integer], ks: Sequence[int]) -> dict[str, float]:
    """Mean HR@k and NDCG@k over users, for single-target 0-based ``ranks``."""
    out: dict[str, float] = {}
    r = np.asarray(ranks, dtype=np.int64)
    for k in ks:
        out[f"hr@{k}"] = float((r < k).mean()) if r.size else 0.0
        out[f"ndcg@{k}"] = float(np.mean([ndcg_single_target(int(x), k) for x in r])) if r.size else 0.0
    return out


def evaluate_ranking(
    score_fn: ScoreFn,
    histories: Sequence[Sequence[int]],
    targets: Sequence[int],
    n_items: int,
    ks: Sequence[int] = (5, 10, 20),
    batch_size: int = 1024,
    *,
    ties: Ties = "stable",
) -> dict[str, float]:
    """HR@k and NDCG@k of ``score_fn`` over all items (see the module docstring).

    ``score_fn`` takes a batch of histories (lists of item ids) and returns scores
    ``[batch, n_items + 1]``; column 0 (padding) is ignored. Returns ``hr@k``, ``ndcg@k``
    for each ``k`` and ``users`` (the number evaluated).
    """
    if len(histories) != len(targets):
        raise ValueError(f"{len(histories)} histories but {len(targets)} targets")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    tgt = np.asarray(targets, dtype=np.int64)
    if tgt.size and (tgt.min() < 1 or tgt.max() > n_items):
        raise ValueError(f"targets must be item ids in 1..{n_items}")
    ranks = np.empty(len(tgt), dtype=np.int64)
    for start in range(0, len(tgt), batch_size):
        stop = min(start + batch_size, len(tgt))
        scores = np.asarray(score_fn(histories[start:stop]))
        if scores.shape != (stop - start, n_items + 1):
            raise ValueError(f"score_fn returned shape {scores.shape}, expected {(stop - start, n_items + 1)}")
        ranks[start:stop] = target_ranks(scores, tgt[start:stop], ties=ties)
    out = metrics_from_ranks(ranks, ks)
    out["users"] = float(len(tgt))
    return out


def cooccurrence_pairs(
    train: Iterable[Sequence[int]], *, window: int = 3, backward_weight: float = 0.5
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Weighted item pairs (COO) from sequences, for "bought after / together" counts.

    For items ``a`` at position ``i`` and ``b`` at ``j`` with ``0 < j - i <= window``,
    ``a -> b`` gets ``1 / (j - i)`` and ``b -> a`` gets ``backward_weight / (j - i)``.
    Duplicate pairs are returned as separate entries (summed by a sparse constructor).
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    vals: list[npt.NDArray[np.float32]] = []
    for seq in train:
        s = np.asarray(seq, dtype=np.int64)
        for d in range(1, min(window, len(s) - 1) + 1):
            a, b = s[:-d], s[d:]
            w = np.full(a.shape, 1.0 / d, dtype=np.float32)
            rows += [a, b]
            cols += [b, a]
            vals += [w, w * np.float32(backward_weight)]
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.float32)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def normalize_rows(weights: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Non-negative ``[batch, n_items + 1]`` weights -> a distribution over items ``1..n``
    per row (column 0 set to 0; an all-zero row becomes uniform)."""
    w = np.clip(np.asarray(weights, dtype=np.float32), 0.0, None)
    w[:, PAD_ID] = 0.0
    total = w.sum(axis=1, keepdims=True)
    uniform = np.float32(1.0 / max(w.shape[1] - 1, 1))
    out = np.where(total > 0, w / np.where(total > 0, total, 1.0), uniform).astype(np.float32)
    out[:, PAD_ID] = 0.0
    return out


def log_softmax_rows(scores: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Row-wise log-softmax over items ``1..n`` of ``[batch, n_items + 1]`` scores; column 0
    (padding) gets ``-inf``."""
    s = np.asarray(scores, dtype=np.float32)[:, 1:]
    shifted = s - s.max(axis=1, keepdims=True)
    out = np.full((s.shape[0], s.shape[1] + 1), -np.inf, dtype=np.float32)
    out[:, 1:] = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return out


BLEND_FLOOR = 1e-6


def blend_scores(
    model_scores: npt.NDArray[np.floating],
    cooccurrence_scores: npt.NDArray[np.floating],
    weight: float,
) -> npt.NDArray[np.float32]:
    """Product of experts: ``log softmax(model) + weight * log(co-occurrence share + 1e-6)``.

    Both inputs are ``[batch, n_items + 1]``; the co-occurrence row is first normalised to
    a distribution (:func:`normalize_rows`). ``weight`` = 0 is the model alone; a large
    weight ranks by co-occurrence and lets the model order what co-occurrence cannot tell
    apart (items it never saw after this history, or tied ones). Column 0 is ``-inf``.
    """
    if weight < 0.0:
        raise ValueError(f"blend weight must be non-negative, got {weight}")
    out = log_softmax_rows(model_scores)
    if weight:
        out += np.float32(weight) * np.log(normalize_rows(cooccurrence_scores) + BLEND_FLOOR)
        out[:, PAD_ID] = -np.inf
    return out


def select_blend_weight(
    model_fn: ScoreFn,
    cooccurrence_fn: ScoreFn,
    histories: Sequence[Sequence[int]],
    targets: Sequence[int],
    n_items: int,
    grid: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0),
    *,
    k: int = 10,
    batch_size: int = 1024,
) -> tuple[float, dict[float, float]]:
    """The weight of :func:`blend_scores` with the best NDCG@k on (validation) targets.

    Each model scores each batch once; every weight of ``grid`` is evaluated on the same
    scores. Returns the best weight (the smallest on a tie) and NDCG@k per weight.
    """
    tgt = np.asarray(targets, dtype=np.int64)
    ranks = {w: np.empty(len(tgt), dtype=np.int64) for w in grid}
    for start in range(0, len(tgt), batch_size):
        stop = min(start + batch_size, len(tgt))
        a = log_softmax_rows(np.asarray(model_fn(histories[start:stop])))
        b = np.log(normalize_rows(np.asarray(cooccurrence_fn(histories[start:stop]))) + BLEND_FLOOR)
        for w in grid:
            ranks[w][start:stop] = target_ranks(a + np.float32(w) * b, tgt[start:stop])
    ndcg = {w: metrics_from_ranks(r, (k,))[f"ndcg@{k}"] for w, r in ranks.items()}
    best = max(sorted(ndcg), key=lambda w: ndcg[w])
    return best, ndcg
