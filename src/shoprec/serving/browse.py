"""Facets, sorting and pages over a search's matched set.

The **matched set** of a query is every product on sale that passes the filters and holds at
least one of the query's words (a positive BM25 score): what a shopper reads as "the results
for this query", and what ``total`` and the facet counts describe. Facets are disjunctive:
values within one facet are an OR, facets are ANDed, and each facet's counts are taken with
every filter but its own (so a shopper sees what picking another value would give). The
``min_price``/``max_price`` filters are not a facet and narrow every count.

Orders are total, so pages concatenate to the order of one big page:

- ``relevance``: the search pipeline's ranking of its first ``window`` results (those in the
  matched set), then the rest of the matched set by BM25, ties by catalog row;
- ``price_asc`` / ``price_desc``: by price (products without one last), then BM25, then row;
- ``popularity``: most popular first, then BM25, then row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from shoprec.core.facets import price_bins, price_counts, value_counts
from shoprec.models.bundle import Bundle
from shoprec.serving.merchandising import RulePlan
from shoprec.types import Filters, Hit

Sort = Literal["relevance", "price_asc", "price_desc", "popularity"]
SORTS: tuple[Sort, ...] = ("relevance", "price_asc", "price_desc", "popularity")
# the filter each facet selects with
FACET_FILTER = {"category": "category", "brand": "brand", "price": "price_range", "in_stock": "in_stock"}


@dataclass(frozen=True, slots=True)
class Browse:
    """Which page of the matched set, in which order, with which facets' counts."""

    offset: int
    limit: int
    sort: Sort = "relevance"
    facets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BrowseResult:
    hits: list[Hit]
    total: int
    facets: dict[str, dict[str, int]]


def browse(
    bundle: Bundle, text: str, filters: Filters, ranked: Sequence[Hit], b: Browse, rules: RulePlan | None = None
) -> BrowseResult:
    """The page ``b`` asks for of ``text``'s matched set under ``filters``, its size and the
    facet counts; ``ranked`` is the pipeline's ranking (used by the ``relevance`` order).
    ``rules``: the merchandising rules in effect (:mod:`shoprec.serving.merchandising`): hidden
    products leave the matched set and pinned ones join it, in every order; pins, boosts and
    buries place products in the ``relevance`` order only."""
    catalog = bundle.catalog
    bm25 = bundle.lexical.scores(text)
    matched = bm25 > 0
    plan = rules if rules is not None and rules.active else None
    if plan is not None:
        hidden, pinned = plan.targets(catalog)
        matched[pinned] = True
        matched[hidden] = False
    on_sale = catalog.allowed(Filters())
    if on_sale is not None:
        matched &= on_sale
    allowed = catalog.allowed(filters)
    selected = matched if allowed is None else matched & allowed
    rows = np.flatnonzero(selected).astype(np.int64)
    order, scores = _ordered(bundle, rows, bm25, ranked, b.sort, selected)
    arranged = None
    if plan is not None and b.sort == "relevance":
        arranged = plan.arrange(catalog, order, selected, boost_window=len(scores))
        order = arranged.rows
    page = order[b.offset : b.offset + b.limit]
    products = catalog.products
    hits = [
        Hit(products[r].id, float(scores.get(r, bm25[r])), rules=arranged.reasons(r) if arranged else ())
        for r in page.tolist()
    ]
    return BrowseResult(hits=hits, total=int(len(rows)), facets=facet_counts(bundle, filters, matched, b.facets))


def _ordered(
    bundle: Bundle,
    rows: npt.NDArray[np.int64],
    bm25: npt.NDArray[np.float32],
    ranked: Sequence[Hit],
    sort: Sort,
    selected: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], dict[int, float]]:
    """The matched rows in ``sort`` order, and the scores that differ from BM25 (the ranked ones)."""
    catalog = bundle.catalog
    relevance = -bm25[rows]
    if sort == "relevance":
        index_of = catalog.index_of
        first: dict[int, float] = {}
        for h in ranked:
            row = index_of.get(h.product_id)
            if row is not None and selected[row] and row not in first:
                first[row] = h.score
        rest = rows[~np.isin(rows, np.fromiter(first, dtype=np.int64, count=len(first)))]
        rest = rest[np.lexsort((rest, -bm25[rest]))]
        return np.concatenate([np.fromiter(first, dtype=np.int64, count=len(first)), rest]), first
    if sort == "popularity":
        keys: tuple[npt.NDArray[np.generic], ...] = (rows, relevance, -catalog.popularity[rows])
    else:
        price = catalog.price[rows].astype(np.float64)
        price = price if sort == "price_asc" else -price
        keys = (rows, relevance, np.nan_to_num(price, nan=np.inf), np.isnan(price))
    return rows[np.lexsort(keys)], {}


def facet_counts(
    bundle: Bundle, filters: Filters, matched: npt.NDArray[np.bool_], facets: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Each facet's counts over the matched products that pass every filter but the facet's own."""
    catalog = bundle.catalog
    out: dict[str, dict[str, int]] = {}
    for name in facets:
        allowed = catalog.allowed(dataclasses.replace(filters, **{FACET_FILTER[name]: None}))
        mask = matched if allowed is None else matched & allowed
        if name == "category":
            codes, values = catalog.top_category_codes
            out[name] = value_counts(codes, values, mask)
        elif name == "brand":
            codes, values = catalog.brand_codes
            out[name] = value_counts(codes, values, mask)
        elif name == "price":
            out[name] = price_counts(price_bins(catalog.price), mask)
        else:
            stock = catalog.in_stock[mask]
            counts = {"true": int(stock.sum()), "false": int(len(stock) - stock.sum())}
            out[name] = {k: v for k, v in counts.items() if v}
    return out
