"""The small transformer student: built from teacher layers, distilled toward the teacher,
exported like the teacher; the chain step on artifacts built with a tiny BERT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shoprec.errors import ConfigError
from shoprec.models.encoder import OnnxEncoder
from support.tinybert import VOCAB, phrases, tiny_tokenizer

torch = pytest.importorskip("torch")

from shoprec.training.distill import (  # noqa: E402
    DistillOptions,
    distill_student,
    distill_to_teacher,
    load_tokenizer,
    make_student,
    save_encoder,
)
from shoprec.training.export import MeanPooledEncoder, export_onnx, load_backbone  # noqa: E402
from shoprec.training.prune import count_parameters, shapes, spread_layers  # noqa: E402


def tiny_teacher(folder: Path, *, layers: int = 4, seed: int = 0) -> tuple[Path, Path]:
    """(ONNX encoder folder, Hugging Face weights folder) of a tiny random BERT whose layers matter."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        initializer_range=0.2,
    )
    backbone = BertModel(cfg, add_pooling_layer=False).eval()  # type: ignore[no-untyped-call]
    hf, enc = folder / "hf", folder / "enc"
    backbone.save_pretrained(str(hf))
    export_onnx(MeanPooledEncoder(backbone), enc / "model.onnx")
    tiny_tokenizer().save(str(enc / "tokenizer.json"))
    (enc / "encoder.json").write_text(json.dumps({"model_id": "tiny-bert", "dim": 32, "max_seq_length": 32}))
    return enc, hf


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_teacher(tmp_path_factory.mktemp("teacher"))


def test_student_keeps_spread_teacher_layers_with_their_weights(teacher: tuple[Path, Path]) -> None:
    _, hf = teacher
    full: Any = load_backbone(hf)
    assert spread_layers(6, 3) == [0, 2, 5] and spread_layers(4, 2) == [0, 3] and spread_layers(6, 1) == [5]
    student, info = make_student(full, layers=2, ffn_keep=0.5)
    assert info["teacher_layers_kept"] == [0, 3]
    assert shapes(student) == [{"heads": 4, "head_size": 8, "ffn": 32}] * 2
    assert student.pooler is None  # mean pooling never reads it
    served_teacher = count_parameters(full) - count_parameters(full.pooler)
    assert info["parameters"] == count_parameters(student) < served_teacher == info["parameters_teacher"]
    for mine, theirs in zip(student.encoder.layer, [full.encoder.layer[0], full.encoder.layer[3]], strict=True):
        assert torch.equal(mine.attention.self.query.weight, theirs.attention.self.query.weight)
        assert mine.intermediate.dense.weight.shape == (32, 32) and mine.output.dense.weight.shape == (32, 32)
    assert len(full.encoder.layer) == 4  # the teacher itself is untouched
    with pytest.raises(ConfigError):
        make_student(full, layers=5)


def test_distillation_moves_the_student_toward_the_teacher(teacher: tuple[Path, Path], tmp_path: Path) -> None:
    enc, hf = teacher
    texts = phrases(400)
    report = distill_student(
        enc,
        hf,
        tmp_path / "student",
        texts,
        OnnxEncoder(enc).encode,
        layers=2,
        options=DistillOptions(max_steps=120, lr=2e-3, warmup_steps=5, batch_size=32, seed=0, threads=1),
    )
    training = report["training"]
    assert training["steps"] == 120
    assert training["loss_last"] < 0.7 * training["loss_first"]
    assert training["cosine_after"] > training["cosine_before"]
    assert training["cosine_after"] > 0.9
    student = OnnxEncoder(tmp_path / "student")
    assert student.config["student"]["teacher_layers_kept"] == [0, 3]
    assert student.dim == 32 and student.model_id == "student-of-tiny-bert"
    held_out = phrases(64, seed=7)
    cos = np.sum(student.encode(held_out) * OnnxEncoder(enc).encode(held_out), axis=1)
    assert cos.mean() > 0.9
    size = (tmp_path / "student" / "model.onnx").stat().st_size
    assert size < (enc / "model.onnx").stat().st_size


def test_budget_stops_training_on_the_injected_clock(teacher: tuple[Path, Path]) -> None:
    enc, hf = teacher
    ticks = iter(range(10_000))
    student, _ = make_student(load_backbone(hf), layers=1)
    report = distill_to_teacher(
        MeanPooledEncoder(student),
        load_tokenizer(enc),
        phrases(200),
        OnnxEncoder(enc).encode,
        DistillOptions(budget_s=5, threads=1, clock=lambda: float(next(ticks))),
    )
    assert report["steps"] == 5


