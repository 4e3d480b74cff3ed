"""Export, quantization and the static student on a tiny BERT built in code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoprec.models.encoder import OnnxEncoder
from shoprec.optimize.quantize import quantize_encoder, quantize_encoder_static
from shoprec.optimize.static import distill_static
from support.tinybert import WORDS, tiny_encoder_dir

TEXTS = ["cordless drill", "oak table set", "leather couch", "kitchen tap steel", "red garden hose", "the blue drill"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_encoder_dir(tmp_path_factory.mktemp("tiny") / "enc")


def test_export_matches_torch(tiny: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel

    from shoprec.training.export import MeanPooledEncoder
    from support.tinybert import tiny_tokenizer

    cfg = BertConfig(
        vocab_size=OnnxEncoder(tiny).tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    module = MeanPooledEncoder(BertModel(cfg, add_pooling_layer=False))
    module.load_state_dict(torch.load(tiny.parent / "enc.pt", weights_only=True))
    module.eval()
    tok = tiny_tokenizer()
    onnx_out = OnnxEncoder(tiny).encode(TEXTS, batch_size=1)
    for text, got in zip(TEXTS, onnx_out, strict=True):
        ids = torch.tensor([tok.encode(text).ids])
        with torch.no_grad():
            want = module(ids, torch.ones_like(ids), torch.zeros_like(ids))[0].numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_dynamic_and_static_int8_stay_close_to_fp32(tiny: Path, tmp_path: Path) -> None:
    fp32 = OnnxEncoder(tiny).encode(TEXTS)
    dyn = OnnxEncoder(quantize_encoder(tiny, tmp_path / "dyn")).encode(TEXTS)
    sta = OnnxEncoder(quantize_encoder_static(tiny, tmp_path / "sta", TEXTS * 4)).encode(TEXTS)
    assert np.sum(fp32 * dyn, axis=1).min() > 0.98
    assert np.sum(fp32 * sta, axis=1).min() > 0.95
    assert (tmp_path / "dyn" / "model.onnx").stat().st_size < (tiny / "model.onnx").stat().st_size


def test_static_student_is_the_weighted_mean_of_teacher_token_vectors(tiny: Path, tmp_path: Path) -> None:
    teacher = OnnxEncoder(tiny)
    student = OnnxEncoder(distill_static(tiny, tmp_path / "s", corpus=[]))  # no corpus: every weight is 1
    vocab = teacher.tokenizer.get_vocab()
    for text in TEXTS:
        words = text.split()
        single = teacher.encode(words)  # each word here is one vocabulary token
        want = single.mean(axis=0)
        want /= np.linalg.norm(want)
        np.testing.assert_allclose(student.encode([text])[0], want, atol=1e-5)
    assert all(w in vocab for w in WORDS)


def test_catalog_frequency_down_weights_common_tokens(tiny: Path, tmp_path: Path) -> None:
    teacher = OnnxEncoder(tiny)
    corpus = ["the drill"] * 50 + ["oak table"]
    student = OnnxEncoder(distill_static(tiny, tmp_path / "s", corpus=corpus, sif_a=1e-2))
    got = student.encode(["the oak"])[0]
    oak = teacher.encode(["oak"])[0]
    the = teacher.encode(["the"])[0]
    assert float(got @ oak) > float(got @ the)


def test_int8_table_stays_close(tiny: Path, tmp_path: Path) -> None:
    from shoprec.edge.bundle import _static_table
    from shoprec.optimize.static import static_graph

    s = distill_static(tiny, tmp_path / "s", corpus=TEXTS)
    import onnx

    q = tmp_path / "q"
    q.mkdir()
    onnx.save(static_graph(_static_table(s), int8=True), str(q / "model.onnx"))
    for name in ("tokenizer.json", "encoder.json"):
        (q / name).write_bytes((s / name).read_bytes())
    a, b = OnnxEncoder(s).encode(TEXTS), OnnxEncoder(q).encode(TEXTS)
    assert np.sum(a * b, axis=1).min() > 0.999


def test_mean_pool_matrix_averages_non_special_tokens(tiny: Path) -> None:
    from shoprec.optimize.static import SPECIAL, mean_pool_matrix

    tok = OnnxEncoder(tiny).tokenizer
    vocab = tok.get_vocab()
    special = [i for t, i in vocab.items() if SPECIAL.match(t)]
    x = mean_pool_matrix(tok, ["oak table", "drill drill", ""], len(vocab), special).toarray()
    assert x.shape == (3, len(vocab))
    np.testing.assert_allclose(x[0, [vocab["oak"], vocab["table"]]], [0.5, 0.5])
    assert x[1, vocab["drill"]] == pytest.approx(1.0)  # a repeated token counts twice in the mean
    assert x[:, special].sum() == 0 and x[2].sum() == 0  # [CLS]/[SEP] never enter; an empty text is a zero row


def test_fit_table_solves_the_ridge_problem_and_keeps_unused_tokens() -> None:
    import scipy.sparse as sp

    from shoprec.optimize.static import fit_table

    rng = np.random.default_rng(0)
    vocab, dim, n = 12, 4, 400
    truth = rng.normal(size=(vocab, dim)).astype(np.float32)
    truth[-1] = 0.0  # token 11 is never used by any text
    dense = np.zeros((n, vocab), dtype=np.float32)
    for i in range(n):
        ids = rng.choice(vocab - 1, size=3, replace=False)
        dense[i, ids] = 1 / 3
    x = sp.csr_matrix(dense)
    targets = dense @ truth
    start = rng.normal(size=(vocab, dim)).astype(np.float32)
    fitted, report = fit_table(start, x, targets, l2=1e-6, iterations=200)
    np.testing.assert_allclose(fitted[:-1], truth[:-1], atol=1e-2)
    scale = fitted[-1] / start[-1]  # the unused token keeps the start, rescaled to the targets' scale
    assert scale[0] > 0
    np.testing.assert_allclose(scale, scale[0], rtol=1e-4)
    assert report.cosine_after > 0.999 > report.cosine_before and report.held_out == 20
    strong, _ = fit_table(start, x, targets, l2=1e6, iterations=200)  # a huge ridge keeps the (rescaled) prior
    np.testing.assert_allclose(strong, start * scale[0], atol=1e-3)


def test_fitted_static_student_moves_towards_the_teacher(tiny: Path, tmp_path: Path) -> None:
    from shoprec.core.querygen import generate_queries

    teacher = OnnxEncoder(tiny)
    titles = [" ".join(np.random.default_rng(i).choice(WORDS, size=4)) for i in range(300)]
    fit = titles + generate_queries(titles, seed=0)
    raw = OnnxEncoder(distill_static(tiny, tmp_path / "raw", corpus=titles))
    fitted_dir = distill_static(tiny, tmp_path / "fit", corpus=titles, fit_texts=fit, fit_l2=0.01)
    fitted = OnnxEncoder(fitted_dir)
    probe = [" ".join(np.random.default_rng(1000 + i).choice(WORDS, size=3)) for i in range(50)]
    want = teacher.encode(probe)
    before = float(np.mean(np.sum(raw.encode(probe) * want, axis=1)))
    after = float(np.mean(np.sum(fitted.encode(probe) * want, axis=1)))
    assert after > before
    info = fitted.config["distillation"]["fit"]
    assert info["cosine_after"] > info["cosine_before"] and info["texts"] + info["held_out"] == len(fit)


def test_fp16_conversion_halves_the_weights_and_keeps_the_output(tiny: Path, tmp_path: Path) -> None:
    from shoprec.optimize.quantize import convert_encoder_fp16

    half = OnnxEncoder(convert_encoder_fp16(tiny, tmp_path / "fp16"))
    a, b = OnnxEncoder(tiny).encode(TEXTS), half.encode(TEXTS)
    assert b.dtype == np.float32 and np.sum(a * b, axis=1).min() > 0.999
    assert half.config["quantization"]["method"] == "fp16"
    import onnx

    weights = [t for t in onnx.load(str(tmp_path / "fp16" / "model.onnx")).graph.initializer if len(t.dims) == 2]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)  # every matrix in half
