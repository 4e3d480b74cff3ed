"""The degradation ladder measured on real artifacts (the tiny encoder, FAISS, BM25, the trained ranker)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shoprec import artifacts
from shoprec.cli import main
from shoprec.core.ladder import levels_from_manifest
from shoprec.models.bundle import load_bundle
from shoprec.pipeline.ladder import LEVELS, measure_ladder
from shoprec.pipeline.validation import evaluate_validation, load_validation
from shoprec.serving.admission import serve_params
from shoprec.serving.search import SearchService


def test_measured_quality_is_what_each_level_serves(tiny_static_artifacts: Path) -> None:
    bundle = load_bundle(tiny_static_artifacts)
    service = SearchService(bundle)
    groups = load_validation(tiny_static_artifacts)
    ladder = measure_ladder(service, groups, repeats=1, progress=False)
    assert [lv["name"] for lv in ladder["levels"]] == [name for name, _ in LEVELS]
    for level in levels_from_manifest({"ladder": ladder}):
        pipeline, _ = serve_params(level)
        if level.params == {"pipeline": pipeline}:  # no effort changes: the plain pipeline's NDCG
            assert level.ndcg == evaluate_validation(service, groups, pipeline=pipeline)["ndcg@10"]
    # the stored ladder (from build) judged the same queries: same NDCG for every level
    stored = {lv.name: lv.ndcg for lv in levels_from_manifest(bundle.manifest)}
    assert stored == {lv["name"]: lv["ndcg@10"] for lv in ladder["levels"]}


def test_ladder_measure_command_rewrites_the_manifest_atomically(
    tiny_static_artifacts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "art"
    shutil.copytree(tiny_static_artifacts, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["ladder"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert main(["ladder", "measure", "--artifacts", str(folder), "--json", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    stored = artifacts.verify(folder)["ladder"]  # every checksum still holds
    assert stored == printed and len(stored["levels"]) == len(LEVELS)
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def test_ladder_measure_refuses_signed_artifacts(tiny_static_artifacts: Path, tmp_path: Path) -> None:
    folder = tmp_path / "art"
    shutil.copytree(tiny_static_artifacts, folder)
    (folder / "manifest.sig").write_text("{}")
    assert main(["ladder", "measure", "--artifacts", str(folder), "--quiet"]) == 2
