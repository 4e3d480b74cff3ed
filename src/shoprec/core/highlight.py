"""Query words marked in a title, as HTML a page can insert as it is.

Every part of the title is HTML-escaped first; the words whose analysed form (the caller's
``analyse``, the same stemming the lexical index uses) is one of the query's are wrapped in
``<mark>``. "Drills" in a title is marked for the query "drill".
"""

from __future__ import annotations

import html
from collections.abc import Callable, Collection

from shoprec.core.text import WORD


def highlight(title: str, terms: Collection[str], analyse: Callable[[str], str]) -> str:
    """``title`` HTML-escaped, with each word whose ``analyse``d form is in ``terms`` in ``<mark>``."""
    out: list[str] = []
    end = 0
    for match in WORD.finditer(title):
        word = match.group(0)
        if analyse(word) in terms:
            out.append(html.escape(title[end : match.start()]))
            out.append(f"<mark>{html.escape(word)}</mark>")
            end = match.end()
    out.append(html.escape(title[end:]))
    return "".join(out)
