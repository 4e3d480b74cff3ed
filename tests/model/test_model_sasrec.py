"""SASRec-CE on a tiny synthetic sequential pattern, and its ONNX export against PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoprec.core.sequences import evaluate_ranking, popularity_scores
from shoprec.errors import ArtifactError, ConfigError
from shoprec.models.recommender import (
    BlendedRecommender,
    CoOccurrenceModel,
    SequentialRecommender,
)

torch = pytest.importorskip("torch")
sasrec = pytest.importorskip("shoprec.training.sasrec")

N_ITEMS = 40
TINY = sasrec.SASRecConfig(
    max_len=12,
    hidden=32,
    blocks=1,
    heads=2,
    dropout=0.1,
    lr=5e-3,
    batch_size=64,
    max_epochs=10,
    patience=2,
    max_train_s=20.0,
    threads=1,  # tiny matrices: a second thread only adds synchronisation
)


def successor_sequences(n_users: int, seed: int) -> list[list[int]]:
    """Users walk the catalog: item i is always followed by item i+1 (wrapping)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_users):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(5, 12))
        out.append([(start + j) % N_ITEMS + 1 for j in range(length)])
    return out


@pytest.fixture(scope="module")
def trained() -> tuple[object, object, list[list[int]]]:
    seqs = successor_sequences(300, seed=1)
    train = [s[:-2] for s in seqs]
    valid = [s[-2] for s in seqs]
    model, history = sasrec.train_sasrec(train, N_ITEMS, valid, None, TINY, progress=False)
    return model, history, seqs


def test_learns_the_successor_pattern_and_beats_popularity(trained: tuple) -> None:
    model, history, seqs = trained
    histories = [s[:-1] for s in seqs]
    targets = [s[-1] for s in seqs]
    ours = evaluate_ranking(lambda h: sasrec.score_histories(model, h), histories, targets, N_ITEMS, ks=(1, 10))
    pop = popularity_scores([s[:-2] for s in seqs], N_ITEMS)
    base = evaluate_ranking(lambda h: np.tile(pop, (len(h), 1)), histories, targets, N_ITEMS, ks=(1, 10))
    assert ours["hr@1"] > 0.9
    assert ours["ndcg@10"] > base["ndcg@10"] + 0.5
    assert 1 <= history.best_epoch <= len(history.epochs) <= TINY.max_epochs
    assert history.best_valid["ndcg@10"] > 0.9
    assert history.stopped in {"patience", "max_epochs", "time_budget"}


def test_onnx_export_matches_torch(trained: tuple, tmp_path: Path) -> None:
    model, _, seqs = trained
    items = [f"sku-{i}" for i in range(1, N_ITEMS + 1)]
    folder = sasrec.export_sasrec(model, tmp_path / "rec", items=items)
    assert {p.name for p in folder.iterdir()} >= {
        "model.onnx",
        "item_embeddings.npy",
        "items.json",
        "manifest.json",
    }
    rec = SequentialRecommender.load(folder, threads=1)
    histories = [s[:-1] for s in seqs[:50]] + [[3], list(range(1, 30))]  # longer than max_len
    ours = rec.score_ids(histories)
    ref = sasrec.score_histories(model, histories)
    assert ours.shape == (len(histories), N_ITEMS + 1) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    table = np.load(folder / "item_embeddings.npy")
    assert table.shape == (N_ITEMS + 1, TINY.hidden) and table.dtype == np.float32

    # string-id API: after sku-7 comes sku-8; excluded items never come back
    assert rec.recommend(["sku-5", "sku-6", "sku-7"], k=1)[0][0] == "sku-8"
    top = rec.recommend(["sku-5", "sku-6", "sku-7"], k=3, exclude={"sku-8"})
    assert len(top) == 3 and "sku-8" not in [i for i, _ in top]
    assert top == sorted(top, key=lambda r: -r[1])
    assert rec.scores(["sku-1", "unknown"]).shape == (N_ITEMS,)
    np.testing.assert_allclose(rec.user_vector(["sku-1", "unknown"]), rec.user_vector(["sku-1"]))


def test_attributes_are_used_and_exported(tmp_path: Path) -> None:
    seqs = successor_sequences(60, seed=2)
    attributes = {i: [i % 3, 100 + i % 5] for i in range(1, N_ITEMS + 1)}
    cfg = sasrec.SASRecConfig(max_len=8, hidden=16, blocks=1, heads=1, dropout=0.1, max_epochs=1, threads=1)
    model, _ = sasrec.train_sasrec([s[:-2] for s in seqs], N_ITEMS, [s[-2] for s in seqs], attributes, cfg)
    assert model.attr_emb is not None and model.attr_emb.num_embeddings == 3 + 5 + 1
    folder = sasrec.export_sasrec(model, tmp_path / "rec")
    rec = SequentialRecommender.load(folder)
    np.testing.assert_allclose(rec.score_ids([[1, 2]]), sasrec.score_histories(model, [[1, 2]]), rtol=1e-4, atol=1e-4)
    assert rec.items[:2] == ["1", "2"]


def test_sampled_softmax_then_full_softmax() -> None:
    seqs = successor_sequences(120, seed=3)
    cfg = sasrec.SASRecConfig(
        max_len=10,
        hidden=16,
        blocks=1,
        heads=1,
        dropout=0.1,
        lr=5e-3,
        batch_size=32,
        negatives=8,
        switch_patience=1,
        patience=2,
        max_epochs=8,
        threads=1,
    )
    model, history = sasrec.train_sasrec([s[:-2] for s in seqs], N_ITEMS, [s[-2] for s in seqs], None, cfg)
    used = [int(row["negatives"]) for row in history.epochs]
    assert used[0] == 8 and set(used) <= {8, 0}
    assert used == sorted(used, reverse=True)  # once full, always full
    assert history.best_valid["ndcg@10"] > 0.5


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        sasrec.SASRecConfig(hidden=30, heads=4)
    with pytest.raises(ConfigError):
        sasrec.SASRecConfig(dropout=1.0)
    with pytest.raises(ConfigError):
        sasrec.SASRecConfig(max_len=0)
    with pytest.raises(ConfigError):
        sasrec.SASRecConfig(negatives=-1)


def test_blend_mixes_sasrec_with_cooccurrence(trained: tuple, tmp_path: Path) -> None:
    model, _, seqs = trained
    items = [str(i) for i in range(1, N_ITEMS + 1)]
    sasrec.export_sasrec(model, tmp_path / "blend" / "sequential", items=items)
    cooc = CoOccurrenceModel.from_ids([s[:-2] for s in seqs], items)
    cooc.save(tmp_path / "blend" / "cooccurrence")
    BlendedRecommender(SequentialRecommender.load(tmp_path / "blend" / "sequential"), cooc, 0.3).save_weight(
        tmp_path / "blend"
    )
    blend = BlendedRecommender.load(tmp_path / "blend")
    assert blend.weight == 0.3
    scores = blend.score_ids([[1, 2, 3], [7]])
    assert scores.shape == (2, N_ITEMS + 1) and np.isneginf(scores[:, 0]).all()
    assert np.isfinite(scores[:, 1:]).all()
    assert blend.recommend(["1", "2", "3"], k=1)[0][0] == "4"
    with pytest.raises(ArtifactError):
        BlendedRecommender(blend.sequential, CoOccurrenceModel.fit([["x", "y"]]), 0.5)
