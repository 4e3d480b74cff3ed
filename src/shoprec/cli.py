"""The ``shoprec`` command line.

- data and serving: ``demo``, ``generate``, ``build``, ``serve``, ``search``;
- quality: ``eval search|recommend|sessions|report``, ``ladder measure``;
- trust: ``sign``, ``verify``, ``encrypt``, ``keys new-signing-key|new-data-key|create|revoke|list``,
  ``audit verify``;
- the model registry: ``registry push|list|promote|rollback``;
- speed: ``optimize``, ``bench encoder``;
- off the request path: ``worker`` (the event stream into the near-line state), ``jobs``.

Commands whose ``--json`` flag is set print one JSON object as their last stdout line.
"""

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
from shoprec.background.commands import add_worker_commands
from shoprec.errors import ConfigError, ShoprecError
from shoprec.settings import Settings

log = logging.getLogger("shoprec")

DEMO_DIR = Path(".shoprec/demo")


def _setup_logging(verbose: bool) -> None:
    # Our own progress at INFO; other libraries only from WARNING (ONNX Runtime's quantizer,
    # for one, logs every tensor at INFO on the root logger) unless --verbose.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("shoprec").setLevel(logging.DEBUG if verbose else logging.INFO)
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
    from shoprec.pipeline.evaluate import evaluate_gains, evaluate_search
    from shoprec.pipeline.validation import load_validation
    from shoprec.serving.search import PIPELINES, Pipeline

    service = _service(args.artifacts)
    pipelines: list[Pipeline] = [args.pipeline] if args.pipeline != "all" else list(PIPELINES)
    if args.judgments:
        judgments, rep = load_judgments(args.judgments, skip_bad_rows=args.skip_bad_rows)
        _report(rep)
        results = [
            evaluate_search(service, judgments, pipeline=p, progress=not args.json, correct=not args.no_correct)
            for p in pipelines
        ]
    else:
        groups = load_validation(Path(args.artifacts))
        if not groups:
            raise ConfigError(f"{args.artifacts} holds no validation queries: pass --judgments")
        gains = {g.query: g.gains for g in groups}  # (judged queries: one group per query)
        results = [
            evaluate_gains(service, gains, pipeline=p, progress=not args.json, correct=not args.no_correct)
            for p in pipelines
        ]
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
    # `shoprec demo` serves through here too, with a namespace that has no Ray options
    ray = bool(getattr(args, "ray", False))
    ray_only = [
        f"--{n.replace('_', '-')}" for n in RAY_OPTIONS + AUTOSCALE_OPTIONS if getattr(args, n, None) is not None
    ]
    if ray_only and not ray:
        raise ConfigError(f"{', '.join(ray_only)} need --ray")
    if ray and args.workers is not None:
        raise ConfigError("--workers is for one machine's uvicorn workers; with --ray use --replicas")
    # Requests run one query each on a thread pool: OpenMP threads (FAISS, LightGBM) that spin
    # after each call steal the cores of the next stage. Set before the workers import them.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if settings.artifacts is None and settings.registry is None:
        raise ShoprecError("no artifacts: pass --artifacts DIR or set SHOPREC_ARTIFACTS (or SHOPREC_REGISTRY)")
    # Workers are separate processes: they read the same settings from the environment.
    if settings.artifacts is not None:
        os.environ["SHOPREC_ARTIFACTS"] = str(Path(settings.artifacts).resolve())
    os.environ["SHOPREC_WORKERS"] = str(settings.workers)
    if settings.metrics and settings.workers > 1:
        from shoprec.adapters.prometheus import prepare_multiprocess_dir
        from shoprec.http.app import metrics_dir

        # every worker's metrics in files there, added up by whichever worker is scraped;
        # emptied first: a previous run's counts must not be added in
        os.environ["SHOPREC_METRICS_DIR"] = str(prepare_multiprocess_dir(metrics_dir(settings)).resolve())
    if ray:
        return _serve_ray(args, settings)
    scheme = "https" if settings.ssl_certfile else "http"
    print(
        f"serving {settings.artifacts or settings.registry} on {scheme}://{settings.host}:{settings.port} "
        f"({settings.workers} worker{'s' if settings.workers > 1 else ''})",
        file=sys.stderr,
    )
    uvicorn.run("shoprec.http.app:app_from_env", factory=True, workers=settings.workers, **uvicorn_options(settings))
    return 0


