from __future__ import annotations

import pytest

from shoprec.core.synonyms import Synonyms
from shoprec.errors import RowError


def test_two_way_and_one_way_rules() -> None:
    s = Synonyms.parse(["# furniture", "couch, sofa, Settee", "", "tv => television, flat screen  # one way"])
    assert s.expand("grey couch") == ("sofa", "settee")
    assert s.expand("settee") == ("couch", "sofa")
    assert s.expand("TV stand") == ("television", "flat screen")
    assert s.expand("television") == ()  # one-way: not back
    assert s.expand("couches") == ()  # whole words only
    assert s.expand("couch sofa") == ("settee",)  # nothing the query holds already


def test_phrases_match_as_whole_words() -> None:
    s = Synonyms.parse(["air conditioner => ac unit"])
    assert s.expand("window air conditioner") == ("ac unit",)
    assert s.expand("air") == ()


@pytest.mark.parametrize(
    ("line", "why"),
    [("couch", "at least two"), ("=> sofa", "both sides"), ("a => b => c", "one '=>'"), ("tv =>", "both sides")],
)
def test_a_malformed_line_names_the_file_and_the_line(line: str, why: str) -> None:
    with pytest.raises(RowError, match=rf"shop\.txt:2: .*{why}"):
        Synonyms.parse(["sofa, couch", line], source="shop.txt")
