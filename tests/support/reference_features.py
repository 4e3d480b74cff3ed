"""The ranker's features the plain way, as shoprec computed them before they were computed
in bulk: one Python expression per candidate, whole-catalog BM25 for the title scores and a
set intersection per product. The oracle the bulk features are checked against (to 1e-6)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from shoprec.core.text import char_ngrams
from shoprec.models.ranker import BASE_FEATURE_NAMES, FEATURE_NAMES, MISSING_RANK, CandidateSet, QueryContext
from shoprec.serving.search import SearchService


def reference_matches(service: SearchService, ctx: QueryContext, rows: npt.NDArray[np.int64]) -> dict[str, np.ndarray]:
    """BM25 over the whole catalog, title BM25 over the whole catalog, and each query token's
    presence per row from its posting list."""
    b = service.bundle
    title_in = np.zeros((len(rows), len(ctx.tokens)), dtype=np.bool_)
    text_in = np.zeros((len(rows), len(ctx.tokens)), dtype=np.bool_)
    for j, tok in enumerate(ctx.tokens):
        text_in[:, j] = b.lexical.token_in(tok, rows)
        title_in[:, j] = b.lexical_title.token_in(tok, rows)
    return {
        "bm25": b.lexical.scores(ctx.text)[rows],
        "bm25_title": b.lexical_title.scores(ctx.text)[rows] if ctx.tokens else np.zeros(len(rows), np.float32),
        "token_in_title": title_in,
        "token_in_text": text_in,
    }


def reference_features(
    service: SearchService, ctx: QueryContext, cand: CandidateSet, user_features: np.ndarray | None
) -> npt.NDArray[np.float32]:
    c = service.bundle.catalog
    n = len(cand.rows)
    f = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    nb = len(BASE_FEATURE_NAMES)
    f[:, nb:] = user_features if user_features is not None else np.nan
    if n == 0:
        return f
    rows = cand.rows
    max_bm25, max_dense = float(cand.bm25.max()), float(cand.dense.max())
    nq = max(1, len(ctx.tokens))
    f[:, 0] = cand.bm25
    f[:, 1] = cand.bm25 / max_bm25 if max_bm25 > 0 else 0.0
    f[:, 2] = np.log1p(np.minimum(cand.bm25_rank, MISSING_RANK))
    f[:, 3] = cand.bm25_title
    f[:, 4] = cand.dense
    f[:, 5] = cand.dense - max_dense
    f[:, 6] = np.log1p(np.minimum(cand.dense_rank, MISSING_RANK))
    f[:, 7] = cand.fused
    if ctx.tokens:
        f[:, 8] = cand.token_in_title.sum(axis=1) / nq
        f[:, 9] = cand.token_in_text.sum(axis=1) / nq
        f[:, 10] = cand.token_in_title.all(axis=1)
        f[:, 11] = cand.token_in_title[:, -1]
    titles = [c.titles[r] for r in rows]
    norm = [c.title_index.norm[r] for r in rows]
    phrase = ctx.normalized
    if phrase:
        f[:, 12] = [phrase in t for t in norm]
    q_tri = ctx.trigrams
    if q_tri:
        for i, title in enumerate(titles):
            t = char_ngrams(title)
            if t:
                shared = len(q_tri & t)
                f[i, 13] = shared / len(q_tri | t)
                f[i, 14] = shared / len(q_tri)
    if ctx.numeric:
        f[:, 15] = [sum(1 for x in ctx.numeric if x in t) / len(ctx.numeric) for t in norm]
    else:
        f[:, 15] = np.nan
    f[:, 18] = [(1.0 if b in phrase else 0.0) if b else np.nan for b in (c.brands_norm[r] for r in rows)]
    q_words = set(phrase.split())
    if q_words:
        f[:, 19] = [len(s & q_words) / len(q_words) if s else 0.0 for s in (c.category_tokens[r] for r in rows)]
    f[:, 16] = len(ctx.all_tokens)
    f[:, 17] = c.title_lengths[rows]
    f[:, 20] = np.log1p(c.popularity[rows])
    f[:, 21] = np.log1p(c.price[rows])
    f[:, 22] = c.in_stock[rows]
    return f
