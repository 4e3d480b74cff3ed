import numpy as np

from shoprec.core.fusion import minmax, rrf, top_k


def test_top_k_orders_and_breaks_ties_by_index() -> None:
    s = np.array([0.1, 0.9, 0.5, 0.9, -1.0])
    assert top_k(s, 3).tolist() == [1, 3, 2]
    assert top_k(s, 10).tolist() == [1, 3, 2, 0, 4]
    assert top_k(s, 0).tolist() == []
    assert top_k(np.array([]), 3).tolist() == []


def test_top_k_matches_full_sort_on_random_scores() -> None:
    rng = np.random.default_rng(0)
    s = rng.random(1000)
    assert top_k(s, 50).tolist() == np.argsort(-s, kind="stable")[:50].tolist()


def test_minmax_and_constant_input() -> None:
    assert minmax(np.array([1.0, 3.0])).tolist() == [0.0, 1.0]
    assert minmax(np.array([2.0, 2.0])).tolist() == [1.0, 1.0]
    assert minmax(np.array([0.0, 0.0])).tolist() == [0.0, 0.0]


def test_rrf_ignores_missing_ranks() -> None:
    out = rrf(np.array([0.0, np.inf]), k=60)
    assert out[0] == np.float32(1 / 61) and out[1] == 0.0
