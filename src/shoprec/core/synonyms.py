"""A shop's synonyms, applied at query time (query expansion for lexical retrieval).

The list is text, one rule a line (blank lines and ``#`` comments skipped), in the syntax
Elasticsearch and Solr use:

- ``couch, sofa, settee``: two-way, each term searches the others too;
- ``tv => television``: one-way, a query holding ``tv`` searches ``television`` too (and a
  query for ``television`` is left alone); several terms either side are comma-separated.

A term is one word or a phrase, matched as whole words of the normalised query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shoprec.core.text import normalize
from shoprec.errors import RowError


def _terms(side: str) -> list[str]:
    return [t for t in (normalize(x) for x in side.split(",")) if t]


@dataclass(frozen=True, slots=True)
class Synonyms:
    """Each term and what a query holding it also searches."""

    expansions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, lines: Iterable[str], source: str = "<synonyms>") -> Synonyms:
        """The rules of ``lines``; a malformed line is a :class:`RowError` naming ``source`` and the line."""
        expansions: dict[str, list[str]] = {}

        def add(term: str, targets: Iterable[str]) -> None:
            known = expansions.setdefault(term, [])
            known.extend(t for t in targets if t != term and t not in known)

        for number, raw in enumerate(lines, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if "=>" in line:
                left, sep, right = line.partition("=>")
                if "=>" in right:
                    raise RowError(source, number, "a rule holds one '=>'")
                sources, targets = _terms(left), _terms(right)
                if not sources or not targets:
                    raise RowError(source, number, "a one-way rule needs terms on both sides of '=>'")
                for term in sources:
                    add(term, targets)
            else:
                terms = _terms(line)
                if len(terms) < 2:
                    raise RowError(source, number, "a two-way rule needs at least two comma-separated terms")
                for term in terms:
                    add(term, terms)
        return cls({k: tuple(v) for k, v in expansions.items() if v})

    @property
    def words(self) -> frozenset[str]:
        """Every word of every term: the shop's own vocabulary, never corrected as a typo."""
        return frozenset(w for term, targets in self.expansions.items() for t in (term, *targets) for w in t.split())

    def __bool__(self) -> bool:
        return bool(self.expansions)

    def expand(self, query: str) -> tuple[str, ...]:
        """The terms the query's words (and phrases) also search, in rule order, none it holds already."""
        words = normalize(query).split()
        padded = f" {' '.join(words)} "
        out: list[str] = []
        for term, targets in self.expansions.items():
            if f" {term} " in padded:
                out.extend(t for t in targets if t not in out and f" {t} " not in padded)
        return tuple(out)
