"""Answer a query from an edge bundle with nothing but onnxruntime and numpy (offline).

Run it from inside the bundle folder (it sits there beside ``wordpiece.py``)::

    python query.py "cordless drill" [-k 10] [--repeat 200]

Prints one JSON object: the top items, the bundle size, and the query latency (median and
p99 over ``--repeat`` runs, tokenisation included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from wordpiece import WordPieceTokenizer  # noqa: E402


class EdgeSearch:
    def __init__(self, folder: Path = HERE) -> None:
        info = json.loads((folder / "edge.json").read_text())
        self.tokenizer = WordPieceTokenizer.from_file(folder / "vocab.txt", max_length=int(info["max_seq_length"]))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        self.items = np.load(folder / "items.npy", allow_pickle=False).astype(np.float32)
        with (folder / "items.jsonl").open(encoding="utf-8") as f:
            self.meta = [json.loads(line) for line in f if line.strip()]

    def encode(self, text: str) -> Any:
        ids = np.asarray([self.tokenizer.encode(text)], dtype=np.int64)
        return self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]

    def search(self, text: str, k: int = 10) -> list[dict[str, Any]]:
        scores = self.items @ self.encode(text)
        top = np.argsort(-scores)[:k]
        return [{**self.meta[i], "score": round(float(scores[i]), 4)} for i in top]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("query")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=100, help="runs to time")
    args = ap.parse_args(argv)
    edge = EdgeSearch()
    hits = edge.search(args.query, args.k)
    lat = []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        edge.search(args.query, args.k)
        lat.append((time.perf_counter() - t) * 1000)
    size = sum(p.stat().st_size for p in HERE.iterdir() if p.is_file())
    out = {
        "query": args.query,
        "hits": hits,
        "size_mb": round(size / 1e6, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
    }
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
