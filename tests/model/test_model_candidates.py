"""Candidate generation on real artifacts: the learned ranker's match features are computed
only when it runs, and leaving them out changes nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoprec.models.bundle import load_bundle
from shoprec.serving.search import SearchService, query_context

pytestmark = pytest.mark.model


@pytest.mark.parametrize("query", ["cordless drill", "garden hose 50 ft", "电钻", "zzz unknown"])
def test_match_features_only_for_the_ranker(tiny_artifacts: Path, query: str) -> None:
    service = SearchService(load_bundle(tiny_artifacts))
    ctx = query_context(service.bundle, query)
    qvec = service.encode_queries([query])[0]
    full = service.candidates(ctx, qvec, None)
    lean = service.candidates(ctx, qvec, None, match_features=False)
    for name in ("rows", "bm25", "bm25_rank", "dense", "dense_rank"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(full, name), err_msg=name)
    assert not lean.token_in_title.any() and not lean.token_in_text.any() and not lean.bm25_title.any()
    if query == "cordless drill":  # the ranker's features are there when asked for
        assert full.token_in_title.any() and full.token_in_text.all(axis=1).any() and full.bm25_title.max() > 0
