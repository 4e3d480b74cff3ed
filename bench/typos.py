"""Typo tolerance on the Home Depot judged queries: NDCG@10 clean and with typos, with and
without correction, one table.

    .venv/bin/python bench/typos.py [--artifacts DIR] [--pipeline full] [--seed 0] [--json]

The queries are the validation queries the artifacts hold (what ``shoprec eval search``
scores). Each query is searched four ways: as it is and with one typo injected into every
word of five letters or more (two adjacent inner letters swapped: ``cordless`` →
``cordelss``), each with correction off and on. ``kept`` is the share of the clean NDCG@10
(correction off) a row keeps. ``--artifacts`` defaults to the served Home Depot build
(bench/serve_artifacts.py).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from serve_artifacts import served_artifacts

from shoprec.core.text import WORD
from shoprec.models.bundle import load_bundle
from shoprec.pipeline.evaluate import evaluate_gains
from shoprec.pipeline.validation import load_validation
from shoprec.serving.search import PIPELINES, SearchService

TYPO_MIN_CHARS = 5


def swap_typo(word: str, rng: random.Random) -> str:
    """``word`` with two adjacent inner letters (neither the first nor the last) swapped,
    a pair of different letters where there is one; words under five letters as they are."""
    if len(word) < TYPO_MIN_CHARS or not word.isalpha():
        return word
    pairs = [i for i in range(1, len(word) - 2) if word[i] != word[i + 1]] or list(range(1, len(word) - 2))
    i = rng.choice(pairs)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def with_typos(query: str, rng: random.Random) -> str:
    return WORD.sub(lambda m: swap_typo(m.group(0), rng), query)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", help="an artifacts folder (default: the served Home Depot build)")
    ap.add_argument("--pipeline", choices=PIPELINES, default="full")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    folder = served_artifacts(args.artifacts)
    service = SearchService(load_bundle(folder, threads=1))
    gains = {g.query: g.gains for g in load_validation(Path(folder))}
    rng = random.Random(args.seed)
    typo_gains = {}
    changed = 0
    for q, g in gains.items():
        t = with_typos(q, rng)
        changed += t != q
        typo_gains.setdefault(t, g)  # two clean queries could collide: keep the first
    rows = []
    for name, qs in (("clean", gains), ("typos", typo_gains)):
        for correct in (False, True):
            r = evaluate_gains(service, qs, pipeline=args.pipeline, correct=correct)
            rows.append(
                {"queries": name, "correct": correct, **{k: r[k] for k in ("ndcg@10", "mrr", "p50_ms", "p99_ms")}}
            )
            print(f"{name} correct={correct}: {r['ndcg@10']}", file=sys.stderr)
    clean = rows[0]["ndcg@10"]
    for r in rows:
        r["kept"] = round(r["ndcg@10"] / clean, 3) if clean else 0.0
    print(f"{len(gains)} judged queries, {changed} with a typo injected; pipeline {args.pipeline}; {folder}")
    cols = ["queries", "correct", "ndcg@10", "kept", "mrr", "p50_ms", "p99_ms"]
    print(" | ".join(f"{c:>8}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r[c]!s:>8}" for c in cols))
    if args.json:
        print(json.dumps({"pipeline": args.pipeline, "queries": len(gains), "with_typo": changed, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
