"""The ranker's features computed in bulk (compiled passes over the postings and the
per-product id sets) equal the plain per-candidate computation (tests/support/
reference_features.py) to 1e-6, on real artifacts, for queries of every shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoprec.models.bundle import load_bundle
from shoprec.serving.search import SearchService, query_context
from support.reference_features import reference_features, reference_matches
from support.tinyshop import tiny_products


def _queries() -> list[str]:
    products = tiny_products()
    titles = [p.title for p in products[:40]]
    words = [t.split()[0] for t in titles]
    brands = sorted({p.brand for p in products if p.brand})[:5]
    categories = sorted({p.category.split(">")[-1].strip() for p in products})[:5]
    odd = ["cordless drill", "drill drill bits", "garden hose 50 ft", "电钻", "zzz unknown", "20v 5.0ah", "a", "the of"]
    return titles + words + [f"{b} {w}" for b, w in zip(brands, words, strict=False)] + categories + odd


@pytest.fixture(scope="module")
def service(tiny_static_artifacts: Path) -> SearchService:
    return SearchService(load_bundle(tiny_static_artifacts))


def test_candidate_matches_equal_the_whole_catalog_scores(service: SearchService) -> None:
    checked = 0
    for query in _queries():
        ctx = query_context(service.bundle, query)
        cand = service.candidates(ctx, service.encode_queries([query])[0], None)
        ref = reference_matches(service, ctx, cand.rows)
        for name, want in ref.items():
            np.testing.assert_array_equal(getattr(cand, name), want, err_msg=f"{name} for {query!r}")
        checked += int(cand.token_in_text.any())
    assert checked > 30  # most queries match something: the comparison is not vacuous


def test_bulk_features_equal_the_per_candidate_ones(service: SearchService) -> None:
    users = [None, *sorted({e.user_id for e in service.bundle.user_events})[:3]]
    compared = 0
    for query in _queries():
        ctx = query_context(service.bundle, query)
        cand = service.candidates(ctx, service.encode_queries([query])[0], None)
        for user_id in users:
            profile = service.users.get(user_id)
            got = service.features(ctx, cand, profile)
            want = reference_features(service, ctx, cand, service.users.features(profile, cand.rows))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, equal_nan=True, err_msg=query)
            compared += got.size
    assert compared > 10_000
