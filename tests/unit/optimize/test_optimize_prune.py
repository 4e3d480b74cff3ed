"""Structured pruning on a tiny BERT built in code: matrices really shrink, consistently; what
is removed is what scored least; the pruned model runs, exports, and recovers toward the teacher."""

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

from shoprec.training.distill import DistillOptions, load_tokenizer, prune_encoder  # noqa: E402
from shoprec.training.export import MeanPooledEncoder, export_onnx, load_backbone  # noqa: E402
from shoprec.training.prune import (  # noqa: E402
    activation_importance,
    count_parameters,
    prune_backbone,
    prune_ffn,
    prune_heads,
    shapes,
    tokenize,
    weight_importance,
)

HIDDEN, HEADS, HEAD, FFN, LAYERS = 32, 4, 8, 64, 3


def tiny_backbone(seed: int = 0) -> Any:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=64,
        initializer_range=0.2,
    )
    return BertModel(cfg, add_pooling_layer=False).eval()  # type: ignore[no-untyped-call]


def embed(model: MeanPooledEncoder, texts: list[str]) -> np.ndarray:
    ids, mask = tokenize(tiny_tokenizer(), texts, 32)
    with torch.no_grad():
        out: np.ndarray = model(ids, mask, torch.zeros_like(ids)).numpy()
    return out


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("teacher")
    backbone = tiny_backbone()
    backbone.save_pretrained(str(folder / "hf"))
    export_onnx(MeanPooledEncoder(backbone), folder / "enc" / "model.onnx")
    tiny_tokenizer().save(str(folder / "enc" / "tokenizer.json"))
    (folder / "enc" / "encoder.json").write_text(json.dumps({"model_id": "tiny-bert", "dim": 32, "max_seq_length": 32}))
    return folder / "enc", folder / "hf"


def test_pruning_shrinks_every_matrix_consistently_and_counts_add_up() -> None:
    backbone = tiny_backbone()
    before = count_parameters(backbone)
    heads, ffn = weight_importance(backbone)
    report = prune_backbone(backbone, heads, ffn, heads_keep=0.5, ffn_keep=0.25, layers=[0, 2])
    assert shapes(backbone) == [{"heads": 2, "head_size": HEAD, "ffn": 16}] * 2
    for layer in backbone.encoder.layer:
        att = layer.attention.self
        assert att.query.weight.shape == att.key.weight.shape == att.value.weight.shape == (2 * HEAD, HIDDEN)
        assert att.query.bias.shape == (2 * HEAD,)
        assert layer.attention.output.dense.weight.shape == (HIDDEN, 2 * HEAD)
        assert layer.intermediate.dense.weight.shape == (16, HIDDEN)
        assert layer.output.dense.weight.shape == (HIDDEN, 16)
    # per kept layer: q,k,v (2 heads) + output proj + FFN in/out, versus the full layer
    full_layer = 4 * (HIDDEN * HIDDEN + HIDDEN) + (HIDDEN * FFN + FFN) + (FFN * HIDDEN + HIDDEN) + 4 * HIDDEN
    pruned_layer = (
        3 * (HIDDEN * 2 * HEAD + 2 * HEAD) + (2 * HEAD * HIDDEN + HIDDEN) + (HIDDEN * 16 + 16) + (16 * HIDDEN + HIDDEN)
    )
    pruned_layer += 4 * HIDDEN  # two LayerNorms
    assert before - count_parameters(backbone) == LAYERS * full_layer - 2 * pruned_layer
    assert report["parameters_before"] == before and report["parameters_after"] == count_parameters(backbone)
    assert backbone.config.num_hidden_layers == 2 and backbone.config.intermediate_size == 16
    out = embed(MeanPooledEncoder(backbone), phrases(5))
    assert out.shape == (5, HIDDEN) and np.isfinite(out).all()


