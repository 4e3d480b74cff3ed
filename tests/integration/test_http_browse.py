"""Facets, sorting and pages of ``GET /v1/search`` over a real server: counts checked against
a brute-force count over the tiny shop, disjunctive selection, stable pages, bad values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprec.core.text import normalize
from shoprec.http.app import create_app
from shoprec.retrieval.lexical import analyze
from shoprec.types import Product
from support.apikeyhelp import unsigned_settings
from support.live import FULL_QUALITY, LiveServer, wait_ready
from support.tinyshop import tiny_products

Q = "drill hammer paint faucet stainless cordless"


@pytest.fixture
def api(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> Iterator[httpx.Client]:
    settings, headers = unsigned_settings(tmp_path, artifacts=tiny_static_artifacts, max_k=20, **FULL_QUALITY)
    server = live_server(create_app(settings))
    with server.client(headers=headers) as client:
        wait_ready(client)
        yield client


def _price_range(p: Product) -> str:
    assert p.price is not None
    edges = [(25, "0-25"), (50, "25-50"), (100, "50-100"), (250, "100-250"), (500, "250-500")]
    return next((label for edge, label in edges if p.price < edge), "500+")


def _matched(q: str, **selected: set[str]) -> list[Product]:
    """Brute force: products holding a query word and passing every selection given."""
    words = set(analyze(q))
    out = []
    for p in tiny_products():
        text = analyze(" ".join([p.title, p.description, p.brand, p.category, *p.attributes.values()]))
        values = {
            "category": normalize(p.category.split(">")[0]),
            "brand": normalize(p.brand),
            "price": _price_range(p),
            "in_stock": str(p.in_stock).lower(),
        }
        if words & set(text) and all(values[f] in want for f, want in selected.items()):
            out.append(p)
    return out


def _counts(products: list[Product], facet: str) -> dict[str, int]:
    key: dict[str, Callable[[Product], str]] = {
        "category": lambda p: normalize(p.category.split(">")[0]),
        "brand": lambda p: normalize(p.brand),
        "price": _price_range,
        "in_stock": lambda p: str(p.in_stock).lower(),
    }
    return dict(Counter(key[facet](p) for p in products))


def _get(api: httpx.Client, **params: Any) -> dict[str, Any]:
    resp = api.get("/v1/search", params={"q": Q, **params})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_facet_counts_match_a_brute_force_count(api: httpx.Client) -> None:
    body = _get(api, facets="category,brand,price,in_stock", per_page=5)
    matched = _matched(Q)
    assert len(matched) > 10 and body["total"] == len(matched)
    for facet in ("category", "brand", "price", "in_stock"):
        assert body["facets"][facet] == _counts(matched, facet), facet
    assert list(body["facets"]) == ["category", "brand", "price", "in_stock"]
    assert len(body["results"]) == 5


def test_facets_are_disjunctive(api: httpx.Client) -> None:
    selection = {"brand": "voltmark|ironridge", "price_range": "100-250|0-25", "in_stock": "true"}
    body = _get(api, facets="category,brand,price,in_stock", per_page=20, **selection)
    want = {"brand": {"voltmark", "ironridge"}, "price": {"100-250", "0-25"}, "in_stock": {"true"}}
    matched = _matched(Q, **want)
    assert body["total"] == len(matched) and {r["id"] for r in body["results"]} == {p.id for p in matched}
    for facet in ("category", "brand", "price", "in_stock"):  # each without its own selection
        others = {f: v for f, v in want.items() if f != facet}
        assert body["facets"][facet] == _counts(_matched(Q, **others), facet), facet
    brands = set(body["facets"]["brand"])  # its own selection does not shrink it
    assert "ironridge" in brands and brands - {"voltmark", "ironridge"}
    category = _get(api, category="tools|paint", per_page=20)
    assert {r["id"] for r in category["results"]} == {p.id for p in _matched(Q, category={"tools", "paint"})}


@pytest.mark.parametrize("sort", ["relevance", "price_asc", "price_desc", "popularity"])
def test_pages_concatenate_to_one_big_page(api: httpx.Client, sort: str) -> None:
    whole = _get(api, sort=sort, per_page=20)
    ids = [r["id"] for r in whole["results"]]
    total = whole["total"]
    assert len(ids) == min(total, 20) and len(set(ids)) == len(ids)
    paged: list[str] = []
    for page in range(1, 7):
        body = _get(api, sort=sort, per_page=4, page=page)
        assert body["total"] == total and body["page"] == page and body["per_page"] == 4
        paged += [r["id"] for r in body["results"]]
    assert paged == ids[:24]
    assert _get(api, sort=sort, per_page=4, page=100)["results"] == []


def test_sorting(api: httpx.Client) -> None:
    prices = [r["price"] for r in _get(api, sort="price_asc", per_page=20)["results"]]
    assert prices == sorted(prices) and len(prices) > 10
    prices = [r["price"] for r in _get(api, sort="price_desc", per_page=20)["results"]]
    assert prices == sorted(prices, reverse=True)
    relevance = _get(api, sort="relevance", per_page=20)
    plain = api.get("/v1/search", params={"q": Q, "k": 20}).json()
    assert "total" not in plain and "facets" not in plain  # a plain search is as before
    assert relevance["sort"] == "relevance" and relevance["results"]


@pytest.mark.parametrize(
    "params",
    [
        {"facets": "colour"},
        {"facets": ","},
        {"price_range": "10-20"},
        {"sort": "cheapest"},
        {"page": 0},
        {"page": "two"},
        {"per_page": 0},
        {"per_page": 21},
    ],
)
def test_bad_values_are_4xx_json(api: httpx.Client, params: dict[str, Any]) -> None:
    resp = api.get("/v1/search", params={"q": Q, **params})
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.headers["content-type"].startswith("application/json") and resp.json()
