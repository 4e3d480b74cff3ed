"""The ONNX Runtime text encoder: the only module that imports onnxruntime.

An encoder folder holds ``model.onnx`` (inputs ``input_ids``, ``attention_mask``,
optionally ``token_type_ids``; output ``[batch, dim]`` float32), ``tokenizer.json``
(Hugging Face ``tokenizers``) and ``encoder.json`` (``model_id``, ``dim``,
``max_seq_length``). Any model exported that way — from PyTorch, Keras or TensorFlow —
is served unchanged. The execution provider is picked once (CUDA when present, else
CPU) and logged.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from shoprec.errors import ArtifactError
from shoprec.types import FloatArray

log = logging.getLogger(__name__)

_provider_choice: list[str] | None = None


def pick_providers() -> list[str]:
    """CUDA when onnxruntime has it, else CPU. Chosen once per process and logged."""
    global _provider_choice
    if _provider_choice is None:
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" in available:
            _provider_choice = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            _provider_choice = ["CPUExecutionProvider"]
        log.info("onnxruntime execution provider: %s", _provider_choice[0])
    return list(_provider_choice)


def _session_options(threads: int | None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    n = threads if threads is not None else max(1, os.cpu_count() or 1)
    opts.intra_op_num_threads = n
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # Serving interleaves the encoder with BM25, FAISS and the ranker on the same cores: idle
    # ONNX Runtime threads that spin between calls take those cores (measured 2-3x slower
    # requests in the server), so they sleep instead.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OnnxEncoder:
    """Encodes texts to L2-normalised vectors with an ONNX model and a ``tokenizers`` file."""

    def __init__(self, folder: str | Path, *, threads: int | None = None) -> None:
        folder = Path(folder)
        try:
            self.config: dict[str, Any] = json.loads((folder / "encoder.json").read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{folder}/encoder.json: unreadable encoder config: {exc}") from exc
        model_path = folder / str(self.config.get("model_file", "model.onnx"))
        tok_path = folder / "tokenizer.json"
        for p in (model_path, tok_path):
            if not p.is_file():
                raise ArtifactError(f"encoder file missing: {p}")
        self.model_id = str(self.config.get("model_id", folder.name))
        self.max_seq_length = int(self.config.get("max_seq_length", 128))
        self.providers = pick_providers()
        self.session = ort.InferenceSession(
            str(model_path), sess_options=_session_options(threads), providers=self.providers
        )
        self._input_names = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(tok_path))
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        out_shape = self.session.get_outputs()[0].shape
        dim = self.config.get("dim", out_shape[-1] if isinstance(out_shape[-1], int) else None)
        if dim is None:
            raise ArtifactError(f"{folder}/encoder.json: cannot tell the embedding dimension")
        self._dim = int(dim)
        self.normalize = bool(self.config.get("normalize", True))

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def batches_worth_it(self) -> bool:
        """False for a static (lookup-table) encoder: one query costs tens of microseconds,
        less than the wait and thread hop of a dynamic batch, so the server encodes it
        inline with the rest of the search instead."""
        return self.config.get("kind") != "static"

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    def _encode_batch(self, texts: Sequence[str]) -> FloatArray:
        encs = self.tokenizer.encode_batch(list(texts))
        ids = np.asarray([e.ids for e in encs], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encs], dtype=np.int64)
        feeds: dict[str, np.ndarray] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        out = self.session.run(None, feeds)[0]
        vecs = np.asarray(out, dtype=np.float32)
        if vecs.ndim == 3:  # a raw encoder exported without pooling: mean-pool here
            m = mask[..., None].astype(np.float32)
            vecs = (vecs * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        if self.normalize:
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            vecs = vecs / np.clip(norms, 1e-12, None)
        return vecs.astype(np.float32, copy=False)

    def encode(self, texts: Sequence[str], batch_size: int = 32, *, progress: bool = False) -> FloatArray:
        """Encode ``texts``; sorts by length inside so padding stays small."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="encoding", unit="batch", total=len(starts))
        for start in starts:
            idx = order[start : start + batch_size]
            out[idx] = self._encode_batch([texts[i] for i in idx])
        return out
