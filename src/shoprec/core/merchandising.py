"""Merchandising rules: pin, boost, bury and hide products for a query or a category. Pure.

A :class:`Rule` has an id, a :class:`Scope` (when it is in effect) and an action:

- :class:`Pin`: put a product at a position (1-based) of the results;
- :class:`Hide`: leave a product out of the results;
- :class:`Boost` / :class:`Bury`: lift / sink the products that a :class:`Match` (brand,
  category, stock, price range; every given condition must hold) picks.

Scopes: ``query_exact`` (the normalised query is the value), ``query_contains`` (the
normalised query holds the value's words, in order, as whole words) and ``category`` (the
request's category filter is the value or a category below it).

:func:`arrange` applies the rules in effect to a ranking; precedence is fixed:

1. **hide** wins over everything: a hidden product is removed, even when a rule pins it;
2. **pin**: each pinned product (among those ``eligible``, e.g. passing the filters) goes to
   its position. The same product pinned twice: the rule listed first wins. Two products
   pinned to one position: the rule listed first gets it, the other the next free position
   after it. A pin past the end of the results goes to the end (in position order). A pinned
   product is not boosted or buried;
3. **boost / bury** reorder the first ``boost_window`` other products: each gets the sum of
   its boosts' weights minus its buries' weights; higher sums first, ties in the ranking's
   order (a stable sort). Products past the window keep their order: a boost does not pull a
   product from deep in the results to the top.

Each moved product is reported by the ids of the rules that placed it
(``pin:<id>``, ``boost:<id>``, ``bury:<id>``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from shoprec.core.text import normalize

ScopeKind = Literal["query_exact", "query_contains", "category"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("query_exact", "query_contains", "category")
MAX_RULES = 1000
MAX_PIN_POSITION = 1000
MAX_WEIGHT = 100
RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")

Rows = npt.NDArray[np.int64]


def category_key(text: str) -> str:
    """A category path as the catalog keeps it: each level normalised, joined by `` > ``."""
    return " > ".join(normalize(c) for c in text.split(">") if normalize(c))


@dataclass(frozen=True, slots=True)
class Scope:
    """When a rule is in effect: for one query (``query_exact``), for queries holding a phrase
    (``query_contains``), or in a category and below (``category``)."""

    kind: ScopeKind
    value: str
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in SCOPE_KINDS:
            raise ValueError(f"scope type must be one of {', '.join(SCOPE_KINDS)}, got {self.kind!r}")
        key = category_key(self.value) if self.kind == "category" else normalize(self.value)
        if not key:
            raise ValueError(f"scope value {self.value!r} has no word in it")
        object.__setattr__(self, "key", key)

    def applies(self, query_key: str, category: str | None) -> bool:
        """Whether the rule is in effect for a normalised query and a category filter's key."""
        if self.kind == "query_exact":
            return query_key == self.key
        if self.kind == "query_contains":
            return f" {self.key} " in f" {query_key} "
        return category is not None and (category == self.key or category.startswith(self.key + " > "))


@dataclass(frozen=True, slots=True)
class Columns:
    """The catalog columns a :class:`Match` reads, one entry per product row (normalised
    brand and category path, price with NaN for none, stock)."""

    brand: npt.NDArray[np.str_]
    category: npt.NDArray[np.str_]
    price: npt.NDArray[np.float32]
    in_stock: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Match:
    """Which products a boost or bury picks: every condition given must hold (brand and
    category compare normalised; the category includes those below it; prices inclusive)."""

    brand: str | None = None
    category: str | None = None
    in_stock: bool | None = None
    min_price: float | None = None
    max_price: float | None = None
    # brand and category as the catalog columns hold them, worked out once (as Scope.key)
    brand_key: str | None = field(init=False, repr=False, compare=False, default=None)
    category_key: str | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if all(v is None for v in (self.brand, self.category, self.in_stock, self.min_price, self.max_price)):
            raise ValueError("a match needs at least one of brand, category, in_stock, min_price, max_price")
        for name in ("brand", "category"):
            value = getattr(self, name)
            if value is not None and not normalize(value):
                raise ValueError(f"match {name} {value!r} has no word in it")
        if self.brand is not None:
            object.__setattr__(self, "brand_key", normalize(self.brand))
        if self.category is not None:
            object.__setattr__(self, "category_key", category_key(self.category))
        for name in ("min_price", "max_price"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"match {name} must be a non-negative number, got {value!r}")
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(f"match min_price ({self.min_price}) is greater than max_price ({self.max_price})")

    def mask(self, columns: Columns, rows: Rows) -> npt.NDArray[np.bool_]:
        """Which of ``rows`` the match picks."""
        out = np.ones(len(rows), dtype=np.bool_)
        if self.brand_key is not None:
            out &= columns.brand[rows] == self.brand_key
        if self.category_key is not None:
            want = self.category_key
            cats = columns.category[rows]
            out &= (cats == want) | np.char.startswith(cats, want + " > ")
        if self.in_stock is not None:
            out &= columns.in_stock[rows] == self.in_stock
        if self.min_price is not None:  # NaN (no price) compares False: in no price range
            out &= columns.price[rows] >= self.min_price
        if self.max_price is not None:
            out &= columns.price[rows] <= self.max_price
        return out


