from __future__ import annotations

from pathlib import Path

import pytest

from shoprec.models.bundle import load_bundle
from shoprec.serving.search import SearchService
from shoprec.serving.suggest import QueryLog
from shoprec.types import Event


def _event(query: str | None) -> Event:
    return Event("u", "T000", "click", 1.0, query)


def test_the_query_log_counts_normalised_queries_and_completes_by_prefix() -> None:
    log = QueryLog([_event("Cordless Drill"), _event("cordless  drill"), _event("corded drill"), _event(None)])
    log.add([_event("cordless drill"), _event("   ")])
    assert log.completions("cord", 5) == [("cordless drill", 3), ("corded drill", 1)]
    assert log.completions("cordless", 5) == [("cordless drill", 3)]
    assert log.completions("x", 5) == [] and log.completions("c", 1) == [("cordless drill", 3)]


@pytest.fixture(scope="module")
def service(tiny_static_artifacts: Path) -> SearchService:
    return SearchService(load_bundle(tiny_static_artifacts))


def test_suggestions_come_from_past_queries_then_titles(service: SearchService) -> None:
    found = service.suggester.suggest("ham", 6, products=2)
    pairs = [(s.text, s.source) for s in found.suggestions]
    assert pairs[0] == ("hammer", "queries") and ("hammer drill", "catalog") in pairs
    assert len(pairs) == len({t for t, _ in pairs}) == 4  # "hammer" once: the catalog's is the same text
    assert found.correction is None
    assert len(found.products) == 2 and all(h.product_id in {"T001", "T003", "T004"} for h in found.products)


def test_a_trailing_space_completes_the_next_word(service: SearchService) -> None:
    texts = [s.text for s in service.suggester.suggest("cordless ", 10).suggestions]
    assert "cordless drill" in texts and "cordless leaf" in texts and all(t.startswith("cordless ") for t in texts)


def test_typed_words_are_corrected_and_the_last_one_fuzzily_completed(service: SearchService) -> None:
    found = service.suggester.suggest("hamemr dr", 5)
    assert found.suggestions[0].text == "hammer drill"
    assert found.correction is not None and found.correction.corrected == "hammer dr"
    found = service.suggester.suggest("dehumidfi", 5)  # the word being typed, one typo
    assert found.suggestions[0].text == "dehumidifier"
    assert [(w.original, w.corrected) for w in found.correction.words] == [("dehumidfi", "dehumidif")]  # type: ignore[union-attr]
