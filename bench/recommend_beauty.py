"""Next-item recommendation on Amazon Beauty (S3Rec/ICLRec protocol): one Markdown table.

    .venv/bin/python bench/recommend_beauty.py [--data ../shared/data/beauty]
        [--models popularity,cooccurrence,sasrec] [--no-attributes] [--json]

Trains popularity, co-occurrence and SASRec-CE on the training part of each user's
sequence, early-stops SASRec on the validation item, blends SASRec with co-occurrence
(one weight, chosen on the validation items), and ranks all 12,101 items for the last
item of each of the 22,363 users. The data is read in place, never copied.
Published under the same protocol: ICLRec NDCG@10 0.0403 / HR@10 0.0744,
most-popular NDCG@10 0.0061.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from shoprec.pipeline.recommend_eval import MODELS, evaluate_recommenders

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/beauty"
PUBLISHED = {"ICLRec (published)": {"hr@10": 0.0744, "ndcg@10": 0.0403}}
COLUMNS = ("hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20")


def table(result: dict[str, Any]) -> str:
    head = "| model | " + " | ".join(c.upper() for c in COLUMNS) + " | epochs | seconds |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 3)]
    rows: dict[str, dict[str, Any]] = {**result["models"], **PUBLISHED}
    for name, m in rows.items():
        cells = [f"{m[c]:.4f}" if c in m else "" for c in COLUMNS]
        epochs = f"{m['best_epoch']}/{m['epochs']}" if "epochs" in m else ""
        seconds = f"{m['seconds']:.0f}" if "seconds" in m else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {epochs} | {seconds} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--no-attributes", action="store_true", help="ignore item2attributes.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="keep the exported SASRec folder here")
    ap.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    attributes = args.data / "item2attributes.json"
    result = evaluate_recommenders(
        args.data / "sequences.txt",
        None if args.no_attributes or not attributes.is_file() else attributes,
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        progress=not args.quiet,
        seed=args.seed,
        out_dir=args.out,
    )
    print(
        f"\nAmazon Beauty: {result['users']} users, {result['items']} items, all items ranked; "
        f"SASRec training {result['train_s']:.0f} s, total {result['total_s']:.0f} s\n"
    )
    print(table(result))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
