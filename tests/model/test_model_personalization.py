"""On the synthetic storefront, where shoppers' tastes are known to drive their clicks,
personal features improve search NDCG@10 over the same ranker without them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoprec.catalog.synthetic import generate_storefront
from shoprec.models.bundle import load_bundle
from shoprec.pipeline.build import build
from shoprec.pipeline.evaluate import evaluate_groups
from shoprec.pipeline.ltr import groups_from_events, train_ranker
from shoprec.serving.search import SearchService

pytestmark = pytest.mark.model


def test_personalized_search_beats_non_personalized(tmp_path: Path, teacher_dir: Path) -> None:
    sf = generate_storefront(n_products=1500, n_users=150, n_sessions=3000, seed=3)
    events = sorted(sf.events, key=lambda e: e.timestamp)
    cut = int(len(events) * 0.8)
    train, test = events[:cut], events[cut:]
    build(sf.products, tmp_path / "a", events=train, encoder_dir=teacher_dir, progress=False)
    service = SearchService(load_bundle(tmp_path / "a"))
    sessions = groups_from_events(test)
    personal = evaluate_groups(service, sessions, personalize=True)
    service.bundle.ranker, _ = train_ranker(service, groups_from_events(train), history=train, personalize=False)
    plain = evaluate_groups(service, sessions, personalize=False)
    assert personal["sessions"] == plain["sessions"] > 100
    assert personal["ndcg@10"] > plain["ndcg@10"], (personal, plain)
