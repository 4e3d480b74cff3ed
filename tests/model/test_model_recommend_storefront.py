"""On the synthetic storefront, the trained recommenders beat the popularity floor under the
leave-last-out protocol (all items ranked)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from shoprec.catalog.synthetic import generate_storefront
from shoprec.pipeline.recommend_eval import evaluate_recommenders
from shoprec.pipeline.recommender_build import user_sequences
from shoprec.training.sasrec import SASRecConfig


def test_sequential_and_cooccurrence_beat_popularity(tmp_path: Path) -> None:
    sf = generate_storefront(n_products=800, n_users=150, n_sessions=2500, seed=7)
    path = tmp_path / "sequences.txt"
    path.write_text("".join(f"{u} {' '.join(s)}\n" for u, s in user_sequences(sf.events).items()))
    result = evaluate_recommenders(
        path,
        models=("popularity", "cooccurrence", "sasrec", "blend"),
        progress=False,
        sasrec_config=replace(SASRecConfig(), max_train_s=40),
    )
    m = result["models"]
    assert result["users"] == 150
    floor = m["popularity"]["ndcg@10"]
    assert m["sasrec"]["ndcg@10"] > 3 * floor, m
    assert m["cooccurrence"]["ndcg@10"] > 3 * floor, m
    assert m["sasrec"]["hr@10"] > m["popularity"]["hr@10"]
    # The top level reports what build ships for known users: the blend, chosen on validation.
    assert result["model"] == "blend" and result["ndcg@10"] == m["blend"]["ndcg@10"] > 3 * floor
    assert m["blend"]["weight"] >= 0
