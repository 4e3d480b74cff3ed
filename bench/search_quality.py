"""Search quality on the Home Depot judgments: bm25 / dense / hybrid / full, one table.

    .venv/bin/python bench/search_quality.py [--data ../shared/data/homedepot] [--json]

Splits ``judgments_dev.csv`` by query (a stable hash: 70 % train, 30 % held out), builds
artifacts with ``shoprec build --train-judgments <train>`` over all 54,667 products, then
runs ``shoprec eval search --pipeline all`` on the held-out queries. Data is read from the
shared folder and the split is written to a temporary folder, never into the repo.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "homedepot"


def in_train(query: str, train_percent: int) -> bool:
    return int(hashlib.sha1(query.encode("utf-8")).hexdigest(), 16) % 100 < train_percent


def split(judgments: Path, out: Path, train_percent: int) -> tuple[Path, Path]:
    with judgments.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    train, test = out / "train.csv", out / "test.csv"
    for path, keep in ((train, True), (test, False)):
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(r for r in body if in_train(r[0], train_percent) == keep)
    return train, test


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--train-percent", type=int, default=70)
    ap.add_argument("--artifacts", type=Path, help="keep the artifacts here (default: temporary)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    shoprec = str(Path(sys.executable).with_name("shoprec"))
    with tempfile.TemporaryDirectory(prefix="shoprec-bench-") as tmp_s:
        tmp = Path(tmp_s)
        train, test = split(args.data / "judgments_dev.csv", tmp, args.train_percent)
        art = args.artifacts or tmp / "artifacts"
        t = time.perf_counter()
        subprocess.run(
            [
                shoprec,
                "build",
                "--products",
                str(args.data / "products.csv"),
                "--train-judgments",
                str(train),
                "--out",
                str(art),
            ],
            check=True,
        )
        build_s = time.perf_counter() - t
        manifest = json.loads((art / "manifest.json").read_text())
        out = subprocess.run(
            [
                shoprec,
                "eval",
                "search",
                "--artifacts",
                str(art),
                "--judgments",
                str(test),
                "--pipeline",
                "all",
                "--json",
            ],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
    m = manifest["metrics"]
    print(
        f"\nHome Depot, {m['products']} products, held-out queries: {result['queries']} "
        f"(skipped {result['skipped']}); ranker trained on {m['ranker'].get('train_queries')} queries"
    )
    print("\n| pipeline | NDCG@10 | Recall@100 | MRR | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, r in result["pipelines"].items():
        print(
            f"| {name} | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} | {r['mrr']:.4f} | {r['p50_ms']} | {r['p99_ms']} |"
        )
    print(
        f"\nbuild: {build_s:.0f} s wall ({m['timings_s']}), peak RSS {m['peak_rss_mb']} MB, "
        f"vector index {m['vector_index']}"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "pipelines": result["pipelines"],
                    "build_s": round(build_s, 1),
                    "peak_rss_mb": m["peak_rss_mb"],
                    "timings_s": m["timings_s"],
                    "ranker": m["ranker"],
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
