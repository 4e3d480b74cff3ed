"""Recommendations over a real server: known and unknown users, near-line updates, restart.

The storefront's artifacts are built with the tiny encoder over its own words; the
sequential recommender is a real SASRec (trained with torch, under 30 s)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shoprec.catalog.synthetic import generate_storefront
from shoprec.http.app import create_app
from shoprec.models.recommender import BlendedRecommender
from shoprec.pipeline.build import BuildOptions, build
from support.apikeyhelp import unsigned_settings
from support.live import FULL_QUALITY, LiveServer, wait_ready
from support.tinyencoder import catalog_texts, write_encoder


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    sf = generate_storefront(n_products=400, n_users=60, n_sessions=800, seed=5)
    root = tmp_path_factory.mktemp("shop")
    encoder = write_encoder(root / "encoder", catalog_texts(sf.products))
    out = root / "artifacts"
    build(
        sf.products,
        out,
        events=sf.events,
        encoder_dir=encoder,
        progress=False,
        options=BuildOptions(max_train_queries=300, recommender_max_train_s=30),
    )
    return out, sf


def test_recommend_known_unknown_and_near_line(
    live_server: Callable[[Any], LiveServer], shop: tuple[Path, Any], tmp_path: Path
) -> None:
    art, sf = shop
    assert BlendedRecommender.read_weight(art / "recommender") is not None  # known users get the blend
    settings, headers = unsigned_settings(tmp_path, artifacts=art, **FULL_QUALITY)
    known = sf.events[0].user_id
    seen = {e.item_id for e in sf.events if e.user_id == known}
    with live_server(create_app(settings)).client(headers=headers) as api:
        wait_ready(api)
        body = api.get("/v1/recommend", params={"user_id": known, "k": 10}).json()
        assert body["strategy"] == "sequential" and body["history_length"] > 0
        assert len(body["results"]) == 10 and not {r["id"] for r in body["results"]} & seen
        with_seen = api.get("/v1/recommend", params={"user_id": known, "k": 50, "exclude_seen": "false"}).json()
        assert len(with_seen["results"]) == 50

        anon = api.get("/v1/recommend", params={"user_id": "never-seen", "k": 5}).json()
        assert anon["strategy"] == "popularity" and len(anon["results"]) == 5
        assert api.get("/v1/recommend", params={"k": 5}).json()["strategy"] == "popularity"

        cat = sf.products[0].category.split(" > ")[0]
        filtered = api.get("/v1/recommend", params={"user_id": known, "category": cat}).json()
        assert all(r["category"].startswith(cat) for r in filtered["results"])

        item = sf.products[0].id
        r = api.post("/v1/events", json={"events": [{"user_id": "newbie", "item_id": item, "type": "purchase"}]})
        assert r.status_code == 200
        fresh = api.get("/v1/recommend", params={"user_id": "newbie"}).json()
        assert fresh["strategy"] == "sequential" and fresh["history_length"] == 1
        assert item not in {x["id"] for x in fresh["results"]}

        sim = api.get("/v1/similar/" + item, params={"k": 5}).json()
        assert sim["strategy"] in {"content", "cooccurrence+content"} and len(sim["results"]) == 5
        assert item not in {x["id"] for x in sim["results"]}
        assert api.get("/v1/recommend", params={"k": 0}).status_code == 422

    with live_server(create_app(settings)).client(headers=headers) as api:  # restarted: the event is still there
        wait_ready(api)
        again = api.get("/v1/recommend", params={"user_id": "newbie"}).json()
        assert again["strategy"] == "sequential" and again["history_length"] == 1
