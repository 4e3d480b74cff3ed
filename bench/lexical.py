"""Lexical engines on the Home Depot judgments: bm25s (ours and stock) vs tantivy.

    .venv/bin/python bench/lexical.py [--data ../shared/data/homedepot] [--limit-queries N] [--json]

Engines, all BM25 with k1 1.2, b 0.75 (tantivy's fixed values) so only analysis differs:
- ``bm25s+shoprec``: :class:`shoprec.retrieval.lexical.LexicalIndex` (our ``analyze()``);
- ``bm25s+stock``: ``bm25s.tokenize`` defaults (English stopwords) + PyStemmer English;
- ``tantivy en_stem``: a temp-dir index, text field with tantivy's ``en_stem`` analyzer,
  queries stripped of query-syntax characters and parsed by tantivy's query parser (OR).
For each: build time, on-disk size, single-query latency (raw string to top-100 rows),
NDCG@10, Recall@100 and MRR over the whole catalog (gain = relevance - 1, unjudged = 0,
queries without a positive gain skipped). A tiny CJK check asks each engine for "电钻".
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer
import tantivy
from tqdm import tqdm

from shoprec.core.fusion import top_k
from shoprec.core.metrics import ndcg_at_k, percentile_ms, recall_at_k, reciprocal_rank
from shoprec.retrieval.lexical import LexicalIndex

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "homedepot"
K = 100
K1, B = 1.2, 0.75
CJK_TITLES = ["无线电钻", "电钻套装 18V", "锤子", "Cordless Drill 18V"]
CJK_QUERY = "电钻"
# Everything that is not a word character or space is query syntax to tantivy
# (+ - : ^ ~ " ( ) [ ] { } ! * / \ ...); titles index those positions as separators anyway.
_SYNTAX = re.compile(r"[^\w\s]+", re.UNICODE)

Search = Callable[[str], list[int]]


class Engine:
    """A built engine: ``search(query)`` returns up to ``K`` catalog rows, best first."""

    def __init__(self, name: str, search: Search, build_s: float, size_bytes: int | None) -> None:
        self.name, self.search, self.build_s, self.size_bytes = name, search, build_s, size_bytes


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def load(data: Path) -> tuple[list[str], list[str], list[tuple[str, dict[str, float]]], int]:
    with (data / "products.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ids = [r["product_id"] for r in rows]
    titles = [r["title"] for r in rows]
    gains: dict[str, dict[str, float]] = defaultdict(dict)
    with (data / "judgments_dev.csv").open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            gains[r["query"]][r["product_id"]] = float(r["relevance"]) - 1.0
    judged = [(q, g) for q, g in gains.items() if any(v > 0 for v in g.values())]
    return ids, titles, judged, len(gains) - len(judged)


def _rows_from_scores(scores: np.ndarray) -> list[int]:
    rows = top_k(scores, K)
    return [int(r) for r in rows if scores[r] > 0]


def build_ours(titles: Sequence[str], tmp: Path) -> Engine:
    t = time.perf_counter()
    index = LexicalIndex.build(titles, k1=K1, b=B)
    build_s = time.perf_counter() - t
    index.save(tmp / "bm25s-shoprec")
    return Engine(
        "bm25s+shoprec",
        lambda q: _rows_from_scores(index.scores(q)),
        build_s,
        folder_bytes(tmp / "bm25s-shoprec"),
    )


def build_stock(titles: Sequence[str], tmp: Path) -> Engine:
    stemmer = Stemmer.Stemmer("english")
    t = time.perf_counter()
    corpus = bm25s.tokenize(list(titles), stemmer=stemmer, show_progress=False)
    model = bm25s.BM25(k1=K1, b=B, method="lucene")
    model.index(corpus, show_progress=False)
    build_s = time.perf_counter() - t
    model.save(str(tmp / "bm25s-stock"), show_progress=False)
    vocab: dict[str, int] = model.vocab_dict
    n = len(titles)

    def search(query: str) -> list[int]:
        toks = bm25s.tokenize(query, stemmer=stemmer, return_ids=False, show_progress=False)[0]
        known = [t for t in toks if t in vocab]
        if not known:
            return []
        return _rows_from_scores(np.asarray(model.get_scores(known), dtype=np.float32)[:n])

    return Engine("bm25s+stock", search, build_s, folder_bytes(tmp / "bm25s-stock"))


def tantivy_index(
    titles: Sequence[str],
    path: Path | None,
    tokenizer: str = "en_stem",
    analyzer: tantivy.TextAnalyzer | None = None,
) -> tantivy.Index:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("title", stored=False, tokenizer_name=tokenizer)
    sb.add_unsigned_field("row", stored=False, indexed=False, fast=True)
    index = tantivy.Index(sb.build(), path=None if path is None else str(path))
    if analyzer is not None:
        index.register_tokenizer(tokenizer, analyzer)
    writer = index.writer(128_000_000, 1)
    for row, title in enumerate(titles):
        doc = tantivy.Document()
        doc.add_text("title", title)
        doc.add_unsigned("row", row)  # Document(row=...) would infer i64 and panic
        writer.add_document(doc)
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index


def tantivy_search(index: tantivy.Index) -> tuple[Search, list[str]]:
    searcher = index.searcher()
    errors: list[str] = []

    def search(query: str) -> list[int]:
        clean = " ".join(_SYNTAX.sub(" ", query).lower().split())
        if not clean:
            return []
        try:
            parsed = index.parse_query(clean, ["title"])
        except ValueError as e:  # counted and reported; the sanitiser should leave none
            errors.append(f"{query!r}: {e}")
            return []
        hits = searcher.search(parsed, K, count=False).hits
        rows = searcher.fast_field_values("row", [a for _, a in hits])
        return [r for r in rows if isinstance(r, int)]

    return search, errors


def build_tantivy(titles: Sequence[str], tmp: Path) -> tuple[Engine, list[str]]:
    folder = tmp / "tantivy"
    folder.mkdir()
    t = time.perf_counter()
    index = tantivy_index(titles, folder)
    build_s = time.perf_counter() - t
    search, errors = tantivy_search(index)
    return Engine("tantivy en_stem", search, build_s, folder_bytes(folder)), errors


def evaluate(engine: Engine, ids: Sequence[str], judged: Sequence[tuple[str, dict[str, float]]]) -> dict[str, Any]:
    for q, _ in judged[:20]:  # warm caches, lazy imports and mmaps
        engine.search(q)
    lat: list[float] = []
    ndcg = rec = rr = 0.0
    for q, gains in tqdm(judged, desc=engine.name, file=sys.stderr, leave=False):
        t = time.perf_counter()
        rows = engine.search(q)
        lat.append(time.perf_counter() - t)
        ranked = [ids[r] for r in rows]
        ndcg += ndcg_at_k(ranked, gains, 10)
        rec += recall_at_k(ranked, gains, K)
        rr += reciprocal_rank(ranked, gains)
    n = max(1, len(judged))
    return {
        "build_s": round(engine.build_s, 2),
        "size_mb": None if engine.size_bytes is None else round(engine.size_bytes / 2**20, 2),
        "p50_ms": round(percentile_ms(lat, 50), 3),
        "p95_ms": round(percentile_ms(lat, 95), 3),
        "p99_ms": round(percentile_ms(lat, 99), 3),
        "ndcg@10": round(ndcg / n, 4),
        "recall@100": round(rec / n, 4),
        "mrr": round(rr / n, 4),
    }


def cjk_check(tmp: Path) -> dict[str, list[str]]:
    """Titles each engine returns for ``CJK_QUERY`` over ``CJK_TITLES``."""
    engines = [build_ours(CJK_TITLES, tmp / "cjk-ours"), build_stock(CJK_TITLES, tmp / "cjk-stock")]
    en_stem, _ = tantivy_search(tantivy_index(CJK_TITLES, None))
    engines.append(Engine("tantivy en_stem", en_stem, 0.0, None))
    ngram = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.ngram(1, 2, False)).filter(tantivy.Filter.lowercase()).build()
    ngram_search, _ = tantivy_search(tantivy_index(CJK_TITLES, None, "ngram12", ngram))
    engines.append(Engine("tantivy ngram(1,2) (custom, not default)", ngram_search, 0.0, None))
    return {e.name: [CJK_TITLES[r] for r in e.search(CJK_QUERY)] for e in engines}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit-queries", type=int, default=None, metavar="N")
    ap.add_argument("--json", action="store_true", help="also print one JSON object last")
    args = ap.parse_args()
    started = time.perf_counter()
    ids, titles, judged, skipped = load(args.data)
    if args.limit_queries is not None:
        judged = judged[: args.limit_queries]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="shoprec-lexical-") as tmp_s:
        tmp = Path(tmp_s)
        engines = [build_ours(titles, tmp), build_stock(titles, tmp)]
        tantivy_engine, parse_errors = build_tantivy(titles, tmp)
        engines.append(tantivy_engine)
        for engine in engines:
            results[engine.name] = evaluate(engine, ids, judged)
        (tmp / "cjk").mkdir()
        cjk = cjk_check(tmp / "cjk")

    print(
        f"\nHome Depot: {len(ids)} products, {len(judged)} judged queries "
        f"({skipped} without a positive gain skipped); BM25 k1={K1} b={B}, top {K}\n"
    )
    print("| engine | build s | index MB | p50 ms | p95 ms | p99 ms | NDCG@10 | Recall@100 | MRR |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['build_s']} | {r['size_mb']} | {r['p50_ms']} | {r['p95_ms']} "
            f"| {r['p99_ms']} | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} | {r['mrr']:.4f} |"
        )
    print(f"\ntantivy query-parser errors after sanitising: {len(parse_errors)}")
    for err in parse_errors[:5]:
        print(f"  {err}")
    print(f"\nCJK: query {CJK_QUERY!r} over {CJK_TITLES}\n")
    print("| engine | finds | titles returned |")
    print("|---|---|---|")
    for name, found in cjk.items():
        print(f"| {name} | {'yes' if found else 'no'} | {', '.join(found) or '-'} |")
    total_s = time.perf_counter() - started
    print(f"\ntotal {total_s:.0f} s")
    if args.json:
        print(
            json.dumps(
                {
                    "products": len(ids),
                    "queries": len(judged),
                    "skipped": skipped,
                    "engines": results,
                    "tantivy_parse_errors": len(parse_errors),
                    "cjk": {"query": CJK_QUERY, "titles": CJK_TITLES, "found": cjk},
                    "total_s": round(total_s, 1),
                },
                ensure_ascii=False,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
