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


def full_search(index: LexicalIndex, query: str, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every product's score and the rows with a positive one (and ``allowed``), best first,
    ties by lower row: what sorting every score gives, the reference for :meth:`top`."""
    scores = index.scores(query)
    masked = scores if allowed is None else np.where(allowed, scores, 0)
    positive = np.flatnonzero(masked > 0)
    return scores, positive[np.lexsort((positive, -masked[positive]))]


def test_top_finds_the_best_rows_as_sorting_every_score_would() -> None:
    """Ties (identical texts) break by lower row, filters and repeated tokens included."""
    texts = [*TEXTS, "cordless drill with two batteries", "garden hose 50 ft", "hose hose hose", "drill"]
    index = LexicalIndex.build(texts)
    rng = np.random.default_rng(3)
    queries = ["cordless drill", "hose", "garden hose hose", "drill drill bit", "電鑽", "absent words", "x"]
    for query in queries:
        for allowed in (None, rng.random(len(texts)) < 0.6, np.zeros(len(texts), dtype=bool)):
            scores, expected = full_search(index, query, allowed)
            for n in (1, 2, 3, 5, 100):
                rows, got = index.top(query, n, allowed)
                assert rows.tolist() == expected[:n].tolist(), (query, n, allowed)
                np.testing.assert_array_equal(got, scores[rows])
    rows, _ = index.top("cordless drill", 2)
    assert rows.tolist() == [0, 7]  # the two identical texts, in row order


def test_top_gives_the_rows_and_scores_of_a_full_search() -> None:
    """``top`` reads only the postings: the same rows as sorting every score and exactly the
    scores of full scoring, on a corpus where many rows tie and postings are long, and its accumulator
    is clean again after every query."""
    rng = np.random.default_rng(7)
    words = ["drill", "hose", "garden", "oak", "table", "cordless", "bit", "reel", "lamp", "saw"]
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 6))) for _ in range(400)]
    index = LexicalIndex.build(texts)
    queries = ["drill", "garden hose", "hose hose garden", "saw lamp oak table", "absent", "drill absent", "bit bit"]
    for query in queries:
        for allowed in (None, rng.random(len(texts)) < 0.5, np.zeros(len(texts), dtype=bool)):
            scores, expected = full_search(index, query, allowed)
            for n in (0, 1, 3, 10, 50, 10_000):
                rows, got = index.top(query, n, allowed)
                assert rows.tolist() == expected[:n].tolist(), (query, n)
                np.testing.assert_array_equal(got, scores[rows])
            assert not index._scratch.acc.any()


def test_top_prunes_common_tokens_without_changing_the_answer() -> None:
    """A Zipf-like vocabulary: a few tokens in most texts (the postings ``top`` skips once
    the rare tokens have set a high enough bar), many rare ones. Every query's rows and scores
    are those of a full search, with and without filters, repeated tokens included."""
    rng = np.random.default_rng(11)
    vocab = [f"w{i}" for i in range(300)]
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    texts = [" ".join(rng.choice(vocab, size=rng.integers(2, 12), p=p)) for _ in range(3000)]
    index = LexicalIndex.build(texts)
    for trial in range(300):
        words = list(rng.choice(vocab, size=rng.integers(1, 7), p=np.sqrt(p) / np.sqrt(p).sum()))
        if trial % 5 == 0:
            words.append(words[0])  # a repeated token counts twice
        query = " ".join(words)
        allowed = None if trial % 3 else rng.random(len(texts)) < 0.3
        scores, expected = full_search(index, query, allowed)
        for n in (1, 10, 40):
            rows, got = index.top(query, n, allowed)
            assert rows.tolist() == expected[:n].tolist(), (query, n)
            np.testing.assert_array_equal(got, scores[rows])
    assert not index._scratch.acc.any()
