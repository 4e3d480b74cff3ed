"""Query-like texts generated from catalog texts, for distilling encoders without query logs.

People type short, lower-cased fragments of what they want: the first words of a title, or
a few words from it. These functions make such strings, seeded, with no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def generate_queries(texts: Sequence[str], *, seed: int = 0, per_text: int = 3) -> list[str]:
    """Short query-like strings from catalog texts: lower-cased prefixes (2–4 words, the
    title's start) and random word n-grams (1–3 words), deduplicated, in a seeded order."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    for text in texts:
        words = text.lower().replace(". ", " ").split()
        if not words:
            continue
        out[" ".join(words[: rng.randint(2, 4)])] = None
        for _ in range(max(0, per_text - 1)):
            n = rng.randint(1, 3)
            start = rng.randrange(max(1, len(words) - n + 1))
            out[" ".join(words[start : start + n])] = None
    queries = list(out)
    rng.shuffle(queries)
    return queries


def training_texts(product_texts: Sequence[str], *, seed: int = 0, max_texts: int = 40_000) -> list[str]:
    """Catalog texts and generated queries, half each where there are enough, seeded, capped."""
    rng = random.Random(seed)
    products = list(dict.fromkeys(product_texts))
    rng.shuffle(products)
    queries = generate_queries(products[:max_texts], seed=seed)
    half = max_texts // 2
    take_p = products[: max(half, max_texts - len(queries))]
    take_q = queries[: max_texts - len(take_p)]
    out = take_p + take_q
    rng.shuffle(out)
    return out