def test_removing_a_head_or_neuron_that_contributes_nothing_changes_nothing() -> None:
    backbone = tiny_backbone(seed=1)
    layer = backbone.encoder.layer[1]
    with torch.no_grad():
        layer.attention.output.dense.weight[:, 2 * HEAD : 3 * HEAD] = 0.0  # head 2 writes nothing
        layer.output.dense.weight[:, [5, 40]] = 0.0  # neurons 5 and 40 write nothing
    model = MeanPooledEncoder(backbone)
    texts = phrases(8, seed=2)
    want = embed(model, texts)
    heads, ffn = activation_importance(model, tiny_tokenizer(), phrases(50))
    assert int(torch.argmin(heads[1])) == 2 and heads[1][2] == 0
    assert set(torch.topk(-ffn[1], 2).indices.tolist()) == {5, 40}
    w_q = layer.attention.self.query.weight.detach().clone()
    prune_heads(layer, [0, 1, 3])
    prune_ffn(layer, torch.tensor([i for i in range(FFN) if i not in (5, 40)]))
    assert shapes(backbone)[1] == {"heads": 3, "head_size": HEAD, "ffn": FFN - 2}
    kept_rows = torch.cat([w_q[: 2 * HEAD], w_q[3 * HEAD :]])
    assert torch.equal(layer.attention.self.query.weight, kept_rows)
    np.testing.assert_allclose(embed(model, texts), want, atol=1e-5)


def test_bad_pruning_requests_are_refused() -> None:
    backbone = tiny_backbone()
    heads, ffn = weight_importance(backbone)
    with pytest.raises(ConfigError):
        prune_backbone(backbone, heads, ffn, heads_keep=0.0)
    with pytest.raises(ConfigError):
        prune_heads(backbone.encoder.layer[0], [])
    with pytest.raises(ConfigError):
        prune_backbone(backbone, heads, ffn, layers=[0, 0])
    heads_kept = prune_backbone(tiny_backbone(), heads, ffn, heads_keep=0.01, ffn_keep=0.01)
    assert all(s == {"heads": 1, "head_size": HEAD, "ffn": 1} for s in heads_kept["shapes"])


def test_pruned_model_exports_smaller_and_recovers_toward_the_teacher(
    teacher: tuple[Path, Path], tmp_path: Path
) -> None:
    enc, hf = teacher
    teacher_enc = OnnxEncoder(enc)
    report = prune_encoder(
        enc,
        hf,
        tmp_path / "pruned",
        phrases(400),
        teacher_enc.encode,
        heads_keep=0.5,
        ffn_keep=0.5,
        options=DistillOptions(max_steps=120, lr=2e-3, warmup_steps=5, seed=0, threads=1),
    )
    assert report["parameters_after"] < report["parameters_before"]
    assert report["shapes"] == [{"heads": 2, "head_size": HEAD, "ffn": 32}] * LAYERS
    recovery = report["recovery"]
    assert recovery["cosine_after"] > recovery["cosine_before"]
    assert recovery["loss_last"] < recovery["loss_first"]
    pruned = OnnxEncoder(tmp_path / "pruned")
    assert pruned.config["pruned"]["shapes"] == report["shapes"]
    assert (tmp_path / "pruned" / "model.onnx").stat().st_size < 0.8 * (enc / "model.onnx").stat().st_size
    toy = phrases(64, seed=11)
    cos = np.sum(pruned.encode(toy) * teacher_enc.encode(toy), axis=1)
    assert cos.mean() > 0.95


def test_pruned_onnx_matches_torch(teacher: tuple[Path, Path], tmp_path: Path) -> None:
    from shoprec.training.distill import save_encoder

    enc, hf = teacher
    model = MeanPooledEncoder(load_backbone(hf))
    heads, ffn = activation_importance(model, load_tokenizer(enc), phrases(40))
    prune_backbone(model.backbone, heads, ffn, heads_keep=0.75, ffn_keep=0.5, layers=[0, 1])
    save_encoder(model, enc, tmp_path / "p", kind="pruned", report={})
    texts = phrases(12, seed=5)
    np.testing.assert_allclose(OnnxEncoder(tmp_path / "p").encode(texts, batch_size=4), embed(model, texts), atol=1e-5)
