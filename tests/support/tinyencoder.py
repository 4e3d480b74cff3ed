"""A tiny text encoder built in code, without torch: for tests of everything around the model.

The encoder folder holds what :class:`shoprec.models.encoder.OnnxEncoder` serves:

- ``model.onnx``: the static student's graph (:func:`shoprec.optimize.static.static_graph`:
  ``input_ids``/``attention_mask`` [batch, seq] int64 → the L2-normalised masked mean of rows
  of a seeded embedding table, [batch, dim] float32 — what a mean-pooled encoder outputs);
- ``tokenizer.json``: a word-level ``tokenizers`` tokenizer (BERT normalisation and
  pre-tokenisation, so CJK characters are words of their own) over the words of the texts
  it is built from, ``[UNK]`` for every other word, ``[CLS] … [SEP]`` around each text;
- ``encoder.json``: ``model_id``, ``dim``, ``max_seq_length``.

The table's rows are orthonormal, so a text's vector is its bag of words and two texts are
exactly as near as the words they share: seeded, deterministic, meaningless beyond that. No
synonym, typo or translation is ever near its word; tests of such semantics use MiniLM.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import onnx
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from shoprec.optimize.static import static_graph
from shoprec.types import Product

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
MODEL_ID = "tiny-bag-of-words"
MAX_SEQ_LENGTH = 64


def _normalizer() -> normalizers.Normalizer:
    return normalizers.BertNormalizer(lowercase=True)


def vocabulary(texts: Iterable[str]) -> list[str]:
    """The special tokens, then every distinct word of ``texts`` as the tokenizer splits them."""
    norm, pre = _normalizer(), pre_tokenizers.BertPreTokenizer()
    words = {w for text in texts for w, _ in pre.pre_tokenize_str(norm.normalize_str(text))}
    return [PAD, UNK, CLS, SEP, *sorted(words)]


def tokenizer(vocab: list[str]) -> Tokenizer:
    ids = {w: i for i, w in enumerate(vocab)}
    tok = Tokenizer(models.WordLevel(ids, unk_token=UNK))
    tok.normalizer = _normalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}", special_tokens=[(CLS, ids[CLS]), (SEP, ids[SEP])]
    )
    return tok


def table(size: int, *, seed: int = 0) -> np.ndarray:
    """[size, dim] float32, ``dim`` = ``size`` rounded up to a multiple of 8: orthonormal rows
    (seeded), except ``[PAD]`` and ``[SEP]`` (zero: they add nothing) and ``[CLS]`` (a tenth
    of a row: every text shares it, and an input of special tokens alone is not a zero vector)."""
    dim = -(-size // 8) * 8
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    rows = q[:size].astype(np.float32)
    rows[0] = 0.0  # [PAD]
    rows[2] *= 0.1  # [CLS]
    rows[3] = 0.0  # [SEP]
    return rows


def catalog_texts(products: Sequence[Product]) -> list[str]:
    """Every word a product shows: what the tiny encoder's vocabulary is built from."""
    return [f"{p.title} {p.description} {p.brand} {p.category}" for p in products]


def write_encoder(folder: Path, texts: Iterable[str], *, seed: int = 0) -> Path:
    """An encoder folder over the words of ``texts`` (see the module docstring)."""
    vocab = vocabulary(texts)
    embedding = table(len(vocab), seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(static_graph(embedding), str(folder / "model.onnx"))
    tokenizer(vocab).save(str(folder / "tokenizer.json"))
    config = {"model_id": MODEL_ID, "dim": int(embedding.shape[1]), "max_seq_length": MAX_SEQ_LENGTH}
    (folder / "encoder.json").write_text(json.dumps(config, indent=2))
    return folder
