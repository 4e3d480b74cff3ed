"""The naive peer: FastAPI + sentence-transformers encoding per request + brute-force
cosine over the product embeddings. What a team writes first.

    python bench/serve_peers/naive.py --artifacts DIR --port 8001
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Query

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_catalog, load_model, serve_on_loopback, top_k  # noqa: E402


def create_app(artifacts: Path) -> FastAPI:
    model = load_model()
    emb, ids, titles = load_catalog(artifacts)
    app = FastAPI()

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/v1/search")
    def search(q: str = Query(min_length=1, max_length=256), k: int = Query(10, ge=1, le=100)) -> dict[str, object]:
        vec = np.asarray(model.encode(q, normalize_embeddings=True), dtype=np.float32)
        hits = top_k(emb, vec, k)
        return {"query": q, "results": [{"id": ids[i], "title": titles[i], "score": s} for i, s in hits]}

    return app


if __name__ == "__main__":
    serve_on_loopback(create_app)
