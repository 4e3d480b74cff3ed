"""Artifacts folders for registry tests: copies of real artifacts, degraded on purpose and
re-manifested so every checksum still holds."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from shoprec import artifacts
from support.tinyshop import tiny_judgments

_MANIFEST_CORE = {"format_version", "shoprec_version", "created_at", "model_id", "config", "metrics", "files"}


def remanifest(folder: Path) -> None:
    """Rewrite the manifest over the folder's current files, keeping its other fields."""
    m = artifacts.read_manifest(folder)
    extra = {k: v for k, v in m.items() if k not in _MANIFEST_CORE}
    artifacts.write_manifest(folder, model_id=m["model_id"], config=m["config"], metrics=m["metrics"], extra=extra)


def good_copy(source: Path, out: Path) -> Path:
    shutil.copytree(source, out)
    return out


def degraded_copy(source: Path, out: Path, *, seed: int = 0) -> Path:
    """A copy whose catalog rows are shuffled against every index: the model returns the
    wrong products for every query, while the folder stays well-formed and checksummed."""
    shutil.copytree(source, out)
    path = out / "catalog.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    rng = random.Random(seed)
    for _ in range(100):
        shuffled = lines[:]
        rng.shuffle(shuffled)
        if all(a != b for a, b in zip(shuffled, lines, strict=True)):
            break
    path.write_text("\n".join(shuffled) + "\n", encoding="utf-8")
    remanifest(out)
    return out


def write_judgments(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for j in tiny_judgments():
            f.write(json.dumps({"query": j.query, "product_id": j.product_id, "relevance": j.relevance}) + "\n")
    return path
