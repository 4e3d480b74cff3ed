"""The CLI contracts, run as a user would run them (subprocesses), with the tiny encoder."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shoprec import artifacts
from support.tinyencoder import MODEL_ID
from support.tinyshop import tiny_judgments, tiny_products


def shoprec(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shoprec.cli", *args], capture_output=True, text=True, check=check)


def build_csv(
    products: Path, out: Path, encoder: Path, *extra: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``shoprec build`` on a products CSV whose id/title columns are named sku/name."""
    return shoprec(
        "build",
        "--products",
        str(products),
        "--map",
        "id=sku",
        "--map",
        "title=name",
        "--out",
        str(out),
        "--encoder",
        str(encoder),
        "--quiet",
        *extra,
        check=check,
    )


def _write_products_csv(path: Path, extra_rows: list[list[str]] | None = None) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sku", "name", "brand", "category", "price", "in_stock"])
        for p in tiny_products():
            w.writerow([p.id, p.title, p.brand, p.category, p.price, str(p.in_stock).lower()])
        for row in extra_rows or []:
            w.writerow(row)


def _write_judgments(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["query", "product_id", "relevance"])
        for j in tiny_judgments():
            w.writerow([j.query, j.product_id, j.relevance])


def test_build_eval_search_and_refusals(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    products, judgments, out = tmp_path / "p.csv", tmp_path / "j.csv", tmp_path / "art"
    _write_products_csv(products)
    _write_judgments(judgments)
    r = build_csv(products, out, tiny_encoder_dir)
    assert r.returncode == 0, r.stderr
    manifest = artifacts.verify(out)
    assert manifest["metrics"]["products"] == 30
    assert manifest["model_id"] == MODEL_ID

    r = shoprec("eval", "search", "--artifacts", str(out), "--judgments", str(judgments), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("ndcg@10", "recall@100", "mrr", "queries", "skipped", "p50_ms", "p99_ms"):
        assert key in result
    assert result["queries"] == 4 and result["skipped"] == 1
    assert result["ndcg@10"] > 0.5

    r = shoprec("search", "--artifacts", str(out), "couch", "-k", "2")
    assert r.returncode == 0 and "Comfy" in r.stdout
    r = shoprec("eval", "search", "--artifacts", str(out), "--json", check=False)  # 4 judged queries: none held out
    assert r.returncode == 2 and "holds no validation queries: pass --judgments" in r.stderr

    # A bad row names the file and line, and the failed build leaves the artifacts intact.
    bad = tmp_path / "bad.csv"
    _write_products_csv(bad, [["X1", "Broken price", "B", "C", "cheap", "true"]])
    r = build_csv(bad, out, tiny_encoder_dir, check=False)
    assert r.returncode == 2
    assert f"{bad}:32" in r.stderr and "price" in r.stderr
    assert artifacts.verify(out)["metrics"]["products"] == 30

    # Tampering is refused at load with a clear message.
    (out / "catalog.jsonl").write_text((out / "catalog.jsonl").read_text().replace("Comfy", "Evil"))
    r = shoprec("search", "--artifacts", str(out), "couch", check=False)
    assert r.returncode == 2 and "checksum mismatch for catalog.jsonl" in r.stderr


def test_skip_bad_rows_reports_them(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    bad = tmp_path / "bad.csv"
    _write_products_csv(bad, [["X1", "", "B", "C", "1", "true"], ["T000", "dup", "B", "C", "1", "true"]])
    r = build_csv(bad, tmp_path / "a", tiny_encoder_dir, "--skip-bad-rows")
    assert r.returncode == 0, r.stderr
    assert "1 duplicates, 1 skipped" in r.stderr and f"{bad}:32" in r.stderr


def test_eval_sessions_json_and_bad_row(tmp_path: Path) -> None:
    train = tmp_path / "train.tsv"
    test = tmp_path / "test.tsv"
    rows = ["SessionId\tItemId\tTime"]
    for s in range(30):  # every session goes a -> b -> c
        rows += [f"s{s}\ta\t{3 * s}", f"s{s}\tb\t{3 * s + 1}", f"s{s}\tc\t{3 * s + 2}"]
    train.write_text("\n".join(rows) + "\n")
    test.write_text("SessionId\tItemId\tTime\nt1\ta\t1\nt1\tb\t2\nt1\tc\t3\nt2\tz\t1\nt2\ta\t2\n")
    out = shoprec(
        "eval", "sessions", "--train", str(train), "--test", str(test), "--models", "popularity,sknn", "--json"
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["cases"] == 3 and result["skipped_targets"] == 0  # b after a, c after a b, a after (unknown) z
    assert result["models"]["sknn"]["hr@10"] == 1.0
    test.write_text("SessionId\tItemId\tTime\nt1\ta\tyesterday\n")
    bad = shoprec("eval", "sessions", "--train", str(train), "--test", str(test), check=False)
    assert bad.returncode != 0 and f"{test}:2" in bad.stderr


def test_demo_signs_its_artifacts_and_keeps_one_api_key(
    tiny_static_artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import time

    from shoprec.cli import _demo_trust
    from shoprec.security.apikeys import KeyStore
    from shoprec.security.crypto import verify_artifacts

    for name in ("SHOPREC_TRUSTED_KEYS", "SHOPREC_KEYS_FILE"):  # the demo sets them; undone after the test
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    art = tmp_path / "artifacts"
    shutil.copytree(tiny_static_artifacts, art)
    key = _demo_trust(tmp_path, art)
    public = tmp_path / "keys" / "signing.key.pub"
    assert verify_artifacts(art, [public])["signer"] == "shoprec demo"
    store = KeyStore(tmp_path / "keys" / "apikeys.json", time.time)
    assert store.authenticate(key).allows("admin")
    assert _demo_trust(tmp_path, art) == key  # a second demo run reuses keys and signature
    assert (tmp_path / "keys" / "demo-api-key.txt").stat().st_mode & 0o077 == 0


def test_eval_search_defaults_to_the_held_out_queries(tiny_static_artifacts: Path) -> None:
    r = shoprec("eval", "search", "--artifacts", str(tiny_static_artifacts), "--pipeline", "all", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    held_out = (tiny_static_artifacts / "validation.jsonl").read_text().splitlines()
    assert set(result["pipelines"]) == {"bm25", "dense", "hybrid", "full"}
    for p in result["pipelines"].values():
        assert p["queries"] + p["skipped"] == len({json.loads(line)["query"] for line in held_out})
        assert p["p50_ms"] > 0 and 0 <= p["ndcg@10"] <= 1
