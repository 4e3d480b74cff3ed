"""Popularity and co-occurrence recommenders: scores, incremental updates, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoprec.errors import ArtifactError
from shoprec.models.recommender import CoOccurrenceModel, PopularityModel

SEQS = [["a", "b", "c"], ["a", "b"], ["b", "c", "d"], ["d", "a"]]


def test_popularity_ranks_by_count_and_updates() -> None:
    pop = PopularityModel.fit(SEQS)
    assert pop.items == ["a", "b", "c", "d"]
    assert [i for i, _ in pop.recommend(k=4)] == ["a", "b", "c", "d"]  # a=b=3: tie by id
    assert [i for i, _ in pop.recommend(k=2, exclude={"a"})] == ["b", "c"]
    pop.update("d", 2.0)
    pop.update("new")
    assert pop.recommend(k=1) == [("d", 4.0)]
    assert pop.items[-1] == "new" and pop.scores()[-1] == 1.0


def test_popularity_round_trip(tmp_path: Path) -> None:
    pop = PopularityModel.fit(SEQS)
    pop.save(tmp_path)
    back = PopularityModel.load(tmp_path)
    assert back.items == pop.items
    np.testing.assert_array_equal(back.counts, pop.counts)
    assert not list(tmp_path.glob("*.pkl"))


def test_cooccurrence_follows_sequences() -> None:
    model = CoOccurrenceModel.fit(SEQS, window=2, backward_weight=0.5)
    assert model.weight("a", "b") == pytest.approx(2.0)  # a->b twice at distance 1
    assert model.weight("b", "a") == pytest.approx(1.0)  # backward only: 2 * 0.5
    assert model.weight("a", "c") == pytest.approx(0.5)
    assert model.recommend(["a"], k=1)[0][0] == "b"
    assert model.related("d", k=1)[0][0] == "a"
    # unknown history: falls back to popularity through the prior
    assert model.recommend(["zzz"], k=1)[0][0] == "a"


def test_cooccurrence_incremental_update_equals_rebuild(tmp_path: Path) -> None:
    model = CoOccurrenceModel.fit(SEQS, window=2)
    model.update(["b", "c", "d"], "e")  # user 3 buys a new item: it joins the vocabulary
    model.update(["a", "b"], "c")  # user 2 buys c
    assert model.pending_updates > 0
    extended = [SEQS[0], ["a", "b", "c"], ["b", "c", "d", "e"], SEQS[3]]
    rebuilt = CoOccurrenceModel.fit(extended, window=2)
    assert rebuilt.items == model.items
    np.testing.assert_allclose(model.popularity, rebuilt.popularity)
    for a in rebuilt.items:
        for b in rebuilt.items:
            assert model.weight(a, b) == pytest.approx(rebuilt.weight(a, b)), (a, b)
    before = model.scores(["c", "d"])
    ids = [[model.index.index["c"], model.index.index["d"]]]
    slow = model.score_ids(ids)  # with pending updates (row by row)
    model.compact()
    assert model.pending_updates == 0
    np.testing.assert_allclose(model.scores(["c", "d"]), before, rtol=1e-6)
    np.testing.assert_allclose(model.score_ids(ids), slow, rtol=1e-6)

    model.save(tmp_path)
    back = CoOccurrenceModel.load(tmp_path)
    assert back.items == model.items and back.options() == model.options()
    np.testing.assert_allclose(back.scores(["c", "d"]), before, rtol=1e-6)


def test_cooccurrence_load_refuses_malformed_arrays(tmp_path: Path) -> None:
    CoOccurrenceModel.fit(SEQS).save(tmp_path)
    np.save(tmp_path / "cooc_indptr.npy", np.array([0, 1]))
    with pytest.raises(ArtifactError):
        CoOccurrenceModel.load(tmp_path)


def test_blend_weight_file_round_trip_and_bad_values(tmp_path: Path) -> None:
    from shoprec.models.recommender import BlendedRecommender

    assert BlendedRecommender.read_weight(tmp_path) is None
    (tmp_path / BlendedRecommender.FILE_META).write_text('{"kind": "blend", "weight": 2.5}')
    assert BlendedRecommender.read_weight(tmp_path) == 2.5
    for bad in ('{"weight": "high"}', '{"weight": true}', "[1]", "not json"):
        (tmp_path / BlendedRecommender.FILE_META).write_text(bad)
        with pytest.raises(ArtifactError, match="blend.json"):
            BlendedRecommender.read_weight(tmp_path)
