"""CUDA execution provider: parity with CPU for the teacher and its optimized encoders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.model,  # the teacher is MiniLM
    pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(), reason="no CUDA provider"),
]

TEXTS = ["cordless drill 18v", "leather couch", "kitchen tap chrome", "garden hose 50 ft"] * 8


def _run(folder: Path, providers: list[str]) -> np.ndarray:
    from shoprec.models.encoder import OnnxEncoder

    enc = OnnxEncoder(folder)
    enc.session = ort.InferenceSession(str(folder / "model.onnx"), providers=providers)
    return enc.encode(TEXTS)


def test_cuda_matches_cpu(teacher_dir: Path, tmp_path: Path) -> None:
    from shoprec.models.encoder import pick_providers
    from shoprec.optimize.static import distill_static

    assert pick_providers()[0] == "CUDAExecutionProvider"
    student = distill_static(teacher_dir, tmp_path / "static", ["cordless drill"])
    for folder in (teacher_dir, student):
        cpu = _run(folder, ["CPUExecutionProvider"])
        gpu = _run(folder, ["CUDAExecutionProvider"])
        assert np.sum(cpu * gpu, axis=1).min() > 0.999


def test_fp16_on_cuda_matches_fp32_on_cpu(teacher_dir: Path, tmp_path: Path) -> None:
    from shoprec.optimize.quantize import convert_encoder_fp16

    half = convert_encoder_fp16(teacher_dir, tmp_path / "fp16")
    cpu32 = _run(teacher_dir, ["CPUExecutionProvider"])
    gpu16 = _run(half, ["CUDAExecutionProvider"])
    assert np.sum(cpu32 * gpu16, axis=1).min() > 0.99