@dataclass(frozen=True, slots=True)
class Pin:
    product_id: str
    position: int  # 1-based

    def __post_init__(self) -> None:
        _check_product_id(self.product_id)
        if not 1 <= self.position <= MAX_PIN_POSITION:
            raise ValueError(f"pin position must be within 1..{MAX_PIN_POSITION}, got {self.position}")


@dataclass(frozen=True, slots=True)
class Hide:
    product_id: str

    def __post_init__(self) -> None:
        _check_product_id(self.product_id)


@dataclass(frozen=True, slots=True)
class Boost:
    match: Match
    weight: int = 1

    def __post_init__(self) -> None:
        _check_weight(self.weight)


@dataclass(frozen=True, slots=True)
class Bury:
    match: Match
    weight: int = 1

    def __post_init__(self) -> None:
        _check_weight(self.weight)


Action = Pin | Hide | Boost | Bury


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    scope: Scope
    action: Action

    def __post_init__(self) -> None:
        if not RULE_ID.fullmatch(self.id):
            raise ValueError(
                f"rule id must be 1-64 letters, digits or _.:- (starting with a letter or digit), got {self.id!r}"
            )


def _check_product_id(product_id: str) -> None:
    if not product_id or product_id != product_id.strip():
        raise ValueError(f"product_id must be non-empty without surrounding spaces, got {product_id!r}")


def _check_weight(weight: int) -> None:
    if not 1 <= weight <= MAX_WEIGHT:
        raise ValueError(f"weight must be within 1..{MAX_WEIGHT}, got {weight}")


def check_rules(rules: Sequence[Rule]) -> None:
    """A rule set's own consistency: at most :data:`MAX_RULES` rules, ids unique."""
    if len(rules) > MAX_RULES:
        raise ValueError(f"a rule set holds at most {MAX_RULES} rules, got {len(rules)}")
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise ValueError(f"rule id {rule.id!r} is used twice")
        seen.add(rule.id)


class RuleIndex:
    """The rules of one set by scope, to find those in effect for a request without testing
    every rule: exact queries and categories by key, phrases tested one by one."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        check_rules(rules)
        self.rules = tuple(rules)
        self._exact: dict[str, list[int]] = {}
        self._category: dict[str, list[int]] = {}
        self._contains: list[tuple[str, int]] = []
        for i, rule in enumerate(self.rules):
            key = rule.scope.key
            if rule.scope.kind == "query_exact":
                self._exact.setdefault(key, []).append(i)
            elif rule.scope.kind == "category":
                self._category.setdefault(key, []).append(i)
            else:
                self._contains.append((f" {key} ", i))

    def in_effect(self, query: str, category: str | None) -> tuple[Rule, ...]:
        """The rules in effect for ``query`` under a ``category`` filter (raw text; ``a|b``
        filters count as each of their values), in the set's order."""
        if not self.rules:
            return ()
        query_key = normalize(query)
        hits = list(self._exact.get(query_key, ()))
        padded = f" {query_key} "
        hits += [i for phrase, i in self._contains if phrase in padded]
        if category is not None and self._category:
            for value in category.split("|"):
                parts = category_key(value).split(" > ")
                for depth in range(1, len(parts) + 1):  # the category and each one above it
                    hits += self._category.get(" > ".join(parts[:depth]), ())
        return tuple(self.rules[i] for i in sorted(set(hits)))


