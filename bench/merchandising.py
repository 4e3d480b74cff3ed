"""What merchandising rules cost a search, in process (no HTTP), side by side.

A seeded rule set of ``--rules`` rules (default 100) over the artifacts' catalog and
validation queries: a quarter pins (exact queries), a quarter boosts by brand (queries
containing a word), a fifth buries by price, hides, and category rules. (The Home Depot
catalog has no brands, categories or prices: there the boosts match on stock, which every
product is in, and the category rules are phrase rules, so each boost moves every row.) For every
validation query it times, one thread:

- ``lookup``: finding the rules in effect (the only cost a search without rules in effect pays);
- ``search k=10``: the ranking itself, every query, for scale;
- ``rules: k=10 only`` and ``rules: search+apply``: the queries with rules in effect, searched
  plainly and as the handler searches them with their rules (lookup, ranking ``k`` or, with a
  boost or bury in effect, the ``--window``, then applying them);
- ``apply``: applying the rules in effect to a ranked window alone;
- ``all rules``: every rule of the set in effect at once on one window (the worst case);
- ``browse`` / ``browse+all rules``: page 1 of the relevance order with facets, without and with every rule.

Prints p50/p95/p99 (ms); with ``--json`` the last stdout line is one JSON object.

    .venv/bin/python bench/merchandising.py    # the cached optimized Home Depot build (or --artifacts DIR)
    .venv/bin/python bench/merchandising.py --rules 1000 --max-queries 200 --json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_artifacts import served_artifacts  # noqa: E402

from shoprec.core.merchandising import RuleIndex  # noqa: E402
from shoprec.core.text import normalize  # noqa: E402
from shoprec.models.bundle import load_bundle  # noqa: E402
from shoprec.pipeline.validation import load_validation  # noqa: E402
from shoprec.serving.browse import Browse, browse  # noqa: E402
from shoprec.serving.merchandising import Merchandiser, RulePlan  # noqa: E402
from shoprec.serving.rulestore import RuleIn, RuleStore  # noqa: E402
from shoprec.serving.search import SearchService  # noqa: E402
from shoprec.types import Filters  # noqa: E402


def rule_set(service: SearchService, queries: list[str], n: int, seed: int) -> list[RuleIn]:
    """``n`` rules in the proportions of the module docstring, over real queries and products."""
    rng = random.Random(seed)
    catalog = service.bundle.catalog
    ids = [p.id for p in catalog.products]
    brands = [b for b, _ in Counter(p.brand for p in catalog.products if p.brand).most_common(200)]
    categories = sorted({p.category.split(">")[0].strip() for p in catalog.products if p.category})
    words = [w for w, _ in Counter(w for q in queries for w in normalize(q).split() if len(w) > 3).most_common(300)]
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 20
        if kind < 5:
            scope, action = ("query_exact", rng.choice(queries)), {"type": "pin", "product_id": rng.choice(ids)}
            action["position"] = rng.randint(1, 5)
        elif kind < 10:
            scope = ("query_contains", rng.choice(words))
            match = {"brand": rng.choice(brands)} if brands else {"in_stock": True}  # a catalog without brands
            action = {"type": "boost", "weight": rng.randint(1, 3), "match": match}
        elif kind < 14:
            scope = ("query_contains", rng.choice(words))
            action = {"type": "bury", "match": {"min_price": float(rng.choice((200, 500, 1000)))}}
        elif kind < 17:
            scope, action = ("query_exact", rng.choice(queries)), {"type": "hide", "product_id": rng.choice(ids)}
        else:
            scope = ("category", rng.choice(categories)) if categories else ("query_contains", rng.choice(words))
            action = {"type": "boost", "match": {"in_stock": True, "max_price": 100.0}}
        out.append({"id": f"r{i}", "scope": {"type": scope[0], "value": scope[1]}, "action": action})
    return [RuleIn.model_validate(r) for r in out]


def timed(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    t = clock()
    fn()
    return (clock() - t) * 1000


def summary(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {f"p{q}_ms": round(float(np.percentile(a, q)), 4) for q in (50, 95, 99)} | {"n": len(ms)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", help="artifacts folder (default: the cached optimized Home Depot build)")
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--window", type=int, default=100, help="the ranked window rules reorder (the max_k setting)")
    ap.add_argument("--max-queries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    args = ap.parse_args(argv)
    folder = served_artifacts(args.artifacts)
    service = SearchService(load_bundle(folder, threads=1))
    catalog = service.bundle.catalog
    queries = [g.query for g in load_validation(folder)][: args.max_queries]
    if not queries:
        print(f"{folder} holds no validation queries", file=sys.stderr)
        return 2
    rules = rule_set(service, queries, args.rules, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        merchandiser = Merchandiser(RuleStore(Path(tmp) / "rules"))
        merchandiser.store.publish(rules, author="bench")
        every = RulePlan(1, RuleIndex([r.to_rule() for r in rules]).rules, merchandiser.columns(catalog))
        names = ("lookup", "search k=10", "rules: k=10 only", "rules: search+apply", "apply")
        times: dict[str, list[float]] = {k: [] for k in (*names, "all rules", "browse", "browse+all rules")}
        in_effect = []
        service.search(queries[0], k=10)  # warm: the encoder, the catalog's cached columns
        page = Browse(offset=0, limit=10, facets=("category", "brand", "price", "in_stock"))

        def with_rules(q: str) -> object:
            """A plain k=10 search as the handler runs it with rules: lookup, rank, apply."""
            plan = merchandiser.plan(catalog, q, None)
            ranked = service.search(q, k=plan.ranked_k(10, args.window))
            return plan.apply(catalog, ranked.hits, Filters(), 10)

        for q in queries:
            plan = merchandiser.plan(catalog, q, None)
            in_effect.append(len(plan.rules))
            ranked = service.search(q, k=args.window).hits
            runs: dict[str, Callable[[], object]] = {
                "lookup": partial(merchandiser.plan, catalog, q, None),
                "search k=10": partial(service.search, q, k=10),
                "all rules": partial(every.apply, catalog, ranked, Filters(), 10),
                "browse": partial(browse, service.bundle, q, Filters(), ranked, page),
                "browse+all rules": partial(browse, service.bundle, q, Filters(), ranked, page, every),
            }
            if plan.active:
                runs["rules: k=10 only"] = partial(service.search, q, k=10)
                runs["rules: search+apply"] = partial(with_rules, q)
                runs["apply"] = partial(plan.apply, catalog, ranked, Filters(), 10)
            for name, run in runs.items():
                times[name].append(timed(run))
    result = {name: summary(ms) for name, ms in times.items() if ms}
    active = sum(1 for n in in_effect if n)
    print(
        f"{len(queries)} validation queries of {folder}; {args.rules} rules; window {args.window}; "
        f"{active} queries with rules in effect (mean {np.mean(in_effect):.2f} rules); one thread, ms"
    )
    print(f"{'':<16}{'p50':>10}{'p95':>10}{'p99':>10}{'n':>7}")
    for name, s in result.items():
        print(f"{name:<16}{s['p50_ms']:>10.3f}{s['p95_ms']:>10.3f}{s['p99_ms']:>10.3f}{s['n']:>7}")
    if args.json:
        out = {"artifacts": str(folder), "queries": len(queries), "rules": args.rules, "window": args.window}
        print(json.dumps(out | {"queries_with_rules": active, "timings": result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
