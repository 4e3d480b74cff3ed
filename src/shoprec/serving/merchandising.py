"""Merchandising rules applied to a search's results (:mod:`shoprec.core.merchandising` holds
the rules and their precedence; :mod:`shoprec.serving.rulestore` their versions).

The rules are applied after ranking, on every request, to the ranking the result cache holds
(or the pipeline just computed): the cache keeps rankings, never rule outcomes, so a new rule
version shows in the very next response. How they meet the other parts of a search:

- a plain search with a boost or bury in effect ranks the relevance window (as a page of a
  browse does) so that they reach past ``k``, then cuts to ``k``; with pins and hides alone
  it ranks ``k`` (plus one per hide): a pin is placed whatever the ranking holds;
- **hide** applies to every order: a hidden product is out of the results, the ``total`` and
  the facet counts;
- a **pinned** product is one of the query's results in every order (counted in ``total`` and
  the facets) when it passes the request's filters; its **position** holds in the
  ``relevance`` order only. ``price_asc``, ``price_desc`` and ``popularity`` are orders a
  shopper asked for: a pin or a boost does not break them;
- **boost / bury** reorder the relevance window (the ranked results a relevance order starts
  with); the rest of the matched set keeps its BM25 order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shoprec.core.merchandising import Arranged, Boost, Bury, Columns, Hide, Rule, arrange, targets
from shoprec.models.bundle import CatalogArrays
from shoprec.serving.rulestore import RuleStore
from shoprec.types import Filters, Hit


@dataclass(frozen=True, slots=True)
class RulePlan:
    """The rules in effect for one request, from one version of the rule set."""

    version: int | None
    rules: tuple[Rule, ...]
    columns: Columns | None = None

    @property
    def active(self) -> bool:
        return bool(self.rules)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.rules]

    @property
    def hides(self) -> int:
        return sum(isinstance(r.action, Hide) for r in self.rules)

    @property
    def lifts(self) -> bool:
        """Whether a boost or bury is in effect (they reorder the whole relevance window)."""
        return any(isinstance(r.action, Boost | Bury) for r in self.rules)

    def ranked_k(self, k: int, window: int) -> int:
        """How many results to rank so that the first ``k`` after the rules are what the
        first page of a browse shows: the window when a boost or bury may reorder it, else
        ``k`` (pins are placed whatever the ranking holds); one more per hide."""
        return (max(k, window) if self.lifts else k) + self.hides

    def arrange(
        self,
        catalog: CatalogArrays,
        order: npt.NDArray[np.int64],
        eligible: npt.NDArray[np.bool_] | None,
        boost_window: int,
    ) -> Arranged:
        """``order`` (catalog rows, best first) after the rules; ``eligible``: the rows a pin
        may show (None: every row)."""
        if self.columns is None:
            raise ValueError("a plan without catalog columns arranges nothing")
        return arrange(
            order,
            self.rules,
            columns=self.columns,
            row_of=catalog.index_of.get,
            eligible=(lambda rows: np.ones(len(rows), dtype=np.bool_)) if eligible is None else eligible.__getitem__,
            boost_window=boost_window,
        )

    def targets(self, catalog: CatalogArrays) -> tuple[list[int], list[int]]:
        """The rows hidden, and the rows pinned (in neither order)."""
        hidden, pins = targets(self.rules, catalog.index_of.get)
        return sorted(hidden), sorted(pins)

    def apply(self, catalog: CatalogArrays, hits: Sequence[Hit], filters: Filters, k: int) -> list[Hit]:
        """The first ``k`` of a ranking's ``hits`` after the rules, each moved hit carrying
        the rules that placed it; a pinned product not among ``hits`` is shown when it is on
        sale and passes ``filters``."""
        index_of = catalog.index_of
        by_row = {row: h for h in hits if (row := index_of.get(h.product_id)) is not None}
        order = np.fromiter(by_row, dtype=np.int64, count=len(by_row))
        allowed = catalog.allowed(filters)
        arranged = self.arrange(catalog, order, allowed, boost_window=len(order))
        products, out = catalog.products, []
        for row in arranged.rows[:k].tolist():
            hit = by_row.get(row)
            reasons = arranged.reasons(row)
            if hit is None:
                out.append(Hit(products[row].id, 0.0, rules=reasons))
            else:
                out.append(Hit(hit.product_id, hit.score, hit.stages, rules=reasons) if reasons else hit)
        return out


class Merchandiser:
    """The rules in effect for each request, from the store's current version, with the
    catalog columns the rules read (built once per catalog object)."""

    def __init__(self, store: RuleStore) -> None:
        self.store = store
        self._columns: tuple[CatalogArrays, Columns] | None = None

    def columns(self, catalog: CatalogArrays) -> Columns:
        cached = self._columns
        if cached is not None and cached[0] is catalog:
            return cached[1]
        codes, values = catalog.brand_codes
        brand = np.asarray(values, dtype=np.str_)[codes] if len(values) else np.asarray([""] * len(codes), np.str_)
        # price and stock are the catalog's own arrays: updates to them show at once
        columns = Columns(brand=brand, category=catalog.category_norm, price=catalog.price, in_stock=catalog.in_stock)
        self._columns = (catalog, columns)
        return columns

    def plan(self, catalog: CatalogArrays, query: str, category: str | None) -> RulePlan:
        live = self.store.current()
        rules = live.index.in_effect(query, category)
        if not rules:
            return RulePlan(live.number, ())
        return RulePlan(live.number, rules, self.columns(catalog))
