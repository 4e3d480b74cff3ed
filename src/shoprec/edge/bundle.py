"""Write an edge bundle from an artifacts folder.

Layout::

    model.onnx      int8 static student (Gather of an int8 table × per-row scale → mean → L2)
    vocab.txt       the WordPiece vocabulary, one token a line (id = line number)
    items.npy       top-N item vectors, float16 [n, dim], L2-normalised
    items.jsonl     {"id", "title"} per row of items.npy
    edge.json       what it holds, and from which artifacts
    wordpiece.py    the pure-Python tokenizer; query.py the standalone query script

The student is the artifacts' own encoder when it is already static; otherwise one is
distilled from it. Items are the N most popular (by build-time events), else the first N.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper
from tokenizers import Tokenizer

from shoprec.atomicio import build_folder
from shoprec.models.bundle import load_bundle, product_dense_text
from shoprec.models.encoder import OnnxEncoder
from shoprec.optimize.measure import folder_size_mb
from shoprec.optimize.static import distill_static, static_graph

HERE = Path(__file__).parent


def _static_table(encoder_dir: Path) -> np.ndarray:
    model = onnx.load(str(encoder_dir / "model.onnx"))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    table = inits["table"].astype(np.float32)
    if "row_scale" in inits:
        table = table * inits["row_scale"]
    return table


def make_edge_bundle(artifacts_dir: Path, out: Path, *, top_n: int = 10_000, progress: bool = False) -> dict[str, Any]:
    """Write the edge bundle for ``artifacts_dir`` into ``out`` (temp folder, then rename)."""
    artifacts_dir, out = Path(artifacts_dir), Path(out)
    bundle = load_bundle(artifacts_dir)
    enc_dir = artifacts_dir / "encoder"
    with build_folder(out) as tmp:
        products = bundle.catalog.products
        if bundle.encoder.config.get("kind") == "static":
            student_dir, reencode = enc_dir, False
        else:
            student_dir = distill_static(enc_dir, tmp / ".student", [product_dense_text(p) for p in products])
            reencode = True
        onnx.save(static_graph(_static_table(student_dir), int8=True), str(tmp / "model.onnx"))
        vocab = Tokenizer.from_file(str(student_dir / "tokenizer.json")).get_vocab()
        tokens = [""] * (max(vocab.values()) + 1)
        for tok, i in vocab.items():
            tokens[i] = tok
        (tmp / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
        pop = bundle.catalog.popularity
        order = np.argsort(-pop, kind="stable") if pop is not None and pop.any() else np.arange(len(products))
        idx = order[:top_n]
        if reencode:
            student = OnnxEncoder(student_dir)
            vecs = student.encode([product_dense_text(products[i]) for i in idx], batch_size=256, progress=progress)
        else:
            vecs = np.asarray(bundle.embeddings[idx], dtype=np.float32)
        np.save(tmp / "items.npy", vecs.astype(np.float16), allow_pickle=False)
        with (tmp / "items.jsonl").open("w", encoding="utf-8") as f:
            for i in idx:
                f.write(json.dumps({"id": products[i].id, "title": products[i].title}, ensure_ascii=False) + "\n")
        shutil.copyfile(HERE / "wordpiece.py", tmp / "wordpiece.py")
        shutil.copyfile(HERE / "query.py", tmp / "query.py")
        shutil.rmtree(tmp / ".student", ignore_errors=True)
        info = {
            "source": str(artifacts_dir),
            "source_model_id": bundle.model_id,
            "items": len(idx),
            "dim": int(vecs.shape[1]),
            "max_seq_length": int(bundle.encoder.max_seq_length),
            "lowercase": True,
        }
        (tmp / "edge.json").write_text(json.dumps(info, indent=2))
        info["size_mb"] = folder_size_mb(tmp)
    return info