def test_student_onnx_export_matches_torch(teacher: tuple[Path, Path], tmp_path: Path) -> None:
    enc, hf = teacher
    backbone, _ = make_student(load_backbone(hf), layers=2, ffn_keep=0.75)
    model = MeanPooledEncoder(backbone)
    distill_to_teacher(
        model,
        load_tokenizer(enc),
        phrases(100),
        OnnxEncoder(enc).encode,
        DistillOptions(max_steps=10, lr=1e-3, threads=1),
    )
    save_encoder(model, enc, tmp_path / "s", kind="student", report={})
    texts = phrases(16, seed=3)
    got = OnnxEncoder(tmp_path / "s").encode(texts, batch_size=5)
    tok = tiny_tokenizer()
    model.eval()
    for text, row in zip(texts, got, strict=True):
        ids = torch.tensor([tok.encode(text).ids])
        with torch.no_grad():
            want = model(ids, torch.ones_like(ids), torch.zeros_like(ids))[0].numpy()
        np.testing.assert_allclose(row, want, atol=1e-5)


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError):
        DistillOptions(budget_s=0)
    with pytest.raises(ConfigError):
        DistillOptions(max_steps=0)


@pytest.fixture(scope="module")
def tiny_bert_artifacts(teacher: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from shoprec.pipeline.build import build
    from support.tinyshop import tiny_events, tiny_products

    out = tmp_path_factory.mktemp("artifacts") / "tiny-bert"
    build(tiny_products(), out, events=tiny_events(), encoder_dir=teacher[0], progress=False)
    return out


def test_chain_trains_each_model_once_and_writes_a_served_student(
    tiny_bert_artifacts: Path, teacher: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shoprec import artifacts
    from shoprec.models.bundle import load_bundle
    from shoprec.pipeline.ltr import groups_from_judgments
    from shoprec.pipeline.optimize import OptimizeOptions, optimize
    from shoprec.serving.search import SearchService
    from shoprec.training import distill
    from support.tinyshop import tiny_judgments

    calls: list[int] = []
    real = distill.distill_to_teacher

    def counted(*args: object, **kwargs: object) -> dict[str, object]:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(distill, "distill_to_teacher", counted)
    options = OptimizeOptions(
        steps=("student-int8", "student", "prune"),
        gate_fraction=0.01,  # a random tiny teacher: this test is about the wiring, not the quality
        teacher_weights=teacher[1],
        train_max_steps=5,
        student_layers=2,
        threads=1,
        progress=False,
    )
    out = tmp_path / "opt"
    section = optimize(tiny_bert_artifacts, out, options=options, groups=groups_from_judgments(tiny_judgments()))
    assert len(calls) == 2  # the student once for both its steps, the pruned model once
    steps = {s["step"]: s for s in section["steps"]}
    assert set(steps) == {"student-int8", "student", "prune"}
    assert steps["student"]["structure"]["teacher_layers_kept"] == [0, 3]
    assert steps["prune"]["structure"]["shapes"][0] == {"heads": 2, "head_size": 8, "ffn": 32}
    for s in steps.values():
        assert s["products"] in {"re-encoded with this encoder", "teacher vectors kept"}
        assert s["reencode_products_per_s"] > 0 and "ndcg@10_products_reencoded" in s
    assert steps["student-int8"]["size_mb"] < steps["student"]["size_mb"]
    manifest = artifacts.verify(out)
    assert manifest["optimization"]["kept"] == section["kept"]
    bundle = load_bundle(out)
    assert bundle.encoder.model_id == steps[section["kept"]]["model_id"]
    assert SearchService(bundle).search("cordless drill", k=3).hits


def test_student_step_needs_torch_weights_it_knows(tiny_bert_artifacts: Path, tmp_path: Path) -> None:
    from shoprec.pipeline.ltr import groups_from_judgments
    from shoprec.pipeline.optimize import OptimizeOptions, optimize
    from support.tinyshop import tiny_judgments

    with pytest.raises(ConfigError, match="PyTorch weights"):
        optimize(
            tiny_bert_artifacts,
            tmp_path / "o",
            options=OptimizeOptions(steps=("student",), progress=False, threads=1),
            groups=groups_from_judgments(tiny_judgments()),
        )
    assert not (tmp_path / "o").exists()


@pytest.mark.model
def test_gate_refuses_a_student_that_lost_quality_and_writes_nothing(
    tiny_artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shoprec.errors import QualityGateError
    from shoprec.pipeline.ltr import groups_from_judgments
    from shoprec.pipeline.optimize import OptimizeOptions, optimize
    from shoprec.training import distill
    from support.tinyshop import tiny_judgments

    def diverged(model: Any, *_: object, **__: object) -> dict[str, object]:
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():  # training gone wrong: every weight buried in noise
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 3 * (float(p.std()) if p.numel() > 1 else 1.0))
        return {"steps": 1, "seconds": 0.0, "cosine_before": None, "cosine_after": None}

    monkeypatch.setattr(distill, "distill_to_teacher", diverged)
    before = {p: p.stat().st_mtime_ns for p in tiny_artifacts.rglob("*")}
    out = tmp_path / "opt"
    with pytest.raises(QualityGateError, match="'student' refused.*under the gate 0.97 by"):
        optimize(
            tiny_artifacts,
            out,
            options=OptimizeOptions(steps=("student",), progress=False, student_layers=2),
            groups=groups_from_judgments(tiny_judgments()),
        )
    assert not out.exists()
    assert {p: p.stat().st_mtime_ns for p in tiny_artifacts.rglob("*")} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
