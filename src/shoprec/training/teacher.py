"""The fp32 PyTorch teacher as a plain ``encode(texts, batch_size)`` function: the baseline
that ``shoprec bench encoder --against-teacher`` compares every encoder with."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tokenizers import Tokenizer

from shoprec.training.export import MeanPooledEncoder, load_backbone, teacher_model_dir


def pytorch_teacher(threads: int | None = None) -> tuple[Callable[[Sequence[str], int], np.ndarray], float]:
    """(encode, size of the weights on disk in MB) for all-MiniLM-L6-v2 in PyTorch fp32."""
    src = teacher_model_dir()
    torch.set_num_threads(threads or max(1, os.cpu_count() or 1))
    module = MeanPooledEncoder(load_backbone(src))
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    tok.enable_truncation(max_length=128)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")

    def encode(texts: Sequence[str], batch_size: int) -> np.ndarray:
        encs = tok.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encs], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encs], dtype=torch.long)
        with torch.inference_mode():
            out: np.ndarray = module(ids, mask, torch.zeros_like(ids)).numpy()
        return out

    weights = list(src.rglob("*.safetensors")) or list(src.rglob("*.bin"))
    return encode, round(sum(p.stat().st_size for p in weights) / 1e6, 2)
