"""The search fast path's parser, derived from the search contract: plain requests are parsed
exactly; anything the route would coerce, refuse, ignore or resolve differently is left to
the route (None)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from shoprec.http.fastpath import PlainParser
from shoprec.http.routes.search import SearchParams, search_fields
from shoprec.settings import Settings

S = Settings.load(environ={}, max_query_chars=64, max_k=20, default_k=7, deadline_min_ms=10, deadline_max_ms=5000)
PARSER = PlainParser(search_fields(S))
DEFAULTS = {
    "k": 7,
    "user_id": None,
    "category": None,
    "brand": None,
    "min_price": None,
    "max_price": None,
    "in_stock": None,
    "price_range": None,
    "facets": None,
    "sort": "relevance",
    "page": 1,
    "per_page": None,
    "explain": False,
    "correct": True,
    "highlight": False,
    "pipeline": "full",
    "deadline_ms": None,
    "header_deadline_ms": None,
}


def params(**values: object) -> SearchParams:
    return SearchParams(**{**DEFAULTS, **values})  # type: ignore[arg-type]


def parse(query: list[tuple[str, str]] | dict[str, str], header: bytes | None = None) -> SearchParams | None:
    headers = [(b"host", b"t"), *([(b"x-deadline-ms", header)] if header is not None else [])]
    return PARSER.parse(urlencode(query).encode(), headers)


def test_a_plain_query_gets_the_route_defaults() -> None:
    assert parse({"q": "cordless drill"}) == params(q="cordless drill")


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
            "price_range": "0-25|500+",
            "facets": "brand,price",
            "sort": "price_desc",
            "page": "3",
            "per_page": "5",
            "explain": "1",
            "correct": "false",
            "highlight": "true",
            "pipeline": "bm25",
            "deadline_ms": "10",
        },
        header=b"5000",
    )
    assert got == params(
        q="电钻 & saw",
        k=20,
        user_id="u-1",
        category="Tools",
        brand="Acme",
        min_price=0.0,
        max_price=99.95,
        in_stock=True,
        price_range="0-25|500+",
        facets="brand,price",
        sort="price_desc",
        page=3,
        per_page=5,
        explain=True,
        correct=False,
        highlight=True,
        pipeline="bm25",
        deadline_ms=10,
        header_deadline_ms=5000,
    )


def test_percent_and_plus_decoding_is_starlettes() -> None:
    assert PARSER.parse(b"q=garden+hose%21&k=3", []) == params(q="garden hose!", k=3)
    assert PARSER.parse(b"q=%E7%94%B5%E9%92%BB", []) == params(q="电钻")


@pytest.mark.parametrize(
    "query",
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
        {"q": "drill", "utm_source": "a parameter the contract does not know"},
        {"q": "drill", "header_deadline_ms": "100"},  # a header's field is not a query parameter
    ],
)
def test_anything_not_plain_is_left_to_the_route(query: dict[str, str]) -> None:
    assert parse(query) is None


@pytest.mark.parametrize("header", [b"9", b"5001", b"soon", b"", b" 100"])
def test_a_deadline_header_out_of_range_or_malformed_is_left_to_the_route(header: bytes) -> None:
    assert parse({"q": "drill"}, header=header) is None


def test_a_repeated_parameter_or_header_is_left_to_the_route() -> None:
    assert parse([("q", "saw"), ("q", "drill")]) is None
    assert parse([("q", "drill"), ("k", "3"), ("k", "4")]) is None
    assert PARSER.parse(b"q=drill", [(b"x-deadline-ms", b"100"), (b"x-deadline-ms", b"200")]) is None
