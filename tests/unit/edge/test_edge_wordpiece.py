"""The pure-Python WordPiece tokenizer matches Hugging Face ``tokenizers``."""

from __future__ import annotations

from pathlib import Path

from shoprec.edge.wordpiece import WordPieceTokenizer
from support.tinybert import VOCAB, tiny_tokenizer

TEXTS = [
    "Cordless DRILLS set",
    "oak-table/leather couch.",
    "Garden hosed 12 steel",
    "Café naïve ÉTÉ tap",
    "unknownword drill",
    "東京 drill\ttap\x00 red",
    "   ",
    "drillers" * 20,
]


def test_matches_tokenizers_on_a_vocab_built_in_code(tmp_path: Path) -> None:
    ref = tiny_tokenizer()
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    mine = WordPieceTokenizer.from_file(tmp_path / "vocab.txt")
    for text in TEXTS:
        assert mine.encode(text) == ref.encode(text).ids, text


def test_truncates_like_the_encoder() -> None:
    ref = tiny_tokenizer()
    ref.enable_truncation(max_length=8)
    mine = WordPieceTokenizer(VOCAB, max_length=8)
    text = "the red oak table set of the blue drill"
    assert mine.encode(text) == ref.encode(text).ids
    assert len(mine.encode(text)) == 8
