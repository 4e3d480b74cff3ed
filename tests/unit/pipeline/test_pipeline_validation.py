from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoprec.errors import ArtifactError, ConfigError
from shoprec.pipeline.ltr import Group
from shoprec.pipeline.validation import (
    VALIDATION_FILE,
    evaluate_validation,
    load_validation,
    split_groups,
    write_validation,
)


def _groups(n: int) -> list[Group]:
    return [Group(f"q{i}", {f"P{i}": 1.0}, user_id=f"U{i % 3}", timestamp=float(i)) for i in range(n)]


def test_split_is_seeded_disjoint_and_complete() -> None:
    groups = _groups(50)
    train, val = split_groups(groups, 0.2, seed=7)
    assert len(val) == 10 and len(train) == 40
    assert {g.query for g in train}.isdisjoint({g.query for g in val})
    assert {g.query for g in train} | {g.query for g in val} == {g.query for g in groups}
    assert split_groups(groups, 0.2, seed=7) == (train, val)
    assert split_groups(groups, 0.2, seed=8)[1] != val


def test_small_sets_and_zero_fraction_hold_nothing_out() -> None:
    assert split_groups(_groups(9), 0.5) == (_groups(9), [])
    assert split_groups(_groups(50), 0.0) == (_groups(50), [])


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 2.0])
def test_bad_fraction_is_a_config_error(fraction: float) -> None:
    with pytest.raises(ConfigError, match="validation fraction"):
        split_groups(_groups(20), fraction)


def test_round_trip_and_bad_row_names_file_and_line(tmp_path: Path) -> None:
    groups = _groups(3)
    write_validation(groups, tmp_path / VALIDATION_FILE)
    assert load_validation(tmp_path) == groups
    assert load_validation(tmp_path / "elsewhere") == []
    with (tmp_path / VALIDATION_FILE).open("a") as f:
        f.write(json.dumps({"query": "q"}) + "\n")
    with pytest.raises(ArtifactError, match=rf"{VALIDATION_FILE}:4"):
        load_validation(tmp_path)


def test_built_artifacts_carry_held_out_groups(tiny_static_artifacts: Path) -> None:
    from shoprec.artifacts import read_manifest
    from shoprec.models.bundle import load_bundle
    from shoprec.serving.search import SearchService

    groups = load_validation(tiny_static_artifacts)
    manifest = read_manifest(tiny_static_artifacts)
    assert len(groups) == manifest["metrics"]["validation"]["groups"] > 0
    service = SearchService(load_bundle(tiny_static_artifacts))
    full = evaluate_validation(service, groups)
    bm25 = evaluate_validation(service, groups, pipeline="bm25", per_query=True)
    assert full["queries"] == bm25["queries"] == len(groups)
    assert 0.5 < full["ndcg@10"] <= 1.0
    assert len(bm25["per_query"]) == len(groups) and bm25["p99_ms"] >= bm25["p50_ms"] > 0
