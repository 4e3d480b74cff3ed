"""Compiled array kernels: the one module that imports numba.

Loops that numpy cannot express without catalog-sized temporaries or a Python loop per
candidate: BM25 top-k with MaxScore pruning, per-candidate BM25 and token matches read from
the postings, and the overlap of per-product id sets with a query's. Each takes and returns
plain arrays, compiles once (cached on disk) and releases the GIL while it runs.
"""

from __future__ import annotations

import numba
import numpy as np

_SLACK = 1e-4  # relative margin on every bound: partial sums are rounded in another order


@numba.njit(cache=True, nogil=True)
def _kth_best(acc, rows, count, n):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """The ``n``-th largest ``acc[r]`` over the first ``count`` of ``rows`` (0 with fewer)."""
    if count < n:
        return 0.0
    best = np.zeros(n, dtype=np.float64)  # descending
    for i in range(count):
        v = acc[rows[i]]
        if v <= best[n - 1]:
            continue
        j = n - 1
        while j > 0 and best[j - 1] < v:
            best[j] = best[j - 1]
            j -= 1
        best[j] = v
    return best[n - 1]


@numba.njit(cache=True, nogil=True)
def _lower_bound(a, lo, hi, x):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """The first position in ``a[lo:hi]`` (ascending) whose value is not below ``x`` (``hi``: none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def _score_in(indptr, indices, data, t, r):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """Token ``t``'s score in row ``r`` (0 when absent), by binary search of its row-sorted postings."""
    end = indptr[t + 1]
    p = _lower_bound(indices, indptr[t], end, r)
    if p < end and indices[p] == r:
        return data[p]
    return np.float32(0.0)


@numba.njit(cache=True, nogil=True)
def _scores_of(indptr, indices, data, t, rows, out):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """``out[i]`` = token ``t``'s score in ``rows[i]`` (ascending rows; 0 where absent): one
    walk along its row-sorted postings, each binary search starting where the last ended."""
    lo, end = indptr[t], indptr[t + 1]
    for i in range(len(rows)):
        lo = _lower_bound(indices, lo, end, rows[i])
        if lo == end:
            out[i:] = 0.0
            return
        out[i] = data[lo] if indices[lo] == rows[i] else np.float32(0.0)


@numba.njit(cache=True, nogil=True)
def match_rows(indptr, indices, data, ids, present_ids, rows):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """Per row: the float32 sum of the ``ids``' scores (summed in ``ids``' order, as bm25s
    sums a query's tokens), and whether each of ``present_ids`` (-1: unknown, never present)
    has a positive score there."""
    n, m = len(rows), len(present_ids)
    order = np.argsort(rows, kind="mergesort")
    ascending = rows[order]
    got = np.empty(n, dtype=np.float32)
    scores = np.zeros(n, dtype=np.float32)
    for t in ids:
        _scores_of(indptr, indices, data, t, ascending, got)
        for i in range(n):
            scores[order[i]] += got[i]
    present = np.zeros((n, m), dtype=np.bool_)
    for j in range(m):
        if present_ids[j] >= 0:
            _scores_of(indptr, indices, data, present_ids[j], ascending, got)
            for i in range(n):
                present[order[i], j] = got[i] > 0
    return scores, present


@numba.njit(cache=True, nogil=True)
def _distinct(ids):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """The distinct token ids in first-seen order and how often each occurs (as float32)."""
    distinct = np.empty(len(ids), dtype=np.int64)
    weights = np.zeros(len(ids), dtype=np.float32)
    m = 0
    for t in ids:
        j = 0
        while j < m and distinct[j] != t:
            j += 1
        if j == m:
            distinct[m] = t
            m += 1
        weights[j] += 1
    return distinct[:m], weights[:m]


