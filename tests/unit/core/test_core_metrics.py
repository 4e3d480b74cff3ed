import math

import pytest

from shoprec.core.metrics import (
    hit_rate_at_k,
    ndcg_at_k,
    ndcg_single_target,
    percentile_ms,
    recall_at_k,
    reciprocal_rank,
)


def test_ndcg_perfect_and_reversed() -> None:
    gains = {"a": 2.0, "b": 1.0}
    assert ndcg_at_k(["a", "b", "c"], gains, 10) == pytest.approx(1.0)
    worse = ndcg_at_k(["b", "a"], gains, 10)
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert worse == pytest.approx(expected)


def test_ndcg_counts_unjudged_as_zero_and_cuts_at_k() -> None:
    assert ndcg_at_k(["x", "y", "a"], {"a": 1.0}, 2) == 0.0
    assert ndcg_at_k(["x", "a"], {"a": 1.0}, 2) == pytest.approx(1 / math.log2(3))


def test_no_positive_gain_gives_zero() -> None:
    assert ndcg_at_k(["a"], {"a": 0.0}, 10) == 0.0
    assert recall_at_k(["a"], {}, 10) == 0.0


def test_recall_and_mrr() -> None:
    gains = {"a": 1.0, "b": 1.0, "z": 0.0}
    assert recall_at_k(["x", "a", "y"], gains, 100) == 0.5
    assert reciprocal_rank(["x", "z", "b"], gains) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x"], gains) == 0.0


def test_single_target_protocol() -> None:
    assert ndcg_single_target(0, 10) == 1.0
    assert ndcg_single_target(1, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_single_target(10, 10) == 0.0
    assert hit_rate_at_k(["a", "b"], "b", 2) == 1.0
    assert hit_rate_at_k(["a", "b"], "b", 1) == 0.0


def test_percentiles_in_ms() -> None:
    assert percentile_ms([0.001, 0.002, 0.003], 50) == pytest.approx(2.0)
    assert percentile_ms([], 99) == 0.0