def targets(
    rules: Sequence[Rule], row_of: Callable[[str], int | None]
) -> tuple[set[int], dict[int, tuple[int, int, str]]]:
    """The rows ``rules`` hide, and the rows they pin with ``(position, rule index, rule id)``
    (hide first: a hidden product is not pinned; of two pins of one product the first wins).
    Products ``row_of`` does not know (None) are skipped."""
    hidden = {row for r in rules if isinstance(r.action, Hide) and (row := row_of(r.action.product_id)) is not None}
    pins: dict[int, tuple[int, int, str]] = {}
    for i, r in enumerate(rules):
        if isinstance(r.action, Pin):
            row = row_of(r.action.product_id)
            if row is not None and row not in hidden and row not in pins:
                pins[row] = (r.action.position, i, r.id)
    return hidden, pins


@dataclass(frozen=True, slots=True)
class Arranged:
    """A ranking after the rules: the rows in order, and what :meth:`reasons` reads to say
    which rules placed a row (worked out only for the rows shown)."""

    rows: Rows
    pinned: Mapping[int, str] = field(default_factory=dict)  # row -> the pin's rule id
    lifted: Rows = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # the rows boosts were matched on
    lift_names: tuple[str, ...] = ()  # ``boost:<id>`` / ``bury:<id>``, one per row of lift_picks
    lift_picks: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros((0, 0), dtype=np.bool_))

    def reasons(self, row: int) -> tuple[str, ...]:
        """The rules that placed ``row``: ``("pin:<id>",)``, its boosts and buries, or ()."""
        rule_id = self.pinned.get(row)
        if rule_id is not None:
            return (f"pin:{rule_id}",)
        if not self.lift_names:
            return ()
        at = np.flatnonzero(self.lifted == row)
        if not len(at):
            return ()
        picks = self.lift_picks[:, int(at[0])].tolist()
        return tuple(name for name, picked in zip(self.lift_names, picks, strict=True) if picked)


def arrange(
    order: Rows,
    rules: Sequence[Rule],
    *,
    columns: Columns,
    row_of: Callable[[str], int | None],
    eligible: Callable[[Rows], npt.NDArray[np.bool_]],
    boost_window: int,
) -> Arranged:
    """``order`` (rows, best first) after ``rules`` (those in effect, in the set's order), by
    the precedence of the module docstring. ``row_of`` finds a product's row (None: not in the
    catalog, the rule is skipped); ``eligible`` says which pinned rows may be shown (on sale,
    passing the request's filters)."""
    hidden, pins = targets(rules, row_of)
    if pins:
        pin_rows = np.fromiter(pins, dtype=np.int64, count=len(pins))
        for row in pin_rows[~eligible(pin_rows)].tolist():
            del pins[row]
    removed = hidden | set(pins)
    kept = order[~np.isin(order, np.fromiter(removed, dtype=np.int64, count=len(removed)))] if removed else order
    head = kept[:boost_window]
    names: list[str] = []
    picks: list[npt.NDArray[np.bool_]] = []
    weight = np.zeros(len(head), dtype=np.int64)
    for r in rules:
        action = r.action
        if isinstance(action, Boost | Bury) and len(head):
            picked = action.match.mask(columns, head)
            if picked.any():
                boost = isinstance(action, Boost)
                weight += picked * (action.weight if boost else -action.weight)
                names.append(f"{'boost' if boost else 'bury'}:{r.id}")
                picks.append(picked)
    if weight.any():
        kept = np.concatenate([head[np.argsort(-weight, kind="stable")], kept[boost_window:]])
    out = kept
    if pins:
        placed = sorted(pins.items(), key=lambda item: item[1][:2])  # by position, then rule order
        slots, taken = [], -1
        for _, (position, _, _) in placed:
            taken = max(position - 1, taken + 1)  # the next free position at or after the asked one
            slots.append(taken)
        # a pin past the end goes to the end: its slot is at most the length so far
        at = np.minimum(np.asarray(slots, dtype=np.int64), len(kept) + np.arange(len(slots)))
        out = np.empty(len(kept) + len(slots), dtype=np.int64)
        is_pin = np.zeros(len(out), dtype=np.bool_)
        is_pin[at] = True
        out[at] = [row for row, _ in placed]
        out[~is_pin] = kept
    return Arranged(
        rows=out,
        pinned={row: rule_id for row, (_, _, rule_id) in pins.items()},
        lifted=head,
        lift_names=tuple(names),
        lift_picks=np.vstack(picks) if picks else np.zeros((0, len(head)), dtype=np.bool_),
    )
