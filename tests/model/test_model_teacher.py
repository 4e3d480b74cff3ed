"""The real all-MiniLM-L6-v2, exported to ONNX, against the PyTorch original."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoprec.models.encoder import OnnxEncoder

pytestmark = pytest.mark.model

TEXTS = [
    "cordless drill",
    "BEHR Premium Textured DeckOver 1-gal. #SC-141 Tugboat Wood and Concrete Coating",
    "无线电钻",
    "a",
    "",
    "Ironridge Claw Hammer 16 oz " * 40,  # longer than max_seq_length: truncated, not an error
]


def test_onnx_export_matches_sentence_transformers(teacher_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from shoprec.training.export import teacher_model_dir

    st = SentenceTransformer(str(teacher_model_dir()), device="cpu")
    st.max_seq_length = 128
    enc = OnnxEncoder(teacher_dir)
    ours = enc.encode(TEXTS, batch_size=4)
    ref = st.encode(TEXTS, normalize_embeddings=True, batch_size=4)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    cos = (ours * ref).sum(axis=1)
    assert cos.min() > 0.9999


def test_embeddings_are_normalised_and_order_independent(teacher_dir: Path) -> None:
    enc = OnnxEncoder(teacher_dir)
    a = enc.encode(TEXTS, batch_size=2)
    b = enc.encode(TEXTS[::-1], batch_size=3)[::-1]
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert enc.encode([]).shape == (0, 384)


def test_semantics_survive_export(teacher_dir: Path) -> None:
    enc = OnnxEncoder(teacher_dir)
    sofa, couch, drill = enc.encode(["sofa", "couch", "power drill"])
    assert float(sofa @ couch) > float(sofa @ drill) + 0.2
