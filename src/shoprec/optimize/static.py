"""A static-embedding student distilled from a transformer teacher (in the spirit of model2vec).

Every WordPiece token of the teacher's vocabulary is run through the teacher on its own
(``[CLS] token [SEP]``, ONNX Runtime, so no torch and seconds rather than minutes); its
pooled output is the token's vector, which therefore lives in the teacher's embedding space.
Tokens are down-weighted by their frequency in the catalog (SIF: ``a / (a + p)``), so words
that every title shares count little. A text's vector is the weighted mean of its token
vectors, L2-normalised.

The student is exported as an ONNX graph (``Gather`` → masked mean → L2 norm) with the
same inputs as the teacher and the teacher's ``tokenizer.json``, so :class:`OnnxEncoder`
serves it unchanged. Special tokens get zero vectors: they add nothing to the sum, and
the mean's divisor only scales a vector that is normalised afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

from shoprec.models.encoder import OnnxEncoder

OPSET = 17
SPECIAL = re.compile(r"^\[(CLS|SEP|PAD|MASK|UNK|unused\d+)\]$")


def static_graph(embedding: npt.NDArray[np.floating], *, fp16: bool = False, int8: bool = False) -> onnx.ModelProto:
    """ONNX graph: ``input_ids``/``attention_mask`` [batch, seq] int64 → L2-normalised masked
    mean of ``embedding[input_ids]`` as ``sentence_embedding`` [batch, dim] float32. With
    ``int8`` the table is stored as int8 with one float scale per row (symmetric)."""
    emb = np.asarray(embedding, dtype=np.float32)
    extra: list[onnx.TensorProto] = []
    if int8:
        scale = np.abs(emb).max(axis=1, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        table = np.round(emb / scale).astype(np.int8)
        extra.append(numpy_helper.from_array(scale.astype(np.float32), "row_scale"))
        nodes = [
            helper.make_node("Gather", ["table", "input_ids"], ["gathered"], axis=0),
            helper.make_node("Gather", ["row_scale", "input_ids"], ["scales"], axis=0),
            helper.make_node("Cast", ["gathered"], ["tokq"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["tokq", "scales"], ["tok"]),
        ]
    else:
        table = emb.astype(np.float16) if fp16 else emb
        nodes = [helper.make_node("Gather", ["table", "input_ids"], ["gathered"], axis=0)]
        if fp16:
            nodes.append(helper.make_node("Cast", ["gathered"], ["tok"], to=TensorProto.FLOAT))
        else:
            nodes.append(helper.make_node("Identity", ["gathered"], ["tok"]))
    nodes += [
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis_last"], ["mask3"]),
        helper.make_node("Mul", ["tok", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis_seq"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["maskf", "axis_seq"], ["count"], keepdims=1),
        helper.make_node("Max", ["count", "one"], ["count1"]),
        helper.make_node("Div", ["summed", "count1"], ["mean"]),
        helper.make_node("LpNormalization", ["mean"], ["sentence_embedding"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes,
        "static_student",
        inputs=[
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        outputs=[helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", table.shape[1]])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.asarray([2], dtype=np.int64), "axis_last"),
            numpy_helper.from_array(np.asarray([1], dtype=np.int64), "axis_seq"),
            numpy_helper.from_array(np.asarray([1.0], dtype=np.float32), "one"),
            *extra,
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def token_vectors(
    teacher: OnnxEncoder, *, batch_size: int = 1024, progress: bool = False
) -> tuple[npt.NDArray[np.float32], list[int]]:
    """The teacher's pooled output for every vocabulary token alone; special tokens get zeros.
    Returns (vectors [vocab, dim], ids of the special tokens)."""
    vocab = teacher.tokenizer.get_vocab()
    size = max(vocab.values()) + 1
    cls_id, sep_id = vocab.get("[CLS]"), vocab.get("[SEP]")
    special = sorted(i for t, i in vocab.items() if SPECIAL.match(t))
    keep = np.asarray(sorted(set(vocab.values()) - set(special)), dtype=np.int64)
    out = np.zeros((size, teacher.dim), dtype=np.float32)
    names = {i.name for i in teacher.session.get_inputs()}
    starts = range(0, len(keep), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="distilling token vectors", unit="batch", total=len(starts))
    for start in starts:
        ids = keep[start : start + batch_size]
        cols = [ids[:, None]]
        if cls_id is not None:
            cols.insert(0, np.full((len(ids), 1), cls_id, dtype=np.int64))
        if sep_id is not None:
            cols.append(np.full((len(ids), 1), sep_id, dtype=np.int64))
        input_ids = np.concatenate(cols, axis=1)
        feeds = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        vecs = np.asarray(teacher.session.run(None, feeds)[0], dtype=np.float32)
        if vecs.ndim == 3:
            vecs = vecs.mean(axis=1)
        out[ids] = vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
    return out, special


def sif_weights(tokenizer: Tokenizer, corpus: Sequence[str], size: int, *, a: float = 1e-3) -> npt.NDArray[np.float32]:
    """``a / (a + p(token))`` with ``p`` the token's frequency in ``corpus`` (1 when unseen)."""
    counts = np.zeros(size, dtype=np.float64)
    if corpus:
        for enc in tokenizer.encode_batch(list(corpus), add_special_tokens=False):
            np.add.at(counts, np.asarray(enc.ids, dtype=np.int64), 1.0)
    total = counts.sum()
    p = counts / total if total > 0 else counts
    return (a / (a + p)).astype(np.float32)


def distill_static(
    teacher_dir: Path,
    out_dir: Path,
    corpus: Sequence[str],
    *,
    sif_a: float = 1e-3,
    fp16: bool = False,
    progress: bool = False,
    threads: int | None = None,
) -> Path:
    """Write a static student of the encoder at ``teacher_dir`` into ``out_dir`` (atomically)."""
    teacher_dir, out_dir = Path(teacher_dir), Path(out_dir)
    teacher = OnnxEncoder(teacher_dir, threads=threads)
    vectors, special = token_vectors(teacher, progress=progress)
    weights = sif_weights(teacher.tokenizer, corpus, len(vectors), a=sif_a)
    table = vectors * weights[:, None]
    table[special] = 0.0
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        onnx.save(static_graph(table, fp16=fp16), str(tmp / "model.onnx"))
        shutil.copyfile(teacher_dir / "tokenizer.json", tmp / "tokenizer.json")
        config = {
            "model_id": f"static-student-of-{teacher.model_id.rsplit('/', 1)[-1]}",
            "kind": "static",
            "dim": int(table.shape[1]),
            "max_seq_length": teacher.max_seq_length,
            "pooling": "sif-weighted mean+l2 (in graph)",
            "distillation": {
                "teacher": teacher.model_id,
                "method": "per-token teacher output, SIF weights from the catalog",
                "sif_a": sif_a,
                "corpus_texts": len(corpus),
                "vocab": int(table.shape[0]),
                "dtype": "float16" if fp16 else "float32",
            },
        }
        (tmp / "encoder.json").write_text(json.dumps(config, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