RAY_OPTIONS = ("replicas", "autoscale", "max_replicas_per_node", "replica_cpus", "ray_address", "router")
AUTOSCALE_OPTIONS = ("target_ongoing_requests", "upscale_delay_s", "downscale_delay_s")


def _serve_ray(args: argparse.Namespace, settings: Settings) -> int:
    """``shoprec serve --ray``: the same app as replicas behind Ray Serve's proxy."""
    import shoprec.cluster.ray_serve as ray_serve  # the one module that imports ray

    if args.replicas is not None and args.autoscale is not None:
        raise ConfigError("pass --replicas N or --autoscale MIN:MAX, not both")
    tuning = {n: getattr(args, n) for n in AUTOSCALE_OPTIONS if getattr(args, n, None) is not None}
    if tuning and args.autoscale is None:
        raise ConfigError(f"{', '.join('--' + n.replace('_', '-') for n in tuning)} need --autoscale")
    scale = ray_serve.Scale(
        **tuning,
        replicas=args.replicas if args.replicas is not None else 1,
        autoscale=ray_serve.parse_autoscale(args.autoscale) if args.autoscale is not None else None,
        max_replicas_per_node=args.max_replicas_per_node,
        replica_cpus=args.replica_cpus if args.replica_cpus is not None else 1.0,
        router=args.router or "pow2",
    )
    environ = ray_serve.settings_environ()  # what cmd_serve resolved is in the environment now
    print(
        f"starting Ray Serve: {scale.initial_replicas} replica(s) of {settings.registry or settings.artifacts}",
        file=sys.stderr,
    )
    ray_serve.serve_until_stopped(settings, environ, scale, address=args.ray_address)
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What ``shoprec serve`` passes to uvicorn for these settings (TLS included)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,
    }
    if settings.ssl_certfile is not None:
        options["ssl_certfile"] = str(settings.ssl_certfile)
        options["ssl_keyfile"] = str(settings.ssl_keyfile)
    return options


