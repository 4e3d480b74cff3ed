from __future__ import annotations

from shoprec.retrieval.spelling import Lexicon

TITLES = [
    "Cordless Drill Driver",
    "Cordless Drill Kit",
    "Cordless Leaf Blower",
    "Corded Hammer Drill",
    "Hammer Drill Bits",
    "Claw Hammer",
    "Garden Hose",
    "Garden Hoses Reel",
    "Dishwasher Stainless",
    "Dishwashers Rack",
    "Kordless Toy",
]
LEX = Lexicon.build(TITLES, brands=["DeWalt"])


def test_words_are_counted_once_per_title_and_brands_are_words() -> None:
    assert LEX.count("cordless") == 3 and LEX.count("drill") == 4 and LEX.count("dewalt") == 1
    assert "cordless" in LEX and "cordles" not in LEX


def test_an_adjacent_swap_is_one_edit() -> None:
    assert LEX.nearest("cordelss") == "cordless"  # 8 letters: one typo allowed
    assert LEX.nearest("hamemr") == "hammer"


def test_the_budget_grows_with_the_length() -> None:
    assert LEX.nearest("drll") is None  # under five letters: none
    assert LEX.nearest("cordlessss") == "cordless"  # ten letters: two
    assert LEX.nearest("cordlesssss") is None  # three edits
    assert LEX.nearest("dishwahser") == "dishwasher"
    assert LEX.nearest("diswahser") == "dishwasher"  # ten... nine letters, two edits


def test_the_most_frequent_of_the_closest_wins_and_the_first_letter_is_kept_first() -> None:
    assert LEX.nearest("gardn") == "garden"
    # "xordless" is one edit from both; "cordless" (3 titles) beats "kordless" (1) only by count,
    # but neither keeps the first letter: the most frequent wins
    assert LEX.nearest("xordless") == "cordless"
    assert LEX.nearest("kordles") == "kordless"  # the same first letter is preferred


def test_completions_by_prefix_most_frequent_first() -> None:
    assert LEX.completions("cord", 3) == [("cordless", 3), ("cordless drill", 2), ("corded", 1)]
    assert LEX.completions("hammer d", 5) == [("hammer drill", 2)]
    assert LEX.completions("zzz", 5) == [] and LEX.completions("cord", 0) == []


def test_fuzzy_prefixes_keep_the_first_letter_and_the_budget() -> None:
    assert LEX.fuzzy_prefixes("croded") == ["corded"]
    assert LEX.fuzzy_prefixes("crdl") == []  # four letters: no typo allowed
    assert LEX.fuzzy_prefixes("cord1") == []
