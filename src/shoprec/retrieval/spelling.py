"""The catalog's vocabulary for typo correction and autocomplete: the only module that
imports rapidfuzz.

A :class:`Lexicon` is built once per catalog version from the product titles and brands:
each word with the number of products whose title holds it, and the phrases (a word and
the word after it) with theirs. Prefix lookups bisect one sorted array of words and
phrases; nearest words are found by rapidfuzz's optimal-string-alignment distance (a swap
of adjacent letters is one edit) over the words of nearby lengths, in compiled code.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
from rapidfuzz import process
from rapidfuzz.distance import OSA

from shoprec.core.spelling import correctable, typo_budget
from shoprec.core.text import WORD, normalize

MIN_FUZZY_PREFIX_CHARS = 4  # shorter prefixes match too much to be worth correcting
MAX_FUZZY_PREFIX_CHARS = 12


class Lexicon:
    """Words and two-word phrases of the catalog's titles with their product counts."""

    def __init__(self, words: Counter[str], phrases: Counter[str]) -> None:
        self.words = words
        entries = sorted({**phrases, **words}.items())
        self._keys = [k for k, _ in entries]  # sorted: prefixes are a bisected range
        self._counts = np.fromiter((c for _, c in entries), dtype=np.int64, count=len(entries))
        # correction targets by length, and by length and first letter: letters only (digits
        # are never corrected to or from)
        by_length: dict[int, list[str]] = {}
        by_initial: dict[tuple[int, str], list[str]] = {}
        for w in words:
            if w.isalpha():
                by_length.setdefault(len(w), []).append(w)
                by_initial.setdefault((len(w), w[0]), []).append(w)
        self._by_length = by_length
        self._by_initial = by_initial
        # the prefixes of the words by length and first letter, with the products' count
        prefixes: dict[tuple[int, str], Counter[str]] = {}
        for w, c in words.items():
            if w.isalpha():
                for n in range(MIN_FUZZY_PREFIX_CHARS, min(len(w), MAX_FUZZY_PREFIX_CHARS) + 1):
                    prefixes.setdefault((n, w[0]), Counter())[w[:n]] += c
        self._prefixes = {key: list(c) for key, c in prefixes.items()}
        self._prefix_counts = prefixes

    @classmethod
    def build(cls, titles: Iterable[str], brands: Iterable[str] = ()) -> Lexicon:
        """Each title's distinct words and adjacent pairs counted once per product; brands as words."""
        words: Counter[str] = Counter()
        phrases: Counter[str] = Counter()
        for title in titles:
            toks = WORD.findall(normalize(title))
            words.update(set(toks))
            phrases.update({f"{a} {b}" for a, b in zip(toks, toks[1:], strict=False)})
        for brand in brands:
            words.update(set(WORD.findall(normalize(brand))))
        return cls(words, phrases)

    def __contains__(self, word: object) -> bool:
        return word in self.words

    def count(self, word: str) -> int:
        return self.words.get(word, 0)

    def nearest(self, word: str, max_distance: int | None = None) -> str | None:
        """The catalog word closest to ``word`` within ``max_distance`` edits (default: its
        :func:`typo_budget`), the most frequent of the closest; None when none is that close.
        Words with the same first letter are preferred (shoppers rarely mistype the first
        letter, and those words are a twentieth of the vocabulary to compare): the others are
        compared only when none of them is close enough."""
        budget = typo_budget(word) if max_distance is None else max_distance
        if budget <= 0 or not word:
            return None
        lengths = range(len(word) - budget, len(word) + budget + 1)
        best = self._closest(word, budget, [self._by_initial.get((n, word[0])) for n in lengths])
        if best is None:
            best = self._closest(word, budget, [self._by_length.get(n) for n in lengths])
        return best

    def _closest(self, word: str, budget: int, buckets: Iterable[list[str] | None]) -> str | None:
        best: tuple[int, int, str] | None = None
        for bucket in buckets:
            if not bucket:
                continue
            for choice, distance, _ in process.extract(
                word, bucket, scorer=OSA.distance, score_cutoff=budget, limit=None
            ):
                key = (int(distance), -self.words[choice], choice)
                if best is None or key < best:
                    best = key
        return None if best is None else best[2]

    def completions(self, prefix: str, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` words and phrases starting with ``prefix``, most frequent first
        (ties alphabetical)."""
        if limit <= 0:
            return []
        keys = self._keys
        lo = bisect.bisect_left(keys, prefix)
        hi = bisect.bisect_left(keys, prefix + "\U0010ffff")
        if lo >= hi:
            return []
        counts: npt.NDArray[np.int64] = self._counts[lo:hi]
        if hi - lo > limit:  # the limit-th highest count; of the words with it, the first alphabetically
            kth = np.partition(counts, hi - lo - limit)[hi - lo - limit]
            above = np.flatnonzero(counts > kth)
            top = np.concatenate([above, np.flatnonzero(counts == kth)[: limit - len(above)]])
        else:
            top = np.arange(hi - lo)
        order = sorted(top.tolist(), key=lambda i: (-int(counts[i]), i))
        return [(keys[lo + i], int(counts[i])) for i in order]

    def fuzzy_prefixes(self, prefix: str, limit: int = 3) -> list[str]:
        """Up to ``limit`` prefixes of catalog words within ``prefix``'s typo budget (of the same
        length and first letter), closest first, then those of the most products: what a
        shopper still typing a misspelt word meant. Empty for prefixes :func:`correctable`
        refuses (short, holding a digit, or CJK)."""
        if not correctable(prefix):  # too short, a digit, or CJK
            return []
        budget = typo_budget(prefix)
        key = (len(prefix), prefix[0])
        bucket = self._prefixes.get(key)
        if not bucket:
            return []
        counts = self._prefix_counts[key]
        found = process.extract(prefix, bucket, scorer=OSA.distance, score_cutoff=budget, limit=None)
        found.sort(key=lambda f: (f[1], -counts[f[0]], f[0]))
        return [f[0] for f in found[:limit]]
