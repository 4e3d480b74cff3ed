"""Search hits rendered once per product: the fast path's serialised fragment is exactly the
route's dicts serialised, and catalog changes (price, stock, removal) show at once."""

from __future__ import annotations

import math

import orjson

from shoprec.http.render import HitRenderer
from shoprec.models.bundle import CatalogArrays
from shoprec.types import Hit, Product


def catalog() -> CatalogArrays:
    return CatalogArrays.from_products(
        [
            Product("p1", "Cordless Drill 18V", category="Tools > Drills", brand="Acme", price=99.5),
            Product("p2", 'Garden hose "50 ft" — é', brand="", price=None, in_stock=False),
            Product("p3", "Sofa", category="Furniture", price=1e16),
        ]
    )


def both(r: HitRenderer, c: CatalogArrays, hits: list[Hit], explain: bool = False) -> list[dict[str, object]]:
    dicts = r.dicts(c, hits, explain)
    assert orjson.dumps(r.fragment(c, hits, explain)) == orjson.dumps(dicts)
    return dicts


def test_the_fragment_is_the_dicts_serialised() -> None:
    r, c = HitRenderer(), catalog()
    hits = [Hit("p2", 3.25), Hit("p1", math.inf), Hit("p3", 1e-7)]
    got = both(r, c, hits)
    assert [h["id"] for h in got] == ["p2", "p1", "p3"]
    assert got[0] == {
        "id": "p2",
        "title": 'Garden hose "50 ft" — é',
        "brand": "",
        "category": "",
        "in_stock": False,
    } | {"score": 3.25}
    assert got[1]["score"] == 0.0  # not finite
    assert got[2]["price"] == 1e16


def test_explain_adds_the_stages_and_rules_after_the_score() -> None:
    r, c = HitRenderer(), catalog()
    hits = [Hit("p1", 2.0, {"bm25": 1.5, "final": 2.0}), Hit("p3", 1.0, rules=("pin:a", "boost:b"))]
    got = both(r, c, hits, explain=True)
    assert list(got[0])[-3:] == ["score", "stages", "rules"]
    assert got[0]["stages"] == {"bm25": 1.5, "final": 2.0} and got[0]["rules"] == []
    assert got[1]["rules"] == ["pin:a", "boost:b"]
    plain = both(r, c, hits)
    assert "stages" not in plain[0] and "rules" not in plain[1]


def test_catalog_changes_show_and_unknown_or_removed_products_are_left_out() -> None:
    r, c = HitRenderer(), catalog()
    hits = [Hit("p1", 1.0), Hit("gone", 0.5), Hit("p3", 0.25)]
    assert [h["id"] for h in both(r, c, hits)] == ["p1", "p3"]
    c.update_product("p1", price=10.0, in_stock=False)
    got = both(r, c, hits)
    assert (got[0]["price"], got[0]["in_stock"]) == (10.0, False)
    c.update_product("p3", remove=True)
    assert [h["id"] for h in both(r, c, hits)] == ["p1"]


def test_a_full_renderer_starts_afresh() -> None:
    r, c = HitRenderer(max_entries=2), catalog()
    hits = [Hit("p1", 1.0), Hit("p2", 1.0), Hit("p3", 1.0)]
    assert [h["id"] for h in both(r, c, hits)] == ["p1", "p2", "p3"]
    assert len(r._entries) <= 2
