"""Text normalisation and tokenisation for lexical matching, in any Unicode script.

Latin-like words are lower-cased and stemmed by the caller's stemmer; runs of CJK
characters (which carry no spaces) become character unigrams and bigrams so that
Chinese, Japanese and Korean text is matched instead of silently dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

# what a word is wherever the shop reads text: the tokeniser, the spelling lexicon, typo
# correction and highlighting (a CJK run is one match; the tokeniser splits it further)
WORD = re.compile(r"\w+", re.UNICODE)
# the ranges _is_cjk accepts, for a one-pass check that a text holds none
_CJK = re.compile(
    "[\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002fa1f\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af\u1100-\u11ff]"
)


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= cp <= 0x4DBF  # extension A
        or 0x20000 <= cp <= 0x2FA1F  # extensions B.. and compatibility supplement
        or 0xF900 <= cp <= 0xFAFF  # compatibility ideographs
        or 0x3040 <= cp <= 0x30FF  # hiragana, katakana
        or 0xAC00 <= cp <= 0xD7AF  # hangul syllables
        or 0x1100 <= cp <= 0x11FF  # hangul jamo
    )


def has_cjk(text: str) -> bool:
    """Whether the text holds a CJK character (words of those scripts carry no spaces)."""
    return _CJK.search(text) is not None


def normalize(text: str) -> str:
    """NFKC, lower-case, collapse whitespace. Used for cache keys and display matching."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split())


def _split_word(word: str) -> list[str]:
    """Split a ``\\w+`` match into alternating CJK and non-CJK runs."""
    runs: list[str] = []
    current = ""
    current_cjk = False
    for ch in word:
        cjk = _is_cjk(ch)
        if current and cjk != current_cjk:
            runs.append(current)
            current = ""
        current += ch
        current_cjk = cjk
    if current:
        runs.append(current)
    return runs


def tokenize(text: str, stem: Callable[[str], str] | None = None) -> list[str]:
    """Tokens for BM25 and field matching.

    >>> tokenize("Cordless DRILL 18V")
    ['cordless', 'drill', '18v']
    >>> tokenize("无线电钻")
    ['无', '线', '电', '钻', '无线', '线电', '电钻']
    """
    text = normalize(text)
    if _CJK.search(text) is None:  # the common case: every word is one non-CJK run
        return [_word_token(run, stem) for run in WORD.findall(text)]
    out: list[str] = []
    for match in WORD.finditer(text):
        for run in _split_word(match.group(0)):
            if _is_cjk(run[0]):
                out.extend(run)
                out.extend(run[i : i + 2] for i in range(len(run) - 1))
            else:
                out.append(_word_token(run, stem))
    return out


def _word_token(run: str, stem: Callable[[str], str] | None) -> str:
    """A non-CJK run as a token: numbers and lone symbols as they are, words stemmed."""
    if run.isdigit() or len(run) == 1 and not run.isalnum() or stem is None:
        return run
    return stem(run)


def char_ngrams(text: str, n: int = 3) -> set[str]:
    """Character n-grams of the normalised text with word boundaries, for typo-tolerant overlap."""
    grams: set[str] = set()
    for word in normalize(text).split():
        padded = f"#{word}#"
        if len(padded) <= n:
            grams.add(padded)
            continue
        grams.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    sa, sb = set(a), set(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)
