"""The ``shoprec`` command line: demo, generate, build, serve, search, eval."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shoprec import __version__
from shoprec.errors import ShoprecError

log = logging.getLogger("shoprec")

DEMO_DIR = Path(".shoprec/demo")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("bm25s", "httpx", "faiss", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _column_map(specs: Sequence[str] | None) -> dict[str, str] | None:
    if not specs:
        return None
    from shoprec.catalog.loaders import parse_column_map

    return parse_column_map(specs)


def _report(report: Any) -> None:
    msg = f"{report.path}: {report.kept} kept of {report.rows} rows"
    if report.duplicates or report.skipped:
        msg += f" ({report.duplicates} duplicates, {report.skipped} skipped)"
    print(msg, file=sys.stderr)
    for p in report.problems[:20]:
        print(f"  {p}", file=sys.stderr)
    if len(report.problems) > 20:
        print(f"  … and {len(report.problems) - 20} more", file=sys.stderr)


# --- commands ---------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    from shoprec.catalog.synthetic import generate_storefront, write_storefront

    sf = generate_storefront(
        n_products=args.products,
        n_users=args.users,
        n_sessions=args.sessions,
        seed=args.seed,
        progress=True,
    )
    paths = write_storefront(sf, Path(args.out))
    for name, p in paths.items():
        print(f"{name}: {p}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from shoprec.catalog.loaders import load_events, load_judgments, load_products
    from shoprec.pipeline.build import BuildOptions, build

    products, rep = load_products(args.products, columns=_column_map(args.map), skip_bad_rows=args.skip_bad_rows)
    _report(rep)
    events: list[Any] = []
    judgments: list[Any] = []
    inputs: dict[str, Any] = {"products": str(args.products)}
    if args.events:
        events, rep = load_events(args.events, columns=_column_map(args.event_map), skip_bad_rows=args.skip_bad_rows)
        _report(rep)
        inputs["events"] = str(args.events)
    if args.train_judgments:
        judgments, rep = load_judgments(args.train_judgments, skip_bad_rows=args.skip_bad_rows)
        _report(rep)
        inputs["train_judgments"] = str(args.train_judgments)
    options = BuildOptions(
        encode_batch_size=args.batch_size,
        seed=args.seed,
        threads=args.threads,
        int8=args.int8,
        max_train_queries=args.max_train_queries,
        validation_fraction=args.validation_fraction,
    )
    manifest = build(
        products,
        Path(args.out),
        events=events,
        judgments=judgments,
        encoder_dir=Path(args.encoder) if args.encoder else None,
        options=options,
        progress=not args.quiet,
        inputs=inputs,
    )
    m = manifest["metrics"]
    print(
        f"built {args.out}: {m['products']} products, index {m['vector_index']}, "
        f"ranker {m['ranker'].get('trained_from')}, {m['timings_s']['total_s']} s, "
        f"peak RSS {m['peak_rss_mb']} MB"
    )
    return 0


def _service(artifacts: str, threads: int | None = None) -> Any:
    from shoprec.models.bundle import load_bundle
    from shoprec.serving.search import SearchService

    return SearchService(load_bundle(artifacts, threads=threads))


def _filters(args: argparse.Namespace) -> Any:
    from shoprec.types import Filters

    return Filters(
        category=args.category,
        brand=args.brand,
        min_price=args.min_price,
        max_price=args.max_price,
        in_stock=args.in_stock,
    )


def cmd_search(args: argparse.Namespace) -> int:
    service = _service(args.artifacts)
    res = service.search(args.query, k=args.k, filters=_filters(args), pipeline=args.pipeline)
    if args.json:
        print(
            json.dumps(
                {
                    "query": args.query,
                    "pipeline": res.pipeline,
                    "ranker": res.ranker,
                    "results": [{"id": h.product_id, "score": h.score} for h in res.hits],
                    "timings_ms": res.timings_ms,
                }
            )
        )
        return 0
    print(f"{'#':>3}  {'score':>8}  {'id':<12} {'price':>9}  title")
    for i, h in enumerate(res.hits, 1):
        p = service.product(h.product_id)
        price = f"{p.price:.2f}" if p.price is not None else "-"
        print(f"{i:>3}  {h.score:>8.4f}  {p.id:<12} {price:>9}  {p.title[:90]}")
    t = res.timings_ms.get("total_ms", 0.0)
    print(f"({len(res.hits)} results, pipeline {res.pipeline}, ranker {res.ranker}, {t:.1f} ms)")
    return 0


def cmd_eval_search(args: argparse.Namespace) -> int:
    from shoprec.catalog.loaders import load_judgments
    from shoprec.pipeline.evaluate import evaluate_search
    from shoprec.serving.search import PIPELINES, Pipeline

    judgments, rep = load_judgments(args.judgments, skip_bad_rows=args.skip_bad_rows)
    _report(rep)
    service = _service(args.artifacts)
    pipelines: list[Pipeline] = [args.pipeline] if args.pipeline != "all" else list(PIPELINES)
    results = [evaluate_search(service, judgments, pipeline=p, progress=not args.json) for p in pipelines]
    cols = ["pipeline", "ndcg@10", "recall@100", "mrr", "queries", "skipped", "p50_ms", "p99_ms"]
    print(" | ".join(f"{c:>10}" for c in cols))
    for r in results:
        print(" | ".join(f"{r[c]:>10}" for c in cols))
    if args.json:
        out = dict(results[-1])
        if len(results) > 1:
            out["pipelines"] = {r["pipeline"]: r for r in results}
        print(json.dumps(out))
    return 0


def cmd_eval_recommend(args: argparse.Namespace) -> int:
    from shoprec.pipeline.recommend_eval import evaluate_recommenders

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    result = evaluate_recommenders(
        args.sequences,
        args.attributes,
        models=models,
        progress=not args.quiet,
        seed=args.seed,
        out_dir=args.out,
    )
    cols = ["hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20"]
    print(f"{result.get('users')} users, {result.get('items')} items (last item = test, second-to-last = validation)")
    print(f"{'model':>14} | " + " | ".join(f"{c:>8}" for c in cols))
    for name, m in result.get("models", {}).items():
        print(f"{name:>14} | " + " | ".join(f"{m.get(c, float('nan')):>8.4f}" for c in cols))
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_eval_sessions(args: argparse.Namespace) -> int:
    from shoprec.pipeline.session_eval import evaluate_sessions

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    try:
        result = evaluate_sessions(args.train, args.test, models=models, seed=args.seed, progress=not args.quiet)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    cols = ["hr@10", "mrr@10", "hr@20", "mrr@20"]
    print(f"{result['train_sessions']} training sessions, {result['items']} items, {result['cases']} test clicks")
    print(f"{'model':>14} | " + " | ".join(f"{c:>8}" for c in cols))
    for name, m in result["models"].items():
        print(f"{name:>14} | " + " | ".join(f"{m[c]:>8.4f}" for c in cols))
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from shoprec.settings import Settings

    overrides = {
        "artifacts": args.artifacts,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
    }
    settings = Settings.load(**{k: v for k, v in overrides.items() if v is not None})
    if settings.artifacts is None:
        raise ShoprecError("no artifacts: pass --artifacts DIR or set SHOPREC_ARTIFACTS")
    # Workers are separate processes: they read the same settings from the environment.
    os.environ["SHOPREC_ARTIFACTS"] = str(Path(settings.artifacts).resolve())
    print(
        f"serving {settings.artifacts} on http://{settings.host}:{settings.port} "
        f"({settings.workers} worker{'s' if settings.workers > 1 else ''})",
        file=sys.stderr,
    )
    uvicorn.run(
        "shoprec.http.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from shoprec.catalog.loaders import load_events, load_products
    from shoprec.catalog.synthetic import generate_storefront, write_storefront
    from shoprec.pipeline.build import BuildOptions, build

    root = Path(args.dir)
    data = root / "data"
    art = root / "artifacts"
    t0 = time.perf_counter()
    if not (data / "products.jsonl").is_file():
        print(f"generating the synthetic storefront into {data} …", file=sys.stderr)
        sf = generate_storefront(n_products=args.products, seed=args.seed, progress=True)
        write_storefront(sf, data)
    if not (art / "manifest.json").is_file():
        print(f"building artifacts into {art} …", file=sys.stderr)
        products, _ = load_products(data / "products.jsonl")
        events, _ = load_events(data / "events.csv")
        # The demo favours a quick start: int8 encoder, ranker trained on 1,500 queries,
        # the sequential recommender trained for at most 30 s.
        build(
            products,
            art,
            events=events,
            inputs={"products": str(data / "products.jsonl")},
            options=BuildOptions(int8=True, max_train_queries=1500, recommender_max_train_s=30),
        )
    print(f"ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    base = f"http://{args.host}:{args.port}"
    print("\nTry:")
    for url in (
        f"{base}/v1/search?q=cordless+drill&k=5",
        f"{base}/v1/search?q=cordles+dril&k=5&explain=true",
        f"{base}/v1/search?q=sofa&max_price=500&in_stock=true",
        f"{base}/v1/search?q=drill&user_id=U00001",
        f"{base}/v1/recommend?user_id=U00001&k=5",
        f"{base}/v1/similar/P000001?k=5",
        f"{base}/readyz",
        f"{base}/docs",
    ):
        print(f"  curl '{url}'")
    print()
    if args.no_serve:
        return 0
    args.artifacts, args.workers = str(art), 1
    return cmd_serve(args)


def cmd_sign(args: argparse.Namespace) -> int:
    from shoprec.security.crypto import sign_artifacts

    rec = sign_artifacts(Path(args.dir), Path(args.key), signer=args.signer)
    print(f"signed {args.dir} with key {rec['key_id']}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from shoprec.security.crypto import verify_artifacts

    r = verify_artifacts(
        Path(args.dir),
        [Path(p) for p in args.trusted_key],
        require_signature=not args.allow_unsigned,
    )
    print(f"ok: {len(r['manifest']['files'])} files, key {r['key_id']}, signer {r['signer']}")
    return 0


def cmd_encrypt(args: argparse.Namespace) -> int:
    from shoprec.security.crypto import encrypt_artifacts, load_data_key

    key = load_data_key(key_file=Path(args.key_file) if args.key_file else None)
    m = encrypt_artifacts(Path(args.dir), key)
    print(f"encrypted {len(m['encryption']['files'])} files; sign the folder now")
    return 0


def cmd_keys_new_signing(args: argparse.Namespace) -> int:
    from shoprec.security.crypto import generate_signing_key, key_id, load_public_key

    priv, pub = generate_signing_key(Path(args.out))
    print(f"private key: {priv} (keep secret)")
    print(f"public key: {pub} (key id {key_id(load_public_key(pub))})")
    return 0


def cmd_keys_new_data(args: argparse.Namespace) -> int:
    from shoprec.security.crypto import generate_data_key

    print(f"data key written to {generate_data_key(Path(args.out))} (mode 0600)")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from shoprec.security.apikeys import KeyStore

    kid, plain = KeyStore(Path(args.store), time.time).create(args.name, args.role, args.rate_limit_per_s)
    print(f"key id: {kid}")
    print(f"api key (shown once): {plain}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from shoprec.security.apikeys import KeyStore

    KeyStore(Path(args.store), time.time).revoke(args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from shoprec.security.apikeys import KeyStore

    for k in KeyStore(Path(args.store), time.time).list():
        if args.json:
            print(json.dumps(k.to_dict()))
        else:
            state = "REVOKED" if k.revoked else "active"
            print(f"{k.key_id}  {k.name:20}  {','.join(sorted(k.roles)):20}  {state}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from shoprec.security.audit import verify

    r = verify(Path(args.log), expected_head=args.expected_head)
    if r.ok:
        print(f"ok: {r.entries} entries, head {r.head_hash}")
        return 0
    print(
        f"BROKEN at line {r.first_bad_line}: {r.reason} ({r.entries} good entries before it)",
        file=sys.stderr,
    )
    return 1


# --- parser -----------------------------------------------------------------------------


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--category", help="category path prefix, e.g. 'Tools > Power Tools'")
    p.add_argument("--brand")
    p.add_argument("--min-price", type=float)
    p.add_argument("--max-price", type=float)
    p.add_argument("--in-stock", type=lambda s: s.lower() in ("1", "true", "yes"), default=None)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="shoprec", description=__doc__)
    ap.add_argument("--version", action="version", version=f"shoprec {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="generate the synthetic storefront, build, and serve it")
    p.add_argument("--dir", default=str(DEMO_DIR), help="where data and artifacts go (reused)")
    p.add_argument("--products", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-serve", action="store_true", help="stop after building")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("generate", help="write the deterministic synthetic storefront")
    p.add_argument("--out", required=True)
    p.add_argument("--products", type=int, default=20_000)
    p.add_argument("--users", type=int, default=2_000)
    p.add_argument("--sessions", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("build", help="build search artifacts from a catalog")
    p.add_argument("--products", required=True, help="CSV, TSV, JSON Lines or Parquet")
    p.add_argument("--events", help="events file (user_id,item_id,type,timestamp,query)")
    p.add_argument("--train-judgments", help="CSV query,product_id,relevance to train the ranker")
    p.add_argument("--out", required=True, help="artifacts folder (replaced atomically)")
    p.add_argument("--map", action="append", metavar="FIELD=COLUMN", help="product column mapping")
    p.add_argument("--event-map", action="append", metavar="FIELD=COLUMN", help="event column mapping")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and report bad rows")
    p.add_argument("--encoder", help="an encoder folder (model.onnx + tokenizer.json + encoder.json)")
    p.add_argument(
        "--int8",
        action="store_true",
        help="use the teacher with int8 dynamic quantisation (faster; cosine ~0.99 to fp32)",
    )
    p.add_argument(
        "--max-train-queries",
        type=int,
        default=4000,
        help="cap on queries used to train the ranker (sampled with --seed)",
    )
    p.add_argument(
        "--validation-fraction",
        type=float,
        default=0.2,
        help="fraction of judged queries (or event sessions) held out of ranker training and stored "
        "as validation.jsonl for quality gates (0 keeps all for training)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("serve", help="serve artifacts over HTTP")
    p.add_argument("--artifacts")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("search", help="run one query and print a table")
    p.add_argument("--artifacts", required=True)
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--pipeline", choices=["bm25", "dense", "hybrid", "full"], default="full")
    p.add_argument("--json", action="store_true")
    _add_filters(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("eval", help="evaluate quality")
    esub = p.add_subparsers(dest="eval_command", required=True)
    e = esub.add_parser("search", help="search quality on judgments (whole-catalog protocol)")
    e.add_argument("--artifacts", required=True)
    e.add_argument("--judgments", required=True, help="CSV query,product_id,relevance")
    e.add_argument("--pipeline", choices=["bm25", "dense", "hybrid", "full", "all"], default="full")
    e.add_argument("--skip-bad-rows", action="store_true")
    e.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    e.set_defaults(func=cmd_eval_search)
    e = esub.add_parser(
        "recommend",
        help="next-item recommendation quality (leave-last-out, all items ranked; S3Rec/ICLRec protocol)",
    )
    e.add_argument("--sequences", required=True, help="text file: user_id item item … in time order")
    e.add_argument("--attributes", help="JSON item -> list of attribute ids (e.g. item2attributes.json)")
    e.add_argument(
        "--models",
        default="popularity,cooccurrence,sasrec,blend",
        help="comma-separated: popularity, cooccurrence, sasrec, blend (SASRec with item transitions: "
        "what build serves to known users, reported at top level when listed)",
    )
    e.add_argument("--out", help="keep the trained models in this folder")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    e.set_defaults(func=cmd_eval_recommend)
    e = esub.add_parser(
        "sessions",
        help="session-based next-click prediction on click logs (SessionId, ItemId, Time; HR@k, MRR@k)",
    )
    e.add_argument("--train", required=True, help="TSV SessionId, ItemId, Time (header optional)")
    e.add_argument("--test", required=True, help="TSV of test sessions, same format")
    e.add_argument("--models", default="popularity,cooccurrence,sknn,sasrec", help="comma-separated")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    e.set_defaults(func=cmd_eval_sessions)

    p = sub.add_parser("sign", help="sign an artifacts folder's manifest with Ed25519 (after any encryption)")
    p.add_argument("dir")
    p.add_argument("--key", required=True, help="private key from `shoprec keys new-signing-key`")
    p.add_argument("--signer", help="a name recorded beside the signature")
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("verify", help="check an artifacts folder's signature and every checksum offline")
    p.add_argument("dir")
    p.add_argument("--trusted-key", action="append", default=[], help="trusted public key (repeatable)")
    p.add_argument("--allow-unsigned", action="store_true", help="check checksums only when unsigned")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("encrypt", help="encrypt artifact weights at rest with AES-256-GCM (then sign)")
    p.add_argument("dir")
    p.add_argument("--key-file", help="data key file (default: $SHOPREC_DATA_KEY)")
    p.set_defaults(func=cmd_encrypt)

    p = sub.add_parser("keys", help="signing keys, data keys and API keys")
    ks = p.add_subparsers(dest="keys_command", required=True)
    k = ks.add_parser("new-signing-key", help="write an Ed25519 private key and KEY.pub beside it")
    k.add_argument("--out", required=True)
    k.set_defaults(func=cmd_keys_new_signing)
    k = ks.add_parser("new-data-key", help="write a random AES-256 data key (mode 0600)")
    k.add_argument("--out", required=True)
    k.set_defaults(func=cmd_keys_new_data)
    k = ks.add_parser("create", help="create an API key (printed once)")
    k.add_argument("--store", required=True, help="the API key store file")
    k.add_argument("--name", required=True)
    k.add_argument("--role", action="append", choices=["search", "events", "admin"], required=True)
    k.add_argument("--rate-limit-per-s", type=float)
    k.set_defaults(func=cmd_keys_create)
    k = ks.add_parser("revoke", help="revoke an API key")
    k.add_argument("--store", required=True)
    k.add_argument("key_id")
    k.set_defaults(func=cmd_keys_revoke)
    k = ks.add_parser("list", help="list API keys (never their secrets)")
    k.add_argument("--store", required=True)
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_keys_list)

    p = sub.add_parser("audit", help="audit log tools")
    a = p.add_subparsers(dest="audit_command", required=True).add_parser(
        "verify", help="check the hash chain; names the first broken line"
    )
    a.add_argument("--log", required=True)
    a.add_argument("--expected-head", help="the head hash recorded elsewhere (catches truncation)")
    a.set_defaults(func=cmd_audit_verify)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _setup_logging(args.verbose)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return int(args.func(args))
    except ShoprecError as exc:
        print(f"shoprec: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
