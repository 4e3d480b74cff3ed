"""Session-based next-click prediction on the YOOCHOOSE sample: one Markdown table.

    .venv/bin/python bench/sessions_yoochoose.py [--data ../shared/data/yoochoose]
        [--models popularity,cooccurrence,sknn,sasrec] [--sasrec-max-train-s 300] [--json]

Trains on clicks_train.tsv, then predicts every click after the first of each test session
from the clicks before it (all 2,933 training items ranked; targets never seen in training
are skipped and counted). Reports HR@k (= recall@k) and MRR@k. Reference point given with
the data: simple session-kNN reaches about HR@20 0.61 / MRR@20 0.33 on this sample.
The data is read in place, never copied.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from shoprec.pipeline.session_eval import SESSION_MODELS, evaluate_sessions

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/yoochoose"
COLUMNS = ("hr@10", "mrr@10", "hr@20", "mrr@20")


def table(result: dict[str, Any]) -> str:
    lines = ["| model | " + " | ".join(c.upper() for c in COLUMNS) + " | seconds |", "|" + "---|" * (len(COLUMNS) + 2)]
    for name, m in result["models"].items():
        lines.append(f"| {name} | " + " | ".join(f"{m[c]:.4f}" for c in COLUMNS) + f" | {m['seconds']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--models", default=",".join(SESSION_MODELS))
    ap.add_argument("--sasrec-max-train-s", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from shoprec.training.sasrec import SASRecConfig

    result = evaluate_sessions(
        args.data / "clicks_train.tsv",
        args.data / "clicks_test.tsv",
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        sasrec_config=replace(SASRecConfig(), max_train_s=args.sasrec_max_train_s, max_len=20),
        seed=args.seed,
        progress=not args.quiet,
    )
    print(
        f"YOOCHOOSE sample: {result['train_sessions']} training sessions, {result['items']} items, "
        f"{result['cases']} test clicks ({result['skipped_targets']} skipped: item unseen in training)"
    )
    print(table(result))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
