"""`shoprec optimize` on real artifacts (the tiny catalog, the real MiniLM teacher)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from shoprec import artifacts
from shoprec.cli import main
from shoprec.errors import QualityGateError
from shoprec.models.bundle import load_bundle
from shoprec.optimize import static
from shoprec.pipeline.ltr import groups_from_judgments
from shoprec.pipeline.optimize import OptimizeOptions, optimize
from shoprec.serving.search import SearchService
from support.tinyshop import tiny_judgments

# the optimized encoders are distilled from, quantized from and gated against MiniLM itself
pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def judgments_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("judgments") / "j.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["query", "product_id", "relevance"])
        for j in tiny_judgments():
            w.writerow([j.query, j.product_id, j.relevance])
    return path


def test_default_chain_keeps_a_passing_encoder_and_the_service_serves_it(
    tiny_artifacts: Path, judgments_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "opt"
    rc = main(
        [
            "optimize",
            "--artifacts",
            str(tiny_artifacts),
            "--out",
            str(out),
            "--judgments",
            str(judgments_csv),
            "--quiet",
            "--json",
            "--keep-candidates",
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {s["step"] for s in report["steps"]} == {"int8", "static"}
    kept = next(s for s in report["steps"] if s["step"] == report["kept"])
    assert kept["passed"] and kept["ndcg_ratio"] >= 0.97
    for s in report["steps"]:
        assert {"size_mb", "batch1_p50_ms", "batch1_p99_ms", "batch32_per_s", "ndcg@10", "ndcg_ratio"} <= set(s)
    manifest = artifacts.verify(out)
    assert manifest["optimization"]["kept"] == report["kept"]
    source = artifacts.read_manifest(tiny_artifacts)
    if "ladder" in source:  # re-measured with the kept encoder, not copied
        assert manifest["ladder"]["encoder"] == manifest["model_id"] != source["ladder"].get("encoder")
        assert [lv["name"] for lv in manifest["ladder"]["levels"]] == [lv["name"] for lv in source["ladder"]["levels"]]
    bundle = load_bundle(out)
    res = SearchService(bundle).search("cordless drill", k=5)
    assert res.hits
    assert bundle.embeddings.shape[1] == bundle.encoder.dim
    from shoprec.pipeline.encoder_bench import bench_encoders

    bench = bench_encoders(out, batch1_n=5, batch32_n=1)
    rows = {r["encoder"]: r for r in bench["encoders"]}
    assert set(rows) == {f"artifacts ({report['kept']})", "candidate int8", "candidate static"}
    for s in report["steps"]:
        assert rows[f"candidate {s['step']}"]["ndcg_ratio"] == s["ndcg_ratio"]


def test_static_student_lives_in_the_teacher_space(teacher_dir: Path, tmp_path: Path) -> None:
    from shoprec.models.encoder import OnnxEncoder

    student = OnnxEncoder(static.distill_static(teacher_dir, tmp_path / "s", ["cordless drill", "oak table"]))
    teacher = OnnxEncoder(teacher_dir)
    texts = ["cordless drill", "leather couch", "kitchen tap", "garden hose 50 ft"]
    cos = np.sum(student.encode(texts) * teacher.encode(texts), axis=1)
    assert cos.min() > 0.6  # same space: a static mean agrees roughly with the contextual teacher


def _no_fit(table: np.ndarray, *_: object, **__: object) -> tuple[np.ndarray, static.FitReport]:
    return table, static.FitReport(
        texts=0, held_out=0, l2=0.0, iterations=0, cosine_before=0.0, cosine_after=0.0, seconds=0.0
    )


def test_gate_refuses_a_step_that_loses_quality_and_writes_nothing(
    tiny_artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(teacher: object, **_: object) -> tuple[np.ndarray, list[int]]:
        enc = teacher  # a distillation gone wrong: token vectors are noise
        vocab = enc.tokenizer.get_vocab()  # type: ignore[attr-defined]
        rng = np.random.default_rng(0)
        v = rng.normal(size=(max(vocab.values()) + 1, enc.dim)).astype(np.float32)  # type: ignore[attr-defined]
        return v, [0]

    monkeypatch.setattr(static, "token_vectors", broken)
    monkeypatch.setattr(static, "fit_table", _no_fit)  # the fit to the teacher would mend the noise
    before = {p: p.stat().st_mtime_ns for p in tiny_artifacts.rglob("*")}
    out = tmp_path / "opt"
    groups = groups_from_judgments(tiny_judgments())
    with pytest.raises(QualityGateError, match="under the gate 0.97 by"):
        optimize(tiny_artifacts, out, options=OptimizeOptions(steps=("static",), progress=False), groups=groups)
    assert not out.exists()
    assert {p: p.stat().st_mtime_ns for p in tiny_artifacts.rglob("*")} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_refusal_exits_non_zero_and_says_by_how_much(
    tiny_artifacts: Path,
    judgments_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(teacher: object, **_: object) -> tuple[np.ndarray, list[int]]:
        vocab = teacher.tokenizer.get_vocab()  # type: ignore[attr-defined]
        v = np.random.default_rng(1).normal(size=(max(vocab.values()) + 1, 384)).astype(np.float32)
        return v, [0]

    monkeypatch.setattr(static, "token_vectors", broken)
    monkeypatch.setattr(static, "fit_table", _no_fit)  # the fit to the teacher would mend the noise
    out = tmp_path / "opt"
    args = ["optimize", "--artifacts", str(tiny_artifacts), "--out", str(out), "static", "--quiet"]
    rc = main([*args, "--judgments", str(judgments_csv)])
    assert rc != 0
    assert "under the gate 0.97 by" in capsys.readouterr().err
    assert not out.exists()


def test_edge_bundle_answers_offline_with_only_onnxruntime_and_numpy(tiny_artifacts: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from shoprec.edge.bundle import make_edge_bundle

    info = make_edge_bundle(tiny_artifacts, tmp_path / "edge", top_n=1000)
    assert info["size_mb"] < 30
    probe = (
        "import runpy, sys, json; BANNED = {'shoprec', 'tokenizers', 'torch', 'transformers'}\n"
        "sys.argv = ['query.py', 'cordless drill', '-k', '3', '--repeat', '5'];"
        "\ntry:\n    runpy.run_path('query.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in BANNED)\n"
        "print(json.dumps(bad))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path / "edge", capture_output=True, text=True, check=True, timeout=120
    )
    answer, leaked = (json.loads(x) for x in res.stdout.strip().splitlines()[-2:])
    assert leaked == []
    assert len(answer["hits"]) == 3
    titles = " ".join(h["title"].lower() for h in answer["hits"])
    assert "drill" in titles
    assert answer["size_mb"] < 30 and answer["p50_ms"] > 0
