"""A static-embedding student distilled from a transformer teacher (in the spirit of model2vec).

Every WordPiece token of the teacher's vocabulary is run through the teacher on its own
(``[CLS] token [SEP]``, ONNX Runtime, so no torch and seconds rather than minutes); its
pooled output is the token's vector, which therefore lives in the teacher's embedding space.
Tokens are down-weighted by their frequency in the catalog (SIF: ``a / (a + p)``), so words
that every title shares count little. A text's vector is the weighted mean of its token
vectors, L2-normalised.

Optionally the table is then **fitted to the teacher** (in the spirit of model2vec's
tokenlearn): on catalog texts and generated queries, each text's mean token vector is
regressed onto the teacher's embedding of the whole text — a ridge least-squares problem
``min ||X T - Y||² + λ ||T - T0||²`` (``X`` the texts' mean-pooling matrix, sparse; ``T0``
the per-token table above, which tokens the texts never use keep). It is solved by
conjugate gradients with SciPy sparse products, all 384 columns at once, in seconds, with
no torch. This is what makes short queries land near the teacher's vector for them: the
per-token table alone cannot know that "wall" next to "mount" means a bracket.

The student is exported as an ONNX graph (``Gather`` → masked mean → L2 norm) with the
same inputs as the teacher and the teacher's ``tokenizer.json``, so :class:`OnnxEncoder`
serves it unchanged. Special tokens get zero vectors: they add nothing to the sum, and
the mean's divisor only scales a vector that is normalised afterwards.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import scipy.sparse as sp
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

from shoprec.atomicio import build_folder
from shoprec.models.encoder import OnnxEncoder

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class FitReport:
    texts: int
    held_out: int
    l2: float
    iterations: int
    cosine_before: float
    cosine_after: float
    seconds: float


def mean_pool_matrix(tokenizer: Tokenizer, texts: Sequence[str], size: int, special: Sequence[int]) -> sp.csr_matrix:
    """Sparse [texts, vocab]: row ``i`` averages the (non-special) tokens of ``texts[i]``,
    tokenised exactly as the encoder does (its truncation included)."""
    drop = np.zeros(size, dtype=bool)
    drop[np.asarray(list(special), dtype=np.int64)] = True
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    vals: list[npt.NDArray[np.float32]] = []
    for i, enc in enumerate(tokenizer.encode_batch(list(texts))):
        ids = np.asarray(enc.ids, dtype=np.int64)
        ids = ids[~drop[ids]]
        if len(ids) == 0:
            continue
        rows.append(np.full(len(ids), i, dtype=np.int64))
        cols.append(ids)
        vals.append(np.full(len(ids), 1.0 / len(ids), dtype=np.float32))
    if not rows:
        return sp.csr_matrix((len(texts), size), dtype=np.float32)
    m = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(texts), size), dtype=np.float32
    )
    return m.tocsr()  # duplicates (a token twice) are summed: its weight counts twice, as in the mean


def _row_cosine(pred: npt.NDArray[np.float32], target: npt.NDArray[np.float32]) -> float:
    norms = np.linalg.norm(pred, axis=1) * np.linalg.norm(target, axis=1)
    return float(np.mean(np.sum(pred * target, axis=1) / np.clip(norms, 1e-12, None)))


def fit_table(
    table: npt.NDArray[np.float32],
    x: sp.csr_matrix,
    targets: npt.NDArray[np.float32],
    *,
    l2: float = 0.1,
    iterations: int = 60,
    held_out: float = 0.05,
    seed: int = 0,
    progress: bool = False,
) -> tuple[npt.NDArray[np.float32], FitReport]:
    """Ridge fit of ``table`` so that ``x @ table ≈ targets`` (rows of ``x`` average token
    vectors), shrunk towards the given table; ``l2`` is relative to the mean squared row
    weight of the used tokens. Conjugate gradients on the normal equations, every column at
    once. A seeded ``held_out`` share of the rows is kept out and scored (mean cosine)."""
    if x.shape[0] != len(targets) or x.shape[1] != len(table):
        raise ValueError(f"shapes disagree: x {x.shape}, targets {targets.shape}, table {table.shape}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    order = rng.permutation(x.shape[0])
    n_out = int(round(held_out * x.shape[0])) if x.shape[0] >= 20 else 0
    test, train = order[:n_out], order[n_out:]
    xt, yt = x[train], np.asarray(targets[train], dtype=np.float32)
    xe, ye = x[test], np.asarray(targets[test], dtype=np.float32)
    base = np.asarray(table, dtype=np.float32)
    pred0 = np.asarray(xt @ base)
    denom = float(np.sum(pred0 * pred0))
    scale = float(np.sum(pred0 * yt)) / denom if denom > 0 else 1.0  # the shrinkage target on the targets' scale
    prior = base * np.float32(scale if scale > 0 else 1.0)
    diag = np.asarray(xt.multiply(xt).sum(axis=0)).ravel()
    used = diag > 0
    lam = np.float32(l2 * (diag[used].mean() if used.any() else 1.0))
    xtt = xt.T.tocsr()

    def apply(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(xtt @ (xt @ v), dtype=np.float32) + lam * v

    out = prior.copy()
    r = np.asarray(xtt @ (yt - xt @ out), dtype=np.float32)  # = b - A·prior (the ridge term vanishes there)
    p = r.copy()
    rs = np.sum(r * r, axis=0)
    steps = range(iterations)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="fitting the static table", unit="it")
    done = 0
    for _ in steps:
        ap = apply(p)
        alpha = rs / np.clip(np.sum(p * ap, axis=0), 1e-30, None)
        out += p * alpha
        r -= ap * alpha
        rs_new = np.sum(r * r, axis=0)
        done += 1
        if float(rs_new.max()) < 1e-10:
            break
        p = r + p * (rs_new / np.clip(rs, 1e-30, None))
        rs = rs_new
    report = FitReport(
        texts=len(train),
        held_out=len(test),
        l2=l2,
        iterations=done,
        cosine_before=round(_row_cosine(np.asarray(xe @ base), ye), 4) if n_out else 0.0,
        cosine_after=round(_row_cosine(np.asarray(xe @ out), ye), 4) if n_out else 0.0,
        seconds=round(time.perf_counter() - t0, 1),
    )
    return out.astype(np.float32), report


def distill_static(
    teacher_dir: Path,
    out_dir: Path,
    corpus: Sequence[str],
    *,
    sif_a: float = 1e-3,
    fp16: bool = False,
    fit_texts: Sequence[str] = (),
    fit_targets: npt.NDArray[np.float32] | None = None,
    fit_l2: float = 0.1,
    fit_iterations: int = 60,
    progress: bool = False,
    threads: int | None = None,
    teacher_encode: Callable[[Sequence[str]], npt.NDArray[np.float32]] | None = None,
) -> Path:
    """Write a static student of the encoder at ``teacher_dir`` into ``out_dir`` (atomically).

    With ``fit_texts`` the per-token table is then fitted to the teacher's embeddings of
    those texts (``fit_targets``, or computed with ``teacher_encode`` / the teacher)."""
    teacher_dir, out_dir = Path(teacher_dir), Path(out_dir)
    teacher = OnnxEncoder(teacher_dir, threads=threads)
    vectors, special = token_vectors(teacher, progress=progress)
    weights = sif_weights(teacher.tokenizer, corpus, len(vectors), a=sif_a)
    table = vectors * weights[:, None]
    table[special] = 0.0
    fit: FitReport | None = None
    if fit_texts:
        texts = list(fit_texts)
        if fit_targets is None:
            encode = teacher_encode or (lambda batch: teacher.encode(batch, batch_size=64, progress=progress))
            fit_targets = np.asarray(encode(texts), dtype=np.float32)
        x = mean_pool_matrix(teacher.tokenizer, texts, len(table), special)
        table, fit = fit_table(table, x, fit_targets, l2=fit_l2, iterations=fit_iterations, progress=progress)
        table[special] = 0.0
        log.info("static table fitted: held-out cosine %.4f -> %.4f", fit.cosine_before, fit.cosine_after)
    method = "per-token teacher output, SIF weights from the catalog"
    if fit is not None:
        method += "; then ridge-fitted to the teacher's embeddings of catalog texts and generated queries"
    with build_folder(out_dir, required="model.onnx") as tmp:
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
                "method": method,
                "sif_a": sif_a,
                "corpus_texts": len(corpus),
                "vocab": int(table.shape[0]),
                "dtype": "float16" if fp16 else "float32",
                **({"fit": asdict(fit)} if fit is not None else {}),
            },
        }
        (tmp / "encoder.json").write_text(json.dumps(config, indent=2))
    return out_dir
