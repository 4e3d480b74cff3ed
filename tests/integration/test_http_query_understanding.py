"""Autocomplete, typo correction ("did you mean"), synonyms and highlighting over a real
server on the tiny shop (whose build events carry the shoppers' queries)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprec.errors import RowError
from shoprec.http.app import create_app
from support.apikeyhelp import unsigned_settings
from support.live import FULL_QUALITY, LiveServer, wait_ready


@pytest.fixture
def api(
    live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path
) -> Iterator[httpx.Client]:
    synonyms = tmp_path / "synonyms.txt"
    synonyms.write_text("# the shop's words\nsettee, sofa\ntap => faucet\n", encoding="utf-8")
    settings, headers = unsigned_settings(
        tmp_path, artifacts=tiny_static_artifacts, synonyms_file=synonyms, max_k=20, **FULL_QUALITY
    )
    server = live_server(create_app(settings))
    with server.client(headers=headers) as client:
        wait_ready(client)
        yield client


def _ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _search(api: httpx.Client, q: str, **params: Any) -> dict[str, Any]:
    return _ok(api.get("/v1/search", params={"q": q, **params}))


def _suggest(api: httpx.Client, q: str, **params: Any) -> dict[str, Any]:
    return _ok(api.get("/v1/suggest", params={"q": q, **params}))


# --- autocomplete --------------------------------------------------------------------------


def test_suggest_completes_from_past_queries_first_then_the_catalog(api: httpx.Client) -> None:
    body = _suggest(api, "cor", limit=6)
    assert set(body) == {"query", "suggestions", "products", "correction"}
    assert body["query"] == "cor" and body["correction"] is None
    sources = [s["source"] for s in body["suggestions"]]
    assert sources == sorted(sources, key=lambda x: x != "queries")  # past queries first
    texts = [s["text"] for s in body["suggestions"]]
    # "cordless drill" was searched 12 times in the build's events (six shoppers, two clicks each)
    assert body["suggestions"][0] == {"text": "cordless drill", "source": "queries", "count": 12}
    catalog = [s for s in body["suggestions"] if s["source"] == "catalog"]
    assert catalog and all(t.startswith("cor") for t in texts)
    counts = [s["count"] for s in catalog]
    assert counts == sorted(counts, reverse=True)  # most frequent first
    assert {"text": "corded", "source": "catalog", "count": 1} in catalog
    assert len(texts) == len(set(texts)) <= 6


def test_suggest_products_are_search_hits(api: httpx.Client) -> None:
    body = _suggest(api, "cordless dr", products=3)
    assert body["suggestions"][0]["text"] == "cordless drill"
    products = body["products"]
    assert 1 <= len(products) <= 3
    search_hit = _search(api, "cordless drill", k=20)["results"][0]
    assert set(products[0]) == set(search_hit)  # the same product objects as /v1/search hits
    assert all("cordless" in p["title"].lower() or "drill" in p["title"].lower() for p in products)
    assert _suggest(api, "cordless dr", products=0)["products"] == []


def test_suggest_tolerates_typos_in_the_word_being_typed_and_the_words_before(api: httpx.Client) -> None:
    body = _suggest(api, "crodle")  # no catalog word starts so: completed as "cordle…"
    assert body["suggestions"] and all(s["text"].startswith("cordle") for s in body["suggestions"])
    assert body["correction"]["words"] == [{"from": "crodle", "to": "cordle"}]
    body = _suggest(api, "cordelss dr")
    assert body["suggestions"][0]["text"] == "cordless drill"
    assert body["correction"] == {
        "original": "cordelss dr",
        "corrected": "cordless dr",
        "words": [{"from": "cordelss", "to": "cordless"}],
    }


def test_suggest_learns_from_posted_queries(api: httpx.Client) -> None:
    events = [{"user_id": "U9", "item_id": "T015", "type": "click", "query": "leaf blower"} for _ in range(3)]
    assert api.post("/v1/events", json={"events": events}).status_code == 200
    body = _suggest(api, "leaf b")
    assert body["suggestions"][0] == {"text": "leaf blower", "source": "queries", "count": 3}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 300},
        {"q": "a", "limit": 0},
        {"q": "a", "limit": 99},
        {"q": "a", "products": -1},
        {"q": "a", "limit": "five"},
    ],
)
def test_bad_suggest_input_is_4xx_json(api: httpx.Client, params: dict[str, Any]) -> None:
    resp = api.get("/v1/suggest", params=params)
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.headers["content-type"].startswith("application/json") and resp.json()


# --- typo correction -----------------------------------------------------------------------


def test_a_misspelt_query_is_corrected_and_says_so(api: httpx.Client) -> None:
    clean = _search(api, "cordless hammer")
    typo = _search(api, "Cordelss hamemr")
    assert typo["correction"] == {
        "original": "Cordelss hamemr",
        "corrected": "cordless hammer",
        "words": [{"from": "Cordelss", "to": "cordless"}, {"from": "hamemr", "to": "hammer"}],
    }
    assert typo["query"] == "Cordelss hamemr"
    assert [r["id"] for r in typo["results"]] == [r["id"] for r in clean["results"]]
    assert clean["correction"] is None  # a query the catalog knows is searched as typed


def test_correction_off_searches_as_typed(api: httpx.Client) -> None:
    off = _search(api, "cordelss", correct="false", pipeline="bm25")
    assert off["correction"] is None and off["results"] == []  # no product holds the word as typed
    on = _search(api, "cordelss", pipeline="bm25")
    assert on["correction"]["corrected"] == "cordless"
    assert any("Cordless" in r["title"] for r in on["results"])


def test_numbers_units_model_codes_and_short_words_are_never_corrected(api: httpx.Client) -> None:
    for q in ("20x drill", "drill 21V", "tape measur 25"):
        body = _search(api, q)
        words = body["correction"]["words"] if body["correction"] else []
        assert all(w["from"] not in ("20x", "21V", "25") for w in words), body["correction"]
    assert _search(api, "dril")["correction"] is None  # four letters: no typo allowed


def test_correction_is_the_same_on_the_fast_path_and_the_route(api: httpx.Client) -> None:
    fast = _search(api, "hamemr")  # plain: the fast path
    routed = _search(api, "hamemr", unknown_param_for_the_route="1")  # an unknown parameter: the route
    assert fast["correction"] == routed["correction"] and fast["correction"]["corrected"] == "hammer"
    assert [r["id"] for r in fast["results"]] == [r["id"] for r in routed["results"]]


def test_facets_count_the_corrected_query(api: httpx.Client) -> None:
    typo = _search(api, "hamemr", facets="brand")
    clean = _search(api, "hammer", facets="brand")
    assert typo["facets"] == clean["facets"] and typo["total"] == clean["total"] > 0


@pytest.mark.parametrize("params", [{"correct": "maybe"}, {"highlight": "2"}])
def test_bad_flags_are_4xx_json(api: httpx.Client, params: dict[str, Any]) -> None:
    resp = api.get("/v1/search", params={"q": "drill", **params})
    assert resp.status_code == 422 and resp.json()


# --- synonyms and highlighting -------------------------------------------------------------


def test_two_way_synonyms_expand_lexical_retrieval(api: httpx.Client) -> None:
    body = _search(api, "settee", pipeline="bm25")
    assert {r["id"] for r in body["results"]} >= {"T006", "T007"}  # sofa (T006) and couch-sofa
    assert {r["id"] for r in _search(api, "sofa", pipeline="bm25")["results"]} >= {"T006"}


def test_one_way_synonyms_go_one_way(api: httpx.Client) -> None:
    tap = _search(api, "kitchen tap", pipeline="bm25", k=5)
    assert "T009" in [r["id"] for r in tap["results"]]  # tap => faucet
    faucet = _search(api, "faucet", pipeline="bm25", k=20, highlight="true")
    assert all("tap" not in r["title_highlighted"].lower() for r in faucet["results"])


def test_highlight_marks_the_query_words_and_their_synonyms_in_escaped_titles(api: httpx.Client) -> None:
    body = _search(api, "drills", highlight="true", k=5)
    first = body["results"][0]
    assert "<mark>Drill</mark>" in first["title_highlighted"]  # stemmed: drills finds Drill
    assert first["title_highlighted"].replace("<mark>", "").replace("</mark>", "") == first["title"]
    tap = _search(api, "tap", highlight="true", k=5)
    assert any("<mark>Faucet</mark>" in r["title_highlighted"] for r in tap["results"])
    corrected = _search(api, "hamemr", highlight="true", k=3)
    assert all("<mark>Hammer</mark>" in r["title_highlighted"] for r in corrected["results"][:2])
    assert "title_highlighted" not in _search(api, "drill")["results"][0]
    for r in _search(api, "wood screws", highlight="true", k=3)["results"]:
        assert "<" not in r["title_highlighted"].replace("<mark>", "").replace("</mark>", "")


def test_a_malformed_synonyms_file_stops_the_start_naming_file_and_line(tmp_path: Path) -> None:
    from shoprec.catalog.loaders import read_synonyms

    path = tmp_path / "syn.txt"
    path.write_text("sofa, couch\nlonely\n", encoding="utf-8")
    with pytest.raises(RowError, match=rf"{path}:2: "):
        read_synonyms(path)
