"""The search fast path's parser: plain requests are parsed exactly; anything the route would
coerce, refuse or resolve differently is left to the route (None)."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlencode

import pytest

from shoprec.http.fastpath import SearchParams, parse_search, query_items
from shoprec.settings import Settings

S = Settings.load(environ={}, max_query_chars=64, max_k=20, default_k=7, deadline_min_ms=10, deadline_max_ms=5000)


def parse(params: list[tuple[str, str]] | dict[str, str], header: bytes | None = None) -> SearchParams | None:
    return parse_search(urlencode(params).encode(), header, S)


def test_a_plain_query_gets_the_route_defaults() -> None:
    assert parse({"q": "cordless drill"}) == SearchParams(q="cordless drill", k=7)


def test_every_parameter_in_its_plain_form() -> None:
    got = parse(
        {
            "q": "电钻 & saw",
            "k": "20",
            "user_id": "u-1",
            "category": "Tools",
            "brand": "Acme",
            "min_price": "0",
            "max_price": "99.95",
            "in_stock": "true",
            "explain": "1",
            "pipeline": "bm25",
            "deadline_ms": "10",
            "utm_source": "ignored, as the route ignores it",
        },
        header=b"5000",
    )
    assert got == SearchParams(
        q="电钻 & saw",
        k=20,
        user_id="u-1",
        category="Tools",
        brand="Acme",
        min_price=0.0,
        max_price=99.95,
        in_stock=True,
        explain=True,
        pipeline="bm25",
        deadline_ms=10,
        header_deadline_ms=5000,
    )


def test_percent_and_plus_decoding_is_starlettes() -> None:
    assert parse_search(b"q=garden+hose%21&k=3", None, S) == SearchParams(q="garden hose!", k=3)
    assert parse_search(b"q=%E7%94%B5%E9%92%BB", None, S) == SearchParams(q="电钻", k=7)


@pytest.mark.parametrize(
    "params",
    [
        {},  # q missing: the route's 422
        {"k": "3"},
        {"q": ""},
        {"q": "x" * 65},
        {"q": "drill", "k": "0"},
        {"q": "drill", "k": "21"},
        {"q": "drill", "k": " 3"},
        {"q": "drill", "k": "+3"},
        {"q": "drill", "k": "3.0"},
        {"q": "drill", "k": ""},
        {"q": "drill", "user_id": ""},
        {"q": "drill", "category": "c" * 201},
        {"q": "drill", "min_price": "-1"},
        {"q": "drill", "min_price": "1e3"},
        {"q": "drill", "max_price": "inf"},
        {"q": "drill", "max_price": "nan"},
        {"q": "drill", "max_price": "1000000000001"},
        {"q": "drill", "in_stock": "yes"},
        {"q": "drill", "in_stock": "True"},
        {"q": "drill", "explain": "on"},
        {"q": "drill", "pipeline": "FULL"},
        {"q": "drill", "pipeline": "rerank"},
        {"q": "drill", "deadline_ms": "9"},
        {"q": "drill", "deadline_ms": "5001"},
    ],
)
def test_anything_not_plain_is_left_to_the_route(params: dict[str, str]) -> None:
    assert parse(params) is None


@pytest.mark.parametrize("header", [b"9", b"5001", b"soon", b"", b" 100"])
def test_a_deadline_header_out_of_range_or_malformed_is_left_to_the_route(header: bytes) -> None:
    assert parse({"q": "drill"}, header=header) is None


def test_a_repeated_parameter_is_left_to_the_route() -> None:
    assert parse([("q", "saw"), ("q", "drill")]) is None
    assert parse([("q", "drill"), ("k", "3"), ("k", "4")]) is None


@pytest.mark.parametrize(
    "query",
    ["", "&", "q", "q=", "=x", "q=a=b", "q=a+b", "q=a%20b", "q=%zz", "q=%C3%A9+%2B", "a&&b=1&", "q=1;k=2", "%41=%42"],
)
def test_query_items_splits_as_parse_qsl_does(query: str) -> None:
    assert query_items(query) == parse_qsl(query, keep_blank_values=True)


def test_query_items_matches_parse_qsl_on_random_strings() -> None:
    rng = random.Random(7)
    alphabet = ["a", "b", "=", "&", "%", "+", ";", " ", "1", "é", "%2", "%C3%A9", "%zz", "%41"]
    for _ in range(20_000):
        query = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert query_items(query) == parse_qsl(query, keep_blank_values=True), query
