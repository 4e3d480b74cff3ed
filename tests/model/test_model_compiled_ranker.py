"""The ranker compiled at build time: kept with the same scores as LightGBM's, carried and
checksummed like every other file, refused when it is not the model it claims to be, and
left out (LightGBM serves) when no compiler is there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightgbm
import numpy as np
import pytest

from shoprec.errors import ArtifactError
from shoprec.models.bundle import load_bundle
from shoprec.models.compiled import COMPILED_FILE, CompiledTrees, compile_trees, probe_features
from shoprec.models.ranker import FEATURE_NAMES, Ranker
from shoprec.pipeline.build import BuildOptions, build
from shoprec.pipeline.ltr import Group
from shoprec.pipeline.ranker_compile import candidate_batches
from shoprec.serving.search import SearchService
from support.tinyshop import tiny_events, tiny_products


def test_build_compiles_the_ranker_and_reports_the_choice(tiny_static_artifacts: Path) -> None:
    """Which form is kept depends on which is faster on this machine; that it has the model's
    scores does not."""
    manifest = json.loads((tiny_static_artifacts / "manifest.json").read_text())
    report = manifest["metrics"]["ranker"]["compiled"]
    assert report["max_abs_diff"] <= 1e-6 and report["batches"] > 0
    ranker = load_bundle(tiny_static_artifacts).ranker
    assert ranker is not None
    if report["kept"] == "compiled":
        assert COMPILED_FILE in manifest["files"]  # checksummed (and signed) like the rest
        assert ranker.kind == "compiled"
    else:
        assert "faster" in report["reason"] and ranker.kind == "lightgbm"


def test_the_compiled_ranker_gives_the_models_scores(tiny_static_artifacts: Path, tmp_path: Path) -> None:
    compile_trees(tiny_static_artifacts / "ranker.txt", tmp_path / COMPILED_FILE)
    ranker = Ranker.load(tiny_static_artifacts / "ranker.txt", compiled=tmp_path / COMPILED_FILE)
    assert ranker.kind == "compiled"
    service = SearchService(load_bundle(tiny_static_artifacts))
    batches = candidate_batches(service, _groups(service))
    assert sum(len(x) for x in batches) > 100
    for x in batches:
        np.testing.assert_allclose(ranker.predict(x), ranker.predict_lightgbm(x), rtol=0, atol=1e-6)


def _groups(service: SearchService) -> list[Group]:
    return [Group(p.title, {p.id: 1.0}) for p in service.bundle.catalog.products[:20]]


def test_a_changed_library_fails_the_checksum(tiny_static_artifacts: Path, tmp_path: Path) -> None:
    copy = tmp_path / "a"
    shutil.copytree(tiny_static_artifacts, copy)
    lib = copy / COMPILED_FILE
    if not lib.exists():
        pytest.skip("this machine's build kept LightGBM (the compiled form was not faster)")
    data = bytearray(lib.read_bytes())
    data[len(data) // 2] ^= 0xFF
    lib.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=COMPILED_FILE):
        load_bundle(copy)


def test_a_library_of_another_model_is_refused(tiny_static_artifacts: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = probe_features(len(FEATURE_NAMES), rows=400, seed=3)
    other = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 7},
        lightgbm.Dataset(x, rng.normal(size=len(x)), feature_name=list(FEATURE_NAMES)),
        num_boost_round=20,
    )
    other_txt = tmp_path / "other.txt"
    other_txt.write_text(other.model_to_string())
    compile_trees(other_txt, tmp_path / "other.so")
    assert np.abs(CompiledTrees(tmp_path / "other.so").predict(x) - other.predict(x)).max() <= 1e-6
    with pytest.raises(ArtifactError, match="differ from the model"):
        Ranker.load(tiny_static_artifacts / "ranker.txt", compiled=tmp_path / "other.so")


def test_without_a_compiler_lightgbm_serves(
    tiny_encoder_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", "no-such-compiler")
    out = tmp_path / "a"
    options = BuildOptions(ladder=False, recommender=False)
    build(tiny_products(), out, events=tiny_events(), encoder_dir=tiny_encoder_dir, options=options, progress=False)
    report = json.loads((out / "manifest.json").read_text())["metrics"]["ranker"]["compiled"]
    assert report["kept"] == "lightgbm" and "no-such-compiler" in report["reason"]
    assert not (out / COMPILED_FILE).exists()
    ranker = load_bundle(out).ranker
    assert ranker is not None and ranker.kind == "lightgbm"
