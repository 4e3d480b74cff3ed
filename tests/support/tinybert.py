"""A tiny BERT encoder folder built in code (tokenizer + random weights), no download."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer

WORDS = [
    "the",
    "a",
    "drill",
    "cordless",
    "oak",
    "table",
    "leather",
    "couch",
    "kitchen",
    "tap",
    "garden",
    "hose",
    "steel",
    "blue",
    "red",
    "set",
    "of",
]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s", "##ed", "##er", "-", "/", ".", "1", "2"]


def tiny_tokenizer() -> Tokenizer:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tok


def phrases(n: int, *, seed: int = 0) -> list[str]:
    """``n`` seeded phrases of 1-5 vocabulary words."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5))) for _ in range(n)]


def tiny_encoder_dir(folder: Path, *, seed: int = 0) -> Path:
    """model.onnx (2 layers, hidden 32, mean pooling + L2 in graph) + tokenizer.json + encoder.json."""
    import torch
    from transformers import BertConfig, BertModel

    from shoprec.training.export import MeanPooledEncoder, export_onnx

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    module = MeanPooledEncoder(BertModel(cfg, add_pooling_layer=False).eval())
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(module, folder / "model.onnx")
    tiny_tokenizer().save(str(folder / "tokenizer.json"))
    (folder / "encoder.json").write_text(json.dumps({"model_id": "tiny-bert", "dim": 32, "max_seq_length": 32}))
    torch.save(module.state_dict(), folder.parent / f"{folder.name}.pt")
    return folder
