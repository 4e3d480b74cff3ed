"""Candidate generation on real artifacts (the tiny encoder's): the learned ranker's match
features are computed only when it runs, and leaving them out changes nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoprec.models.bundle import load_bundle
from shoprec.serving.search import SearchService, query_context
from shoprec.types import Effort, Filters


@pytest.mark.parametrize("query", ["cordless drill", "garden hose 50 ft", "电钻", "zzz unknown"])
def test_match_features_only_for_the_ranker(tiny_static_artifacts: Path, query: str) -> None:
    service = SearchService(load_bundle(tiny_static_artifacts))
    ctx = query_context(service.bundle, query)
    qvec = service.encode_queries([query])[0]
    full = service.candidates(ctx, qvec, None)
    lean = service.candidates(ctx, qvec, None, match_features=False)
    for name in ("rows", "bm25", "bm25_rank", "dense", "dense_rank"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(full, name), err_msg=name)
    assert not lean.token_in_title.any() and not lean.token_in_text.any() and not lean.bm25_title.any()
    if query == "cordless drill":  # the ranker's features are there when asked for
        assert full.token_in_title.any() and full.token_in_text.all(axis=1).any() and full.bm25_title.max() > 0


@pytest.mark.parametrize(
    "filters", [Filters(), Filters(in_stock=True), Filters(max_price=50.0), Filters(category="no such > thing")]
)
def test_the_lexical_pipeline_answers_as_the_shared_candidate_path(
    tiny_static_artifacts: Path, filters: Filters
) -> None:
    """``bm25`` without ``explain`` skips the candidate set; ``explain`` still builds it: same
    products, same scores, same order, for every effort the ladder uses."""
    service = SearchService(load_bundle(tiny_static_artifacts))
    queries = ["cordless drill", "garden hose 50 ft", "电钻", "zzz unknown", "drill drill bits"]
    for query in queries:
        for k, effort in ((10, None), (5, Effort(lexical_candidates=3)), (20, Effort(lexical_candidates=30))):
            lean = service.search(query, k=k, filters=filters, pipeline="bm25", effort=effort)
            shared = service.search(query, k=k, filters=filters, pipeline="bm25", effort=effort, explain=True)
            assert [(h.product_id, h.score) for h in lean.hits] == [(h.product_id, h.score) for h in shared.hits]
            assert lean.ranker == shared.ranker == "none" and lean.pipeline == "bm25"
            assert "retrieve_ms" in lean.timings_ms and "total_ms" in lean.timings_ms
    assert service.search("cordless drill", pipeline="bm25").hits  # not vacuous


def test_a_deep_page_gets_as_many_results_as_the_catalog_allows(tiny_static_artifacts: Path) -> None:
    """Each retriever gives at least k candidates, whatever the configured depth: k = 25 over
    ranked depths of 3 still answers 25 products (the tiny shop has 30)."""
    service = SearchService(load_bundle(tiny_static_artifacts), lexical_candidates=3, dense_candidates=3)
    for pipeline in ("full", "hybrid", "dense"):
        res = service.search("cordless drill", k=25, pipeline=pipeline)  # type: ignore[arg-type]
        assert len(res.hits) == 25, pipeline
    assert len(service.search("cordless drill", k=3, pipeline="full").hits) == 3
