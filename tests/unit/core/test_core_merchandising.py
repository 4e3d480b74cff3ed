"""The pure rule engine: scopes, matches, and the precedence hide > pin > boost/bury."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.core.merchandising import (
    Boost,
    Bury,
    Columns,
    Hide,
    Match,
    Pin,
    Rule,
    RuleIndex,
    Scope,
    arrange,
)

# eight products: rows 0..7
COLUMNS = Columns(
    brand=np.asarray(["acme", "bolt", "acme", "core", "bolt", "acme", "core", "bolt"], dtype=np.str_),
    category=np.asarray(
        ["tools > drills", "tools > drills", "tools > saws", "garden", "garden > hoses", "tools", "paint", "paint"],
        dtype=np.str_,
    ),
    price=np.asarray([10, 20, 30, 40, np.nan, 60, 70, 80], dtype=np.float32),
    in_stock=np.asarray([True, False, True, True, True, False, True, True]),
)
IDS = [f"P{i}" for i in range(8)]
ROW = {pid: i for i, pid in enumerate(IDS)}
ORDER = np.arange(8, dtype=np.int64)
ANY = Scope("query_contains", "drill")


def run(rules: list[Rule], order: np.ndarray = ORDER, *, eligible: set[int] | None = None, window: int = 8):  # type: ignore[no-untyped-def]
    ok = (
        (lambda rows: np.ones(len(rows), np.bool_))
        if eligible is None
        else (lambda rows: np.isin(rows, list(eligible)))
    )
    return arrange(order, rules, columns=COLUMNS, row_of=ROW.get, eligible=ok, boost_window=window)


def rule(rid: str, action: Pin | Hide | Boost | Bury, scope: Scope = ANY) -> Rule:
    return Rule(rid, scope, action)


def test_pin_goes_to_its_position_and_says_so() -> None:
    out = run([rule("p", Pin("P6", 2))])
    assert out.rows.tolist() == [0, 6, 1, 2, 3, 4, 5, 7]
    assert out.reasons(6) == ("pin:p",) and out.reasons(0) == ()


def test_pin_past_the_end_goes_last_and_an_unknown_product_is_skipped() -> None:
    out = run([rule("far", Pin("P1", 50)), rule("ghost", Pin("NOPE", 1))], order=np.asarray([0, 2], np.int64))
    assert out.rows.tolist() == [0, 2, 1]
    out = run([rule("a", Pin("P1", 50)), rule("b", Pin("P3", 40))], order=np.asarray([0, 2], np.int64))
    assert out.rows.tolist() == [0, 2, 3, 1]  # in position order


def test_hide_removes_and_wins_over_a_pin_of_the_same_product() -> None:
    out = run([rule("pin", Pin("P3", 1)), rule("hide", Hide("P3"))])
    assert 3 not in out.rows.tolist() and len(out.rows) == 7
    assert [out.reasons(r) for r in out.rows.tolist()] == [()] * 7


def test_conflicting_pins_the_rule_listed_first_wins() -> None:
    # two products at one position: the first rule gets it, the second the next free one
    out = run([rule("a", Pin("P5", 1)), rule("b", Pin("P7", 1)), rule("c", Pin("P6", 2))])
    assert out.rows.tolist()[:4] == [5, 7, 6, 0]
    # one product pinned twice: the first rule's position
    out = run([rule("a", Pin("P5", 3)), rule("b", Pin("P5", 1))])
    assert out.rows.tolist()[:3] == [0, 1, 5] and out.reasons(5) == ("pin:a",)


def test_a_pin_of_an_ineligible_product_is_not_shown() -> None:
    out = run([rule("p", Pin("P6", 1))], order=np.asarray([0, 1], np.int64), eligible={0, 1})
    assert out.rows.tolist() == [0, 1]


def test_boost_and_bury_sum_weights_stable_within_ties() -> None:
    rules = [
        rule("acme", Boost(Match(brand="Acme"), 2)),
        rule("stock", Boost(Match(in_stock=True), 1)),
        rule("paint", Bury(Match(category="Paint"), 5)),
    ]
    out = run(rules)
    # weights: 0:3 1:0 2:3 3:1 4:1 5:2 6:-4 7:-4
    assert out.rows.tolist() == [0, 2, 5, 3, 4, 1, 6, 7]
    assert out.reasons(0) == ("boost:acme", "boost:stock") and out.reasons(7) == ("boost:stock", "bury:paint")
    assert out.reasons(1) == ()


def test_boost_reorders_only_the_window_and_never_moves_a_pin() -> None:
    rules = [rule("bolt", Boost(Match(brand="bolt"))), rule("pin", Pin("P1", 4))]
    out = run(rules, window=4)
    # without P1 the window is rows 0,2,3,4 -> bolt (4) first; 7 is past the window and stays
    assert out.rows.tolist() == [4, 0, 2, 1, 3, 5, 6, 7]
    assert out.reasons(1) == ("pin:pin",) and out.reasons(4) == ("boost:bolt",) and out.reasons(7) == ()


def test_match_category_below_and_price_range() -> None:
    rows = ORDER
    assert Match(category="tools").mask(COLUMNS, rows).tolist() == [1, 1, 1, 0, 0, 1, 0, 0]
    assert Match(min_price=20, max_price=60).mask(COLUMNS, rows).tolist() == [0, 1, 1, 1, 0, 1, 0, 0]
    assert Match(max_price=1000).mask(COLUMNS, rows)[4] == np.False_  # no price: in no price range


def test_scopes_exact_contains_category() -> None:
    index = RuleIndex(
        [
            Rule("e", Scope("query_exact", "Cordless  Drill"), Hide("P1")),
            Rule("c", Scope("query_contains", "drill"), Hide("P2")),
            Rule("k", Scope("category", "Tools > Drills"), Hide("P3")),
            Rule("t", Scope("category", "Tools"), Hide("P4")),
        ]
    )
    ids = lambda q, c=None: [r.id for r in index.in_effect(q, c)]  # noqa: E731
    assert ids("cordless drill") == ["e", "c"]
    assert ids("cordless drill kit") == ["c"]
    assert ids("drills") == []  # whole words only
    assert ids("saw", "Tools > Drills > Hammer Drills") == ["k", "t"]
    assert ids("saw", "Tools") == ["t"]
    assert ids("saw", "garden|tools > drills") == ["k", "t"]
    assert ids("saw") == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: Pin("P1", 0),
        lambda: Pin("", 1),
        lambda: Boost(Match(brand="acme"), 0),
        lambda: Match(),
        lambda: Match(min_price=5, max_price=1),
        lambda: Scope("query_exact", "   "),
        lambda: Rule("bad id!", ANY, Hide("P1")),
    ],
)
def test_bad_rules_are_refused(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        make()


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="used twice"):
        RuleIndex([rule("x", Hide("P1")), rule("x", Hide("P2"))])
