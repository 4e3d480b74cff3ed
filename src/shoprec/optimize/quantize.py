"""int8 dynamic quantisation of an ONNX encoder folder with ONNX Runtime.

Per-channel weights keep cosine similarity to fp32 at about 0.99 (per-tensor only ~0.96,
measured on MiniLM), at roughly 2-3x the CPU throughput and a quarter of the size.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic


def quantize_encoder(src: Path, dst: Path, *, per_channel: bool = True) -> Path:
    """Write an int8 copy of the encoder folder ``src`` to ``dst`` (atomically)."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}-", dir=dst.parent))
    try:
        config = json.loads((src / "encoder.json").read_text())
        quantize_dynamic(
            str(src / config.get("model_file", "model.onnx")),
            str(tmp / "model.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
        )
        shutil.copyfile(src / "tokenizer.json", tmp / "tokenizer.json")
        config.update(
            model_file="model.onnx",
            quantization={"method": "dynamic", "weights": "int8", "per_channel": per_channel},
        )
        (tmp / "encoder.json").write_text(json.dumps(config, indent=2))
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst
