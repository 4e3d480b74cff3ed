"""Typo tolerance for query words: how many typos a word may hold, which words are left
alone, and a query's corrections ("did you mean").

As the shop search engines do (Meilisearch, Typesense): words under five letters are taken
as typed, words of five to eight letters may hold one typo, longer words two; a swap of two
adjacent letters counts as one (Damerau, optimal string alignment). Numbers, units and model
codes (any word holding a digit) are never corrected, nor is a word the catalog knows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shoprec.core.text import WORD, has_cjk

ONE_TYPO_MIN_CHARS = 5
TWO_TYPOS_MIN_CHARS = 9


def typo_budget(word: str) -> int:
    """How many typos (edits) a word of this length may hold: 0 under 5 letters, 1 up to 8, else 2."""
    n = len(word)
    return 0 if n < ONE_TYPO_MIN_CHARS else 1 if n < TWO_TYPOS_MIN_CHARS else 2


def correctable(word: str) -> bool:
    """Whether a word may be corrected at all: letters only (numbers, units such as ``18v`` and
    model codes hold digits), long enough to be allowed a typo, and no CJK (a run of CJK
    characters is a phrase, not a word)."""
    return word.isalpha() and typo_budget(word) > 0 and not has_cjk(word)


@dataclass(frozen=True, slots=True)
class WordCorrection:
    original: str  # as typed
    corrected: str


@dataclass(frozen=True, slots=True)
class Correction:
    """A query as typed, as corrected, and each word replaced."""

    original: str
    corrected: str
    words: tuple[WordCorrection, ...]

    def as_dict(self) -> dict[str, Any]:
        """The API's form: ``{"original", "corrected", "words": [{"from", "to"}]}``."""
        return {
            "original": self.original,
            "corrected": self.corrected,
            "words": [{"from": w.original, "to": w.corrected} for w in self.words],
        }


WordFix = Callable[[str], "str | None"]


def correct_query(text: str, fix: WordFix) -> Correction | None:
    """``text`` with each word ``fix`` replaces (``fix`` gets the case-folded word and returns
    its correction, or None to keep it), the rest of the text as typed; None when no word changed."""
    parts: list[str] = []
    words: list[WordCorrection] = []
    end = 0
    for match in WORD.finditer(text):
        word = match.group(0)
        fixed = fix(word.casefold()) if correctable(word) else None
        if fixed is not None and fixed != word.casefold():
            parts.append(text[end : match.start()])
            parts.append(fixed)
            end = match.end()
            words.append(WordCorrection(word, fixed))
    if not words:
        return None
    parts.append(text[end:])
    return Correction(original=text, corrected="".join(parts), words=tuple(words))
