"""The title index the ranker's text features use, against plain set arithmetic."""

from __future__ import annotations

import numpy as np

from shoprec.core.text import char_ngrams, normalize
from shoprec.models.ranker import TitleIndex

TITLES = [
    "DEWALT 20-Volt Cordless Drill",
    "Oak Coffee Table",
    "",
    "无线电钻 Cordless",
    "cordless drill cordless drill",
]
BRANDS = ["dewalt", "", "", "", "ryobi"]
CATEGORIES = [frozenset({"tools"}), frozenset({"furniture"}), frozenset(), frozenset({"tools"}), frozenset({"tools"})]


def test_trigram_overlap_matches_set_intersection() -> None:
    index = TitleIndex.build(TITLES, BRANDS, CATEGORIES)
    assert index.norm == [normalize(t) for t in TITLES]
    rows = np.asarray([4, 0, 2, 1, 3, 0], dtype=np.int64)  # any order, repeats allowed
    for query in ("cordless drill", "coffe tabel", "zzz", "drill 20-volt"):
        q = frozenset(char_ngrams(query))
        shared, sizes = index.trigram_overlap(rows, q)
        for j, r in enumerate(rows):
            t = char_ngrams(TITLES[r])
            assert sizes[j] == len(t)
            assert shared[j] == len(q & t)


def test_no_query_trigrams_or_empty_rows_share_nothing() -> None:
    index = TitleIndex.build(TITLES, BRANDS, CATEGORIES)
    shared, sizes = index.trigram_overlap(np.asarray([0, 1], dtype=np.int64), frozenset())
    assert shared.tolist() == [0, 0] and sizes.tolist() == [len(char_ngrams(TITLES[0])), len(char_ngrams(TITLES[1]))]
    shared, sizes = index.trigram_overlap(np.asarray([2], dtype=np.int64), frozenset({"#co"}))
    assert shared.tolist() == [0] and sizes.tolist() == [0]
    shared, _ = index.trigram_overlap(np.zeros(0, dtype=np.int64), frozenset({"#co"}))
    assert shared.shape == (0,)
