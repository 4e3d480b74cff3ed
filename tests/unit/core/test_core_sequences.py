"""The leave-last-out protocol on a hand-made file, with hand-computed answers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from shoprec.core.metrics import ndcg_single_target
from shoprec.core.sequences import (
    blend_scores,
    build_vocabulary,
    cooccurrence_pairs,
    encode_sequences,
    evaluate_ranking,
    leave_last_out,
    log_softmax_rows,
    normalize_rows,
    parse_sequences,
    popularity_scores,
    select_blend_weight,
    target_ranks,
)
from shoprec.errors import DataError, RowError

TINY = """\
u1 1 2 3 4
u2 2 3

u3 5 1 2 3 1
u4 4 4 4
"""

# A fixed scorer over ids 0..5. Padding (id 0) scores highest: it must never count.
# Stable descending order of the real items: 2 (0.9), 4 (0.9, tie: larger id last),
# 1 (0.5), 5 (0.3), 3 (0.1) -> ranks 2:0, 4:1, 1:2, 5:3, 3:4.
FIXED = np.array([100.0, 0.5, 0.9, 0.1, 0.9, 0.3], dtype=np.float32)


def fixed_scores(histories: Sequence[Sequence[int]]) -> np.ndarray:
    return np.tile(FIXED, (len(histories), 1))


@pytest.fixture()
def tiny() -> dict[str, list[str]]:
    seqs, _ = parse_sequences(TINY.splitlines(keepends=True), "sequences.txt")
    return seqs


def test_parse_skips_and_counts_short_users() -> None:
    seqs, report = parse_sequences(TINY.splitlines(keepends=True), "sequences.txt")
    assert list(seqs) == ["u1", "u3", "u4"]
    assert seqs["u3"] == ["5", "1", "2", "3", "1"]
    assert (report.rows, report.kept, report.skipped) == (4, 3, 1)
    assert report.problems and "fewer than 3" in report.problems[0]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [("u1 1 2 3\nu2\n", 2, "no items"), ("u1 1 2 3\n\nu1 4 5 6\n", 3, "more than one line")],
)
def test_malformed_lines_raise_row_error(text: str, line: int, problem: str) -> None:
    with pytest.raises(RowError) as err:
        parse_sequences(text.splitlines(), "f.txt")
    assert err.value.line == line and problem in err.value.problem
    assert err.value.path == "f.txt"


def test_leave_last_out_split(tiny: dict[str, list[str]]) -> None:
    seqs = tiny
    train, valid, test = leave_last_out(encode_sequences(seqs, build_vocabulary(seqs)))
    assert train == {"u1": [1, 2], "u3": [5, 1, 2], "u4": [4]}
    assert valid == {"u1": 3, "u3": 3, "u4": 4}
    assert test == {"u1": 4, "u3": 1, "u4": 4}
    with pytest.raises(DataError):
        leave_last_out({"short": [1, 2]})


def test_vocabulary_numbers_numeric_ids_first_then_strings() -> None:
    vocab = build_vocabulary({"a": ["10", "b", "9", "2"], "b": ["a", "9"]})
    assert vocab == ("2", "9", "10", "a", "b")
    assert encode_sequences({"x": ["10", "a"]}, vocab) == {"x": [3, 4]}
    with pytest.raises(DataError):
        encode_sequences({"x": ["zzz"]}, vocab)


def test_hand_computed_hr_and_ndcg(tiny: dict[str, list[str]]) -> None:
    seqs = tiny
    train, valid, test = leave_last_out(encode_sequences(seqs, build_vocabulary(seqs)))
    users = list(train)
    histories = [train[u] + [valid[u]] for u in users]
    targets = [test[u] for u in users]  # 4, 1, 4 -> ranks 1, 2, 1
    got = evaluate_ranking(fixed_scores, histories, targets, n_items=5, ks=(1, 2, 3), batch_size=2)
    third = 1 / math.log2(3)
    assert got["users"] == 3
    assert got["hr@1"] == 0.0 and got["ndcg@1"] == 0.0
    assert got["hr@2"] == pytest.approx(2 / 3)
    assert got["ndcg@2"] == pytest.approx(2 * third / 3)
    assert got["hr@3"] == pytest.approx(1.0)
    assert got["ndcg@3"] == pytest.approx((2 * third + 0.5) / 3)
    assert got["ndcg@3"] == pytest.approx(np.mean([ndcg_single_target(r, 3) for r in (1, 2, 1)]))


def test_padding_never_counts_and_seen_items_stay_candidates() -> None:
    def repeat_last(histories: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.zeros((len(histories), 6), dtype=np.float32)
        out[:, 0] = 1e9  # padding: ignored
        for row, h in enumerate(histories):
            out[row, h[-1]] = 1.0
        return out

    got = evaluate_ranking(repeat_last, [[4, 4]], [4], n_items=5, ks=(1,))
    assert got["hr@1"] == 1.0 and got["ndcg@1"] == 1.0


def test_tie_rules() -> None:
    scores = FIXED[None, :].repeat(5, axis=0)
    targets = np.array([1, 2, 3, 4, 5])
    assert target_ranks(scores, targets).tolist() == [2, 0, 4, 1, 3]
    assert target_ranks(scores, targets, ties="pessimistic").tolist() == [2, 1, 4, 1, 3]
    assert target_ranks(scores, targets, ties="optimistic").tolist() == [2, 0, 4, 0, 3]
    flat = np.zeros((3, 6), dtype=np.float32)  # all tied: position in id order
    assert target_ranks(flat, np.array([1, 3, 5])).tolist() == [0, 2, 4]
    assert target_ranks(flat, np.array([1, 3, 5]), ties="pessimistic").tolist() == [4, 4, 4]


def test_nan_target_ranks_last_and_nan_items_never_outrank() -> None:
    scores = np.array([[0.0, np.nan, 1.0, 2.0], [0.0, 1.0, np.nan, 0.5]], dtype=np.float32)
    assert target_ranks(scores, np.array([1, 1])).tolist() == [2, 0]


def test_score_shape_and_target_range_are_checked() -> None:
    with pytest.raises(ValueError, match="shape"):
        evaluate_ranking(lambda h: np.zeros((len(h), 5)), [[1]], [1], n_items=5)
    with pytest.raises(ValueError, match="targets"):
        evaluate_ranking(fixed_scores, [[1]], [6], n_items=5)
    with pytest.raises(ValueError):
        evaluate_ranking(fixed_scores, [[1], [2]], [1], n_items=5)


def test_popularity_scores_count_training_items_only() -> None:
    pop = popularity_scores([[1, 2, 2], [2, 5]], n_items=6)
    assert pop.dtype == np.float32 and pop.shape == (7,)
    assert pop.tolist() == [0, 1, 3, 0, 0, 1, 0]
    assert popularity_scores([[3]]).tolist() == [0, 0, 0, 1]
    with pytest.raises(DataError):
        popularity_scores([[7]], n_items=6)


def test_cooccurrence_pairs_weigh_by_distance() -> None:
    rows, cols, vals = cooccurrence_pairs([[1, 2, 3]], window=2, backward_weight=0.5)
    pairs = {(int(r), int(c)): float(v) for r, c, v in zip(rows, cols, vals, strict=True)}
    assert pairs == {(1, 2): 1.0, (2, 3): 1.0, (2, 1): 0.5, (3, 2): 0.5, (1, 3): 0.5, (3, 1): 0.25}
    assert cooccurrence_pairs([[1]])[0].size == 0


def test_blend_is_a_product_of_experts() -> None:
    logits = np.array([[50.0, 0.0, 0.0, np.log(3.0)]], dtype=np.float32)  # softmax: .2 .2 .6
    counts = np.array([[9.0, 1.0, 3.0, 0.0]], dtype=np.float32)  # normalised: .25 .75 0
    np.testing.assert_allclose(np.exp(log_softmax_rows(logits)), [[0, 0.2, 0.2, 0.6]], rtol=1e-6)
    np.testing.assert_allclose(normalize_rows(counts), [[0, 0.25, 0.75, 0]], rtol=1e-6)
    np.testing.assert_allclose(normalize_rows(np.zeros((1, 3))), [[0, 0.5, 0.5]])
    alone = blend_scores(logits, counts, 0.0)
    assert alone[0, 0] == -np.inf and alone[0].argmax() == 3
    both = blend_scores(logits, counts, 1.0)
    expected = np.log([0.2, 0.2, 0.6]) + np.log(np.array([0.25, 0.75, 0.0]) + 1e-6)
    np.testing.assert_allclose(both[0, 1:], expected, rtol=1e-5)
    assert both[0, 0] == -np.inf and both[0].argmax() == 2  # co-occurrence overrules
    with pytest.raises(ValueError):
        blend_scores(logits, counts, -1.0)


def test_select_blend_weight_picks_the_model_that_knows() -> None:
    n = 4
    histories = [[1], [2], [3]]
    targets = [2, 3, 4]  # the successor of the last item

    def successor(h: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.zeros((len(h), n + 1), dtype=np.float32)
        for row, items in enumerate(h):
            out[row, items[-1] % n + 1] = 5.0
        return out

    def constant(h: Sequence[Sequence[int]]) -> np.ndarray:
        return np.tile(np.array([0, 4, 3, 2, 1], dtype=np.float32), (len(h), 1))

    best, curve = select_blend_weight(constant, successor, histories, targets, n, (0.0, 0.5, 1.0))
    assert best == 0.5 and curve[0.5] == curve[1.0] == 1.0 and curve[0.0] < 1.0
    best, _ = select_blend_weight(successor, constant, histories, targets, n, (0.0, 1.0))
    assert best == 0.0
