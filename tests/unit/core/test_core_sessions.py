from __future__ import annotations

import numpy as np
import pytest

from shoprec.core.sessions import hit_and_mrr, next_click_cases, parse_clicks
from shoprec.errors import RowError


def test_sessions_are_time_ordered_and_header_skipped() -> None:
    lines = ["SessionId\tItemId\tTime\n", "s1\tB\t20\n", "s1\tA\t10\n", "s2\tC\t5\n", "\n", "s1\tA\t30\n"]
    sessions, report = parse_clicks(lines, "clicks.tsv")
    assert sessions == {"s1": ["A", "B", "A"], "s2": ["C"]}
    assert report.rows == 4 and report.kept == 2


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("s1\tA\n", "3 tab-separated"),
        ("s1\tA\tnoon\n", "not a number"),
        ("\tA\t1\n", "empty"),
        ("s\tA\tinf\n", "finite"),
    ],
)
def test_bad_rows_name_file_and_line(row: str, problem: str) -> None:
    with pytest.raises(RowError, match=rf"clicks\.tsv:3: .*{problem}"):
        parse_clicks(["SessionId\tItemId\tTime\n", "s1\tA\t1\n", row], "clicks.tsv")


def test_every_click_after_the_first_is_a_case_and_unknown_targets_are_counted() -> None:
    index = {"A": 1, "B": 2, "C": 3}
    histories, targets, skipped = next_click_cases({"s1": ["A", "B", "X", "C"], "s2": ["C"]}, index)
    assert histories == [[1], [1, 2]] and targets == [2, 3] and skipped == 1


def test_hit_and_mrr_known_values() -> None:
    out = hit_and_mrr(np.array([0, 1, 9, 19, 25]), (10, 20))
    assert out["hr@10"] == pytest.approx(3 / 5)
    assert out["hr@20"] == pytest.approx(4 / 5)
    assert out["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 10) / 5)
    assert out["mrr@20"] == pytest.approx((1 + 1 / 2 + 1 / 10 + 1 / 20) / 5)