def _audit_cli(action: str, details: dict[str, Any]) -> None:
    """Record a key change in the audit log named by the settings (SHOPREC_AUDIT_LOG), if any."""
    import getpass

    from shoprec.security.audit import AuditLog
    from shoprec.settings import Settings

    path = Settings.load().audit_log
    if path is not None:
        AuditLog(path, time.time).append(action, f"cli:{getpass.getuser()}", details)


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
    api_key = _demo_trust(root, art)
    print(f"ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    base = f"http://{args.host}:{args.port}"
    print(f"\nDemo API key (roles search, events, admin; also in {root / 'keys' / 'demo-api-key.txt'}):")
    print(f"  export SHOPREC_KEY={api_key}")
    print("Try:")
    for url in (
        f"{base}/v1/search?q=cordless+drill&k=5",
        f"{base}/v1/search?q=cordles+dril&k=5&explain=true",
        f"{base}/v1/search?q=sofa&max_price=500&in_stock=true",
        f"{base}/v1/search?q=drill&user_id=U00001",
        f"{base}/v1/recommend?user_id=U00001&k=5",
        f"{base}/v1/similar/P000001?k=5",
        f"{base}/v1/admin/model",
    ):
        print(f"  curl -H \"Authorization: Bearer $SHOPREC_KEY\" '{url}'")
    print(f"  curl '{base}/readyz'    # public, like /healthz; OpenAPI docs at {base}/docs")
    print(f"Storefront: {base}/   Ops page: {base}/ops (promote and roll back with the key above)")
    print()
    if args.no_serve:
        return 0
    args.artifacts, args.workers = str(art), 1
    return cmd_serve(args)


def _demo_trust(root: Path, art: Path) -> str:
    """Make the demo run as production does: artifacts signed by a key the server trusts, and
    an API key for the requests. Keys live under ``root/keys``; environment settings tell
    ``serve`` where (explicit SHOPREC_* variables win). Returns the demo API key."""
    from shoprec.security.apikeys import KeyStore
    from shoprec.security.crypto import generate_signing_key, public_key_path, sign_artifacts, verify_artifacts

    keys = root / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    signing = keys / "signing.key"
    if not signing.is_file():
        generate_signing_key(signing)
    public = public_key_path(signing)
    try:
        verify_artifacts(art, [public])
    except ShoprecError:  # unsigned, or built again since it was signed
        sign_artifacts(art, signing, signer="shoprec demo")
    store_path = keys / "apikeys.json"
    key_file = keys / "demo-api-key.txt"
    if not key_file.is_file() or not store_path.is_file():
        _, api_key = KeyStore(store_path, time.time).create("demo", ["search", "events", "admin"])
        key_file.touch(mode=0o600)
        key_file.write_text(api_key + "\n")
    os.environ.setdefault("SHOPREC_TRUSTED_KEYS", str(public.resolve()))
    os.environ.setdefault("SHOPREC_KEYS_FILE", str(store_path.resolve()))
    # the storefront at / searches and posts its demo shoppers' events without a key, from this machine
    os.environ.setdefault("SHOPREC_STOREFRONT_ANONYMOUS", "loopback")
    return key_file.read_text().strip()


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
    _audit_cli("keys.create", {"key_id": kid, "name": args.name, "roles": sorted(args.role), "store": args.store})
    print(f"key id: {kid}")
    print(f"api key (shown once): {plain}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from shoprec.security.apikeys import KeyStore

    KeyStore(Path(args.store), time.time).revoke(args.key_id)
    _audit_cli("keys.revoke", {"key_id": args.key_id, "store": args.store})
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


def _registry_context(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(Registry, Trust or None, AuditLog or None) from the flags and the settings."""
    from shoprec.models.bundle import Trust
    from shoprec.registry.store import Registry
    from shoprec.settings import Settings

    settings = Settings.load()
    root = args.registry or settings.registry
    if root is None:
        raise ConfigError("no registry: pass --registry DIR or set SHOPREC_REGISTRY")
    keys = tuple(Path(p) for p in getattr(args, "trusted_key", None) or ()) or settings.trusted_keys
    data_key: bytes | None = None
    if settings.data_key_file is not None or os.environ.get(settings.data_key_env):
        from shoprec.security import crypto

        data_key = crypto.load_data_key(key_file=settings.data_key_file, env_var=settings.data_key_env)
    trust = None
    if keys or data_key is not None:
        require = bool(keys) and not getattr(args, "allow_unsigned", False)
        trust = Trust(require_signature=require, trusted_keys=keys, data_key=data_key)
    audit = None
    if settings.audit_log is not None:
        from shoprec.security.audit import AuditLog

        audit = AuditLog(settings.audit_log, clock=time.time)
    return Registry(Path(root)), trust, audit


def _opt_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _cli_actor() -> str:
    """Who ran a registry command, for the audit log."""
    return f"cli:{os.environ.get('USER') or os.getuid()}"


def cmd_registry_push(args: argparse.Namespace) -> int:
    from shoprec.registry import gates

    registry, trust, audit = _registry_context(args)
    if trust is None or not trust.trusted_keys:
        print("note: no trusted keys given; checksums are checked, signatures are not", file=sys.stderr)
    rec = gates.push(
        registry,
        Path(args.dir),
        version_id=args.id,
        trust=trust,
        judgments=_opt_path(args.judgments),
        sequences=_opt_path(args.sequences),
        audit=audit,
        actor=_cli_actor(),
    )
    evals = rec.get("evaluations") or []
    if evals:
        s = evals[-1]["search"]
        label = evals[-1]["validation"]
        print(f"pushed {rec['id']}: search NDCG@10 {s['ndcg@10']:.4f} on {s['queries']} queries ({label})")
    else:
        print(f"pushed {rec['id']} (not evaluated: no validation set; promote it with --judgments FILE)")
    if args.json:
        print(json.dumps({k: v for k, v in rec.items() if k != "evaluations"} | {"evaluated": bool(evals)}))
    return 0


def cmd_registry_list(args: argparse.Namespace) -> int:
    registry, _, _ = _registry_context(args)
    current = registry.current_id()
    cols = ["", "id", "pushed", "model", "search ndcg@10", "recommend ndcg@10", "p99 ms"]
    rows = []
    for rec in registry.versions():
        ev = (rec.get("evaluations") or [{}])[-1]
        search, recm = ev.get("search") or {}, ev.get("recommend") or {}
        p99 = (ev.get("bench") or {}).get("p99_ms", search.get("p99_ms"))
        rows.append(
            [
                "*" if rec["id"] == current else "",
                rec["id"],
                rec.get("pushed_at", ""),
                rec.get("model_id", ""),
                "–" if search.get("ndcg@10") is None else f"{search['ndcg@10']:.4f}",
                "–" if recm.get("ndcg@10") is None else f"{recm['ndcg@10']:.4f}",
                "–" if p99 is None else f"{p99:.2f}",
            ]
        )
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    if args.json:
        print(json.dumps({"current": current, "versions": [r[1] for r in rows]}))
    return 0


def cmd_registry_promote(args: argparse.Namespace) -> int:
    from shoprec.registry import gates

    registry, trust, audit = _registry_context(args)
    tol = gates.Tolerances(
        ndcg_tolerance=args.ndcg_tolerance,
        latency_tolerance=args.latency_tolerance,
        latency_slack_ms=args.latency_slack_ms,
        bench_repetitions=args.repetitions,
    )
    result = gates.promote(
        registry,
        args.version,
        tolerances=tol,
        trust=trust,
        judgments=_opt_path(args.judgments),
        sequences=_opt_path(args.sequences),
        audit=audit,
        actor=_cli_actor(),
        progress=not args.json,
    )
    for g in result.gates:
        print(g.message)
    previous = result.pointer.previous[0] if result.pointer.previous else None
    print(f"promoted {result.pointer.version} (previous: {previous or 'none'})")
    if args.json:
        gates_run = [g.gate for g in result.gates]
        print(json.dumps({"version": result.pointer.version, "previous": previous, "gates": gates_run}))
    return 0


def cmd_registry_rollback(args: argparse.Namespace) -> int:
    from shoprec.registry import gates

    registry, _, audit = _registry_context(args)
    pointer, left = gates.rollback(registry, audit=audit, actor=_cli_actor())
    print(f"rolled back from {left} to {pointer.version}")
    return 0


def _rule_store(args: argparse.Namespace, settings: Settings | None = None) -> Any:
    """The rule versions under ``--data-dir`` (default: the settings' data_dir)."""
    from shoprec.serving.rulestore import RuleStore

    data_dir = Path(args.data_dir) if args.data_dir else (settings or Settings.load()).data_dir
    return RuleStore(data_dir / "rules")


def cmd_rules_versions(args: argparse.Namespace) -> int:
    versions = _rule_store(args).versions()
    for v in versions:
        restored = f" (rollback of {v.rollback_of})" if v.rollback_of is not None else ""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(v.created_at))
        print(f"{v.version:>5}  {when}  {v.author}  {len(v.rules)} rules{restored}  {v.note or ''}".rstrip())
    if args.json:
        print(json.dumps({"versions": [v.version for v in versions]}))
    return 0


def cmd_rules_show(args: argparse.Namespace) -> int:
    store = _rule_store(args)
    number = args.version if args.version is not None else store.current().number
    if number is None:
        print("no rules were ever published", file=sys.stderr)
        return 1
    print(store.get(number).model_dump_json(indent=2))
    return 0


def cmd_rules_rollback(args: argparse.Namespace) -> int:
    settings = Settings.load()  # its audit_log, and data_dir without --data-dir
    version = _rule_store(args, settings).rollback(args.version, author=_cli_actor(), note=args.note)
    audit_log = settings.audit_log
    if audit_log is not None:
        from shoprec.security.audit import AuditLog

        AuditLog(audit_log, clock=time.time).append("rules.rollback", _cli_actor(), version.audit_details())
    print(f"published version {version.version} with the rules of version {args.version}")
    return 0


def cmd_eval_report(args: argparse.Namespace) -> int:
    from shoprec.atomicio import write_text
    from shoprec.registry import report

    registry, _, _ = _registry_context(args)
    analysis = report.analyze(registry, args.version, limit=args.limit)
    print(report.history_table(analysis))
    if args.out:
        out = Path(args.out)
        text = report.to_html(analysis) if out.suffix.lower() in (".html", ".htm") else report.to_markdown(analysis)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text(out, text)
        print(f"wrote the error analysis of {analysis.version} (vs {analysis.previous or 'none'}) to {out}")
    return 0


def cmd_ladder_measure(args: argparse.Namespace) -> int:
    from shoprec.pipeline.ladder import measure_artifacts

    ladder = measure_artifacts(Path(args.artifacts), threads=args.threads, progress=not args.quiet)
    if args.json:
        print(json.dumps(ladder))
        return 0
    print(f"{'level':<12} {'p50 ms':>8} {'p99 ms':>8} {'NDCG@10':>8}   ({ladder['queries']} validation queries)")
    for lv in ladder["levels"]:
        print(f"{lv['name']:<12} {lv['p50_ms']:>8.2f} {lv['p99_ms']:>8.2f} {lv['ndcg@10']:>8.4f}")
    return 0


def cmd_optimize(args: argparse.Namespace) -> int:
    from shoprec.pipeline.ltr import Group, groups_from_judgments
    from shoprec.pipeline.optimize import OptimizeOptions, optimize

    groups: list[Group] | None = None
    if args.judgments:
        from shoprec.catalog.loaders import load_judgments

        judgments, rep = load_judgments(args.judgments)
        _report(rep)
        groups = groups_from_judgments(judgments)
    options = OptimizeOptions(
        steps=tuple(args.steps),
        gate_fraction=args.gate,
        threads=args.threads,
        progress=not args.quiet,
        train_budget_s=args.train_budget_s,
        keep_candidates=args.keep_candidates,
    )
    section = optimize(Path(args.artifacts), Path(args.out), options=options, groups=groups)
    t = section["teacher"]
    print(f"{'step':<12} {'size MB':>8} {'b1 p50 ms':>9} {'b32 /s':>8} {'NDCG@10':>8} {'ratio':>6}  gate")
    print(f"{'teacher':<12} {t['size_mb']:>8} {t['batch1_p50_ms']:>9} {t['batch32_per_s']:>8} {t['ndcg@10']:>8}")
    for r in section["steps"]:
        verdict = "pass" if r["passed"] else "refused"
        print(
            f"{r['step']:<12} {r['size_mb']:>8} {r['batch1_p50_ms']:>9} {r['batch32_per_s']:>8} "
            f"{r['ndcg@10']:>8} {r['ndcg_ratio']:>6}  {verdict}"
        )
    print(f"kept {section['kept']} (fastest encoder passing the gate {section['gate_fraction']}); wrote {args.out}")
    if args.edge_bundle:
        from shoprec.edge.bundle import make_edge_bundle

        edge = make_edge_bundle(Path(args.out), Path(args.edge_bundle), top_n=args.edge_items)
        print(
            f"edge bundle: {args.edge_bundle} ({edge['size_mb']} MB, {edge['items']} items); try: "
            f"cd {args.edge_bundle} && python query.py 'your query'"
        )
    if args.json:
        print(json.dumps(section))
    return 0


def cmd_bench_encoder(args: argparse.Namespace) -> int:
    from shoprec.pipeline.encoder_bench import bench_encoders

    res = bench_encoders(Path(args.artifacts), against_teacher=args.against_teacher, threads=args.threads)
    cols = ["encoder", "size_mb", "batch1_p50_ms", "batch1_p99_ms", "batch32_per_s", "rss_growth_mb"]
    cols += [c for c in ("throughput_x", "latency_x") if c in res["encoders"][0]]
    cols += [c for c in ("ndcg@10", "ndcg_ratio") if any(c in r for r in res["encoders"])]
    print(" | ".join(f"{c:>14}" for c in cols))
    for r in res["encoders"]:
        print(" | ".join(f"{str(r.get(c)):>14}" for c in cols))
    for note in res["notes"]:
        print(note, file=sys.stderr)
    if args.json:
        print(json.dumps(res))
    return 0


# --- parser -----------------------------------------------------------------------------


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--category", help="category path prefix, e.g. 'Tools > Power Tools'")
    p.add_argument("--brand")
    p.add_argument("--min-price", type=float)
    p.add_argument("--max-price", type=float)
    p.add_argument("--in-stock", type=lambda s: s.lower() in ("1", "true", "yes"), default=None)


def _data_commands(sub: Any) -> None:
    """demo, generate, build, serve, search: data in, artifacts out, served and queried."""
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
    p.add_argument("--ray", action="store_true", help="serve as replicas behind Ray Serve (needs the bench extra)")
    p.add_argument("--replicas", type=int, help="with --ray: this many replicas (default 1)")
    p.add_argument("--autoscale", metavar="MIN:MAX", help="with --ray: scale on ongoing requests between MIN and MAX")
    p.add_argument(
        "--target-ongoing-requests",
        type=float,
        help="with --autoscale: add replicas when they average more ongoing requests than this (default 8)",
    )
    p.add_argument(
        "--upscale-delay-s", type=float, help="with --autoscale: wait this long before adding replicas (default 30)"
    )
    p.add_argument(
        "--downscale-delay-s",
        type=float,
        help="with --autoscale: wait this long before removing replicas (default 600)",
    )
    p.add_argument("--max-replicas-per-node", type=int, help="with --ray: spread replicas over nodes")
    p.add_argument("--replica-cpus", type=float, help="with --ray: CPUs Ray reserves per replica (default 1)")
    p.add_argument("--ray-address", help="with --ray: join this Ray cluster (default: start one here)")
    p.add_argument(
        "--router",
        choices=["pow2", "latency"],
        help="with --ray: Ray's shorter-queue-of-two (pow2, default) or recent latency x queue (latency)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("search", help="run one query and print a table")
    p.add_argument("--artifacts", required=True)
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--pipeline", choices=["bm25", "dense", "hybrid", "full"], default="full")
    p.add_argument("--json", action="store_true")
    _add_filters(p)
    p.set_defaults(func=cmd_search)


def _eval_commands(sub: Any) -> None:
    """eval search|recommend|sessions|report, ladder measure: quality and the degradation ladder."""
    p = sub.add_parser("eval", help="evaluate quality")
    esub = p.add_subparsers(dest="eval_command", required=True)
    e = esub.add_parser("search", help="search quality on judgments (whole-catalog protocol)")
    e.add_argument("--artifacts", required=True)
    e.add_argument(
        "--judgments", help="CSV query,product_id,relevance (default: the artifacts' held-out validation queries)"
    )
    e.add_argument("--pipeline", choices=["bm25", "dense", "hybrid", "full", "all"], default="full")
    e.add_argument(
        "--no-correct", action="store_true", help="search the queries as typed (the API corrects typos by default)"
    )
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
    e = esub.add_parser("report", help="evaluation history of a registry and an error analysis (Markdown/HTML)")
    e.add_argument("--registry", help="registry folder (default: setting registry)")
    e.add_argument("--version", help="version to analyse (default: the current one)")
    e.add_argument("--out", help="write the report here: .md for Markdown, .html for HTML")
    e.add_argument("--limit", type=int, default=10, help="queries per table")
    e.set_defaults(func=cmd_eval_report)

    p = sub.add_parser("ladder", help="the degradation ladder stored in the manifest")
    ls = p.add_subparsers(dest="ladder_command", required=True)
    lm = ls.add_parser("measure", help="measure each level's cost and validation NDCG@10; rewrite the manifest")
    lm.add_argument("--artifacts", required=True, help="an (unsigned) artifacts folder")
    lm.add_argument("--threads", type=int, default=None)
    lm.add_argument("--json", action="store_true", help="print the ladder as one JSON object")
    lm.add_argument("--quiet", action="store_true", help="no progress bar")
    lm.set_defaults(func=cmd_ladder_measure)


def _trust_commands(sub: Any) -> None:
    """sign, verify, encrypt, keys, audit: artifacts and API keys one can trust."""
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
    k.add_argument("--role", action="append", choices=["search", "events", "metrics", "admin"], required=True)
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


def _registry_commands(sub: Any) -> None:
    """registry push|list|promote|rollback: versions behind quality and latency gates."""
    p = sub.add_parser("registry", help="model registry: push, list, promote (with gates), rollback")
    rs = p.add_subparsers(dest="registry_command", required=True)
    r = rs.add_parser("push", help="verify, copy in and evaluate an artifacts folder as a new version")
    r.add_argument("dir")
    r.add_argument("--id", help="version id (default: v<UTC time>-<manifest sha256 prefix>)")
    r.add_argument("--trusted-key", action="append", default=[], help="public key a signature must come from")
    r.add_argument("--allow-unsigned", action="store_true", help="with trusted keys, still accept unsigned folders")
    r.add_argument("--judgments", help="evaluate on these judgments instead of the stored validation set")
    r.add_argument("--sequences", help="sequences file (user item item ...) for recommendation NDCG@10")
    r.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    r.set_defaults(func=cmd_registry_push)
    r = rs.add_parser("list", help="versions with their latest evaluation; * marks the current one")
    r.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    r.set_defaults(func=cmd_registry_list)
    r = rs.add_parser("promote", help="make a version current if it passes the quality and latency gates")
    r.add_argument("version")
    r.add_argument("--judgments", help="validation judgments (default: the validation set stored in the artifacts)")
    r.add_argument("--sequences", help="sequences file (user item item ...) for the recommendation gate")
    r.add_argument("--ndcg-tolerance", type=float, default=0.01, help="allowed NDCG@10 drop, absolute")
    r.add_argument("--latency-tolerance", type=float, default=0.20, help="allowed p99 increase, relative")
    r.add_argument("--latency-slack-ms", type=float, default=0.5, help="allowed p99 increase on top, in ms")
    r.add_argument("--repetitions", type=int, default=5, help="benchmark rounds")
    r.add_argument("--trusted-key", action="append", default=[], help="public key to check signatures with")
    r.add_argument("--allow-unsigned", action="store_true", help="with trusted keys, still accept unsigned folders")
    r.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    r.set_defaults(func=cmd_registry_promote)
    r = rs.add_parser("rollback", help="make the previous version current again")
    r.set_defaults(func=cmd_registry_rollback)
    for r in rs.choices.values():
        r.add_argument("--registry", help="registry folder (default: setting registry)")


def _rules_commands(sub: Any) -> None:
    """rules versions|show|rollback: the merchandising rule set's versions (set through the API)."""
    p = sub.add_parser("rules", help="merchandising rules: versions, one version, rollback (set: PUT /v1/admin/rules)")
    rs = p.add_subparsers(dest="rules_command", required=True)
    r = rs.add_parser("versions", help="every version, newest first: when, who, how many rules, note")
    r.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    r.set_defaults(func=cmd_rules_versions)
    r = rs.add_parser("show", help="one version's rules as JSON (default: the current one)")
    r.add_argument("version", type=int, nargs="?")
    r.set_defaults(func=cmd_rules_show)
    r = rs.add_parser("rollback", help="publish an old version's rules again as a new version (audited)")
    r.add_argument("version", type=int)
    r.add_argument("--note")
    r.set_defaults(func=cmd_rules_rollback)
    for r in rs.choices.values():
        r.add_argument("--data-dir", help="the data folder holding rules/ (default: setting data_dir)")


def _optimize_commands(sub: Any) -> None:
    """optimize, bench encoder: faster encoders, each step gated and measured."""
    p = sub.add_parser("optimize", help="faster encoder artifacts: quantize / distil, each step gated on NDCG@10")
    p.add_argument("--artifacts", required=True, help="input artifacts folder (never modified)")
    p.add_argument("--out", required=True, help="output artifacts folder (written only when the gate passes)")
    p.add_argument(
        "steps",
        nargs="*",
        metavar="STEP",
        help="int8, int8-static, fp16, static, static-fp16, student, student-int8, prune, prune-int8 (default: "
        "the recommended chain int8 + static, the fastest passing encoder kept)",
    )
    p.add_argument(
        "--train-budget-s",
        type=float,
        default=240.0,
        help="wall-clock training budget of the student / pruning recovery steps (torch, [train] extra)",
    )
    p.add_argument("--gate", type=float, default=0.97, help="minimum NDCG@10 as a fraction of the teacher's")
    p.add_argument("--judgments", help="judgments CSV to gate on instead of the artifacts' validation.jsonl")
    p.add_argument("--threads", type=int)
    p.add_argument(
        "--keep-candidates",
        action="store_true",
        help="also keep every step's encoder under OUT/candidates/ (for `shoprec bench encoder`)",
    )
    p.add_argument("--edge-bundle", help="also write an edge bundle (int8 static student + top items) here")
    p.add_argument("--edge-items", type=int, default=10_000, help="items in the edge bundle (most popular first)")
    p.add_argument("--json", action="store_true", help="last stdout line: the optimization report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("bench", help="benchmarks")
    bsub = p.add_subparsers(dest="bench_command", required=True)
    b = bsub.add_parser("encoder", help="encoder latency/throughput/size side by side (vs the torch teacher)")
    b.add_argument("--artifacts", required=True)
    b.add_argument("--against-teacher", action="store_true", help="also measure the fp32 torch/ONNX and int8 teacher")
    b.add_argument("--threads", type=int)
    b.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    b.set_defaults(func=cmd_bench_encoder)


def cmd_retrain(args: argparse.Namespace) -> int:
    from shoprec.catalog.loaders import load_events, load_products
    from shoprec.pipeline.build import BuildOptions
    from shoprec.registry.continuous import retrain_cycle
    from shoprec.registry.store import Registry
    from shoprec.security.audit import AuditLog

    settings = Settings.load()
    products, _ = load_products(args.products)
    recent, _ = load_events(args.events)
    base = load_events(args.base_events)[0] if args.base_events else []
    decision = retrain_cycle(
        products,
        recent,
        Registry(Path(args.registry)),
        Path(args.work) if args.work else settings.data_dir / "training" / "work",
        base_events=base,
        holdout_fraction=args.holdout if args.holdout is not None else settings.retrain_holdout_fraction,
        judgments=_opt_path(args.judgments),
        encoder_dir=_opt_path(args.encoder),
        options=BuildOptions(recommender_max_train_s=args.max_train_s),
        signing_key=_opt_path(args.signing_key),
        audit=AuditLog(settings.audit_log, time.time) if settings.audit_log is not None else None,
        actor=_cli_actor(),
    )
    verdict = "promoted" if decision["promoted"] else "refused"
    print(f"{decision['candidate']} {verdict} (current was {decision['current']})", file=sys.stderr)
    print(json.dumps(decision))
    return 0


def _retrain_commands(sub: Any) -> None:
    p = sub.add_parser("retrain", help="one continuous-training cycle: build on recent events, push, promote via gates")
    p.add_argument("--products", required=True)
    p.add_argument("--events", required=True, help="the recent events (JSON Lines or CSV, as build --events)")
    p.add_argument("--base-events", help="events every retrain also learns from")
    p.add_argument("--registry", required=True)
    p.add_argument("--holdout", type=float, help="the most recent share held out for evaluation (default: setting)")
    p.add_argument("--judgments", help="search validation set for the gates (default: the one stored in artifacts)")
    p.add_argument("--encoder")
    p.add_argument("--work", help="folder for the candidate (default: <data_dir>/training/work)")
    p.add_argument("--signing-key", help="sign the candidate before pushing it")
    p.add_argument("--max-train-s", type=float, default=300.0, help="the sequential recommender's training budget")
    p.set_defaults(func=cmd_retrain)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="shoprec", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--version", action="version", version=f"shoprec {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)
    for add_commands in (
        _data_commands,
        _eval_commands,
        _trust_commands,
        _registry_commands,
        _rules_commands,
        _optimize_commands,
        _retrain_commands,
        add_worker_commands,
    ):
        add_commands(sub)
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
