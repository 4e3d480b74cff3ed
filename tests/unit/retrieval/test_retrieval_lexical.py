"""BM25 index: token presence read from posting lists agrees with scoring the whole catalog,
and a memory-mapped index serves plain ndarray views."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shoprec.retrieval.lexical import LexicalIndex, analyze

TEXTS = [
    "cordless drill with two batteries",
    "drill bit set for masonry",
    "garden hose 50 ft",
    "oak dining table",
    "cordless leaf blower",
    "hose reel cart",
    "電鑽 cordless",
]


def test_token_presence_matches_scoring_every_product(tmp_path: Path) -> None:
    built = LexicalIndex.build(TEXTS)
    built.save(tmp_path / "lex")
    index = LexicalIndex.load(tmp_path / "lex", mmap=True)
    rows = np.array([6, 0, 2, 4, 1], dtype=np.int64)
    for token in {t for text in TEXTS for t in analyze(text)} | {"absent"}:
        expected = index.scores(token)[rows] > 0 if token != "absent" else np.zeros(len(rows), dtype=bool)
        assert index.token_in(token, rows).tolist() == expected.tolist(), token
    assert index.token_in(analyze("cordless")[0], rows).tolist() == [True, True, False, True, False]


def test_a_memory_mapped_index_is_read_through_plain_arrays(tmp_path: Path) -> None:
    LexicalIndex.build(TEXTS).save(tmp_path / "lex")
    index = LexicalIndex.load(tmp_path / "lex", mmap=True)
    arrays = [v for v in index._model.scores.values() if isinstance(v, np.ndarray)]
    assert arrays and not any(isinstance(v, np.memmap) for v in arrays)
    assert np.argmax(index.scores("garden hose")) == 2