@numba.njit(cache=True, nogil=True)
def top_rows(indptr, indices, data, maxes, ids, allowed, filtered, acc, cand, n):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202, PLR0913
    """Exact top ``n`` with MaxScore-style pruning (term at a time).

    The query's distinct tokens go by their highest possible contribution (how often each
    occurs x ``maxes``), most first;
    each one's postings are summed into ``acc`` (touched rows listed in ``cand``) until the
    n-th best partial sum is above what all the remaining tokens together could add to a row
    not yet seen. The remaining tokens only refine the candidates that can still reach the top
    (their score looked up by binary search), and the survivors are scored exactly: summed in
    ``ids``' order, repeats included, in float32, as bm25s sums them. ``acc`` is zeroed again
    where it was written."""
    distinct, weights = _distinct(ids)
    m = len(distinct)
    bound = np.empty(m, dtype=np.float64)
    for j in range(m):
        bound[j] = weights[j] * maxes[distinct[j]]
    order = np.argsort(-bound)
    suffix = np.zeros(m + 1, dtype=np.float64)  # what tokens order[j:] could add at most
    for j in range(m - 1, -1, -1):
        suffix[j] = suffix[j + 1] + bound[order[j]]
    lo, hi = 1.0 - _SLACK, 1.0 + _SLACK
    count = 0
    theta = 0.0
    jj = 0
    while jj < m and not (count >= n and theta * lo > suffix[jj] * hi):
        t, w = distinct[order[jj]], weights[order[jj]]
        for p in range(indptr[t], indptr[t + 1]):
            r = indices[p]
            if data[p] <= 0 or filtered and not allowed[r]:
                continue  # (BM25 scores are positive: this keeps each row listed once in ``cand``)
            if acc[r] == 0:
                cand[count] = r
                count += 1
            acc[r] += w * data[p]
        jj += 1
        # the n-th best partial sum is at most what the tokens so far could add: look for it
        # only once that could beat what the remaining ones could
        if jj < m and (suffix[0] - suffix[jj]) * hi > suffix[jj] * lo:
            theta = _kth_best(acc, cand, count, n)
    if jj == m:
        theta = _kth_best(acc, cand, count, n)
    # rows outside ``cand`` cannot reach the top n; refine the candidates that still can
    alive = np.empty(count, dtype=np.int64)
    live = 0
    for i in range(count):
        if acc[cand[i]] + suffix[jj] * hi >= theta * lo:
            alive[live] = cand[i]
            live += 1
    for kk in range(jj, m):
        t, w = distinct[order[kk]], weights[order[kk]]
        start, end = indptr[t], indptr[t + 1]
        if live * np.log2(end - start + 2) < end - start:  # a binary search per candidate
            for i in range(live):
                acc[alive[i]] += w * _score_in(indptr, indices, data, t, alive[i])
        else:  # cheaper to walk the postings: they update every touched row (pruned ones too)
            for p in range(start, end):
                r = indices[p]
                if acc[r] != 0:
                    acc[r] += w * data[p]
        theta = _kth_best(acc, alive, live, n)
        kept = 0
        for i in range(live):
            if acc[alive[i]] + suffix[kk + 1] * hi >= theta * lo:
                alive[kept] = alive[i]
                kept += 1
        live = kept
    rows = np.empty(n, dtype=np.int64)
    vals = np.empty(n, dtype=np.float32)
    found = 0
    for i in range(live):
        r = alive[i]
        v = np.float32(0.0)
        for t in ids:
            v += _score_in(indptr, indices, data, t, r)
        if v <= 0:
            continue
        if found == n and (v < vals[n - 1] or v == vals[n - 1] and r > rows[n - 1]):
            continue
        j = found if found < n else n - 1
        while j > 0 and (vals[j - 1] < v or vals[j - 1] == v and rows[j - 1] > r):
            if j < n:
                rows[j] = rows[j - 1]
                vals[j] = vals[j - 1]
            j -= 1
        rows[j] = r
        vals[j] = v
        if found < n:
            found += 1
    for i in range(count):
        acc[cand[i]] = 0.0
    return rows[:found], vals[:found]


@numba.njit(cache=True, nogil=True)
def set_overlap(indptr, ids, rows, query):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """Per row: how many of its ids (``ids[indptr[r]:indptr[r + 1]]``, distinct) ``query``
    marks (a boolean array over the ids) as float64, and how many ids it has."""
    n = len(rows)
    shared = np.zeros(n, dtype=np.float64)
    sizes = np.zeros(n, dtype=np.int64)
    for i in range(n):
        r = rows[i]
        start, end = indptr[r], indptr[r + 1]
        sizes[i] = end - start
        c = 0
        for p in range(start, end):
            if query[ids[p]]:
                c += 1
        shared[i] = c
    return shared, sizes
