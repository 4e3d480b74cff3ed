"""Autocomplete: completions of what a shopper is typing, and the products it finds.

Completions come from two places, each ranked by frequency:

- ``queries``: the shop's own past queries (the ``query`` of its events: those the artifacts
  were built with and those posted since), by how many events carried them;
- ``catalog``: words and two-word phrases of the product titles (a
  :class:`~shoprec.retrieval.spelling.Lexicon`), by how many products' titles hold them.

The words already typed in full are corrected as a search corrects them; the word being typed
is completed by prefix and, when no catalog word starts with it, by the catalog's prefixes
within its typo budget ("crodl" completes as "cordless"). Past queries come first, then the
catalog's completions, each text once. The products are the top BM25 matches of the first
completion (of the text as typed when there is none), among those on sale.
"""

from __future__ import annotations

import bisect
import functools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from shoprec.core.spelling import Correction, WordCorrection, correctable
from shoprec.core.text import normalize
from shoprec.models.bundle import CatalogArrays
from shoprec.retrieval.lexical import LexicalIndex
from shoprec.retrieval.spelling import Lexicon
from shoprec.types import Event, Filters, Hit

Source = Literal["catalog", "queries"]
PRODUCTS_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Suggestion:
    text: str
    source: Source
    count: int


@dataclass(frozen=True, slots=True)
class Suggestions:
    query: str
    suggestions: list[Suggestion]
    products: tuple[Hit, ...]
    correction: Correction | None


class QueryLog:
    """Past queries by normalised text, with how many events carried each; completions by
    bisecting the sorted texts. Written and read on one thread (the event loop's)."""

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self.counts: Counter[str] = Counter()
        self._sorted: list[str] = []
        self.add(events)

    def add(self, events: Iterable[Event]) -> None:
        for e in events:
            if e.query is None:
                continue
            text = normalize(e.query)
            if not text:
                continue
            if text not in self.counts:
                bisect.insort(self._sorted, text)
            self.counts[text] += 1

    def completions(self, prefix: str, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` past queries starting with ``prefix``, most frequent first."""
        texts = self._sorted
        lo = bisect.bisect_left(texts, prefix)
        hi = bisect.bisect_left(texts, prefix + "\U0010ffff")
        found = sorted(texts[lo:hi], key=lambda t: (-self.counts[t], t))
        return [(t, self.counts[t]) for t in found[:limit]]


class Suggester:
    """Suggestions over one catalog version (see the module docstring)."""

    def __init__(
        self,
        lexicon: Lexicon,
        lexical: LexicalIndex,
        catalog: CatalogArrays,
        queries: QueryLog,
        fix_word: Callable[[str], str | None],
    ) -> None:
        self.lexicon = lexicon
        self.lexical = lexical
        self.catalog = catalog
        self.queries = queries
        self.fix_word = fix_word  # a typed-in-full word's correction (None: keep it)
        # consecutive keystrokes mostly share their first completion: its products are kept
        # (a product taken off sale since is dropped when the hits are rendered)
        self._top_products = functools.lru_cache(maxsize=PRODUCTS_CACHE_ENTRIES)(self._products)

    def suggest(self, q: str, limit: int, products: int = 0) -> Suggestions:
        words = normalize(q).split()
        typing = bool(words) and not q[-1:].isspace()  # the last word is still being typed
        done, last = (words[:-1], words[-1]) if typing else (words, "")
        fixes: list[WordCorrection] = []
        fixed_done = []
        for w in done:
            fixed = self.fix_word(w) if correctable(w) else None
            if fixed is not None and fixed != w:
                fixes.append(WordCorrection(w, fixed))
            fixed_done.append(fixed or w)
        prefix = last  # the word being typed, or "" after a space: the next word
        if last and not self.lexicon.completions(last, 1):
            fuzzy = self.lexicon.fuzzy_prefixes(last, limit=1)
            if fuzzy:
                prefix = fuzzy[0]
                fixes.append(WordCorrection(last, prefix))
        typed = " ".join([*fixed_done, prefix]) if typing else " ".join(fixed_done) + " "
        out: dict[str, Suggestion] = {}
        for text, count in self.queries.completions(typed.lstrip(), limit):
            out.setdefault(text, Suggestion(text, "queries", count))
        for text, count in self._catalog(fixed_done, prefix, limit):
            out.setdefault(text, Suggestion(text, "catalog", count))
        suggestions = list(out.values())[:limit]
        correction = None
        if fixes:
            correction = Correction(original=q, corrected=typed.strip(), words=tuple(fixes))
        target = suggestions[0].text if suggestions else (correction.corrected if correction else q)
        return Suggestions(q, suggestions, self._top_products(target, products), correction)

    def _catalog(self, done: list[str], prefix: str, limit: int) -> list[tuple[str, int]]:
        """Completions of the typed words: the phrases that continue the last full word with
        ``prefix`` first, then the words that complete ``prefix`` after all the typed words."""
        head = " ".join(done)
        found: list[tuple[str, int]] = []
        if done:
            before = " ".join(done[:-1])
            for phrase, count in self.lexicon.completions(f"{done[-1]} {prefix}", limit):
                found.append((f"{before} {phrase}".strip(), count))
        if prefix and len(found) < limit:
            for word, count in self.lexicon.completions(prefix, limit):
                found.append((f"{head} {word}".strip(), count))
        return found

    def _products(self, text: str, n: int) -> tuple[Hit, ...]:
        if n <= 0:
            return ()
        rows, scores = self.lexical.top(text, n, self.catalog.allowed(Filters()))
        products = self.catalog.products
        return tuple(Hit(products[r].id, float(s)) for r, s in zip(rows.tolist(), scores.tolist(), strict=True))
