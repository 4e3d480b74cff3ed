from __future__ import annotations

import pytest

from shoprec.core.spelling import correct_query, correctable, typo_budget


@pytest.mark.parametrize(("word", "budget"), [("dril", 0), ("drill", 1), ("cordless", 1), ("dishwasher", 2)])
def test_the_typo_budget_grows_with_the_word(word: str, budget: int) -> None:
    assert typo_budget(word) == budget


@pytest.mark.parametrize("word", ["18v", "dw7480", "2x4", "1000w", "lamp", "无线电钻头套"])
def test_numbers_units_model_codes_short_words_and_cjk_runs_are_left_alone(word: str) -> None:
    assert not correctable(word)


def test_correct_query_replaces_only_the_words_fixed_and_keeps_the_rest_as_typed() -> None:
    fixes = {"cordelss": "cordless", "driil": "drill"}
    seen: list[str] = []

    def fix(w: str) -> str | None:
        seen.append(w)
        return fixes.get(w)

    c = correct_query("Cordelss  DRIIL 18V, kit", fix)
    assert c is not None
    assert c.corrected == "cordless  drill 18V, kit" and c.original == "Cordelss  DRIIL 18V, kit"
    assert c.as_dict()["words"] == [{"from": "Cordelss", "to": "cordless"}, {"from": "DRIIL", "to": "drill"}]
    assert seen == ["cordelss", "driil"]  # case-folded; 18v (a unit) and kit (short) never asked


def test_correct_query_is_none_when_nothing_changes() -> None:
    assert correct_query("cordless drill", lambda w: None) is None
    assert correct_query("cordless drill", lambda w: w) is None
