"""``shoprec bench encoder``: the artifacts' encoder beside the teacher, in one run.

Entries (with ``against_teacher``): the fp32 PyTorch teacher (needs the ``[train]`` extra;
left out with a note when torch is missing), the fp32 ONNX teacher, the int8 ONNX teacher,
then the encoder the artifacts hold, then every candidate ``shoprec optimize
--keep-candidates`` left under ``candidates/``, each with the NDCG@10 (and ratio to the
teacher pipeline) that ``optimize`` measured for it. Each is measured on the same queries: batch-1 latency
(median, p99), batch-32 throughput, size on disk, resident-memory growth while loaded and
running, and each ratio to the PyTorch teacher.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shoprec import artifacts
from shoprec.models.encoder import OnnxEncoder
from shoprec.optimize.measure import folder_size_mb, measure_encoder, rss_mb
from shoprec.pipeline.optimize import CANDIDATES, STEPS
from shoprec.pipeline.validation import load_validation

log = logging.getLogger(__name__)

Encode = Callable[[Sequence[str], int], Any]


def _torch_teacher(threads: int | None) -> tuple[Encode, float]:
    from shoprec.training.teacher import pytorch_teacher  # needs torch: the [train] extra

    return pytorch_teacher(threads)


def _queries(folder: Path) -> list[str]:
    groups = load_validation(folder)
    if groups:
        return [g.query for g in groups]
    from shoprec.models.bundle import product_from_json

    out = []
    with (folder / "catalog.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(product_from_json(json.loads(line)).title)
            if len(out) >= 256:
                break
    return out


def bench_encoders(
    folder: Path,
    *,
    against_teacher: bool = False,
    threads: int | None = None,
    batch1_n: int = 200,
    batch32_n: int = 20,
) -> dict[str, Any]:
    """Measure the artifacts' encoder (and, with ``against_teacher``, the teachers) side by side."""
    folder = Path(folder)
    manifest = artifacts.read_manifest(folder)
    queries = _queries(folder)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []

    def run(name: str, load: Callable[[], tuple[Encode, float]]) -> None:
        gc.collect()
        before = rss_mb()
        encode, size = load()
        row: dict[str, Any] = {"encoder": name, "size_mb": size}
        row.update(measure_encoder(encode, queries, batch1_n=batch1_n, batch32_n=batch32_n))
        row["rss_growth_mb"] = round(max(0.0, rss_mb() - before), 1)
        rows.append(row)
        log.info("bench %s: %s", name, row)

    def onnx(path: Path) -> Callable[[], tuple[Encode, float]]:
        def load() -> tuple[Encode, float]:
            enc = OnnxEncoder(path, threads=threads)
            return (lambda t, b: enc.encode(t, b)), folder_size_mb(path)

        return load

    if against_teacher:
        try:
            run("teacher fp32 torch", lambda: _torch_teacher(threads))
        except ImportError as exc:
            notes.append(f"teacher fp32 torch left out: {exc} (install the [train] extra)")
        from shoprec.pipeline.build import ensure_int8_teacher, ensure_teacher_encoder

        run("teacher fp32 onnx", onnx(ensure_teacher_encoder()))
        run("teacher int8 onnx", onnx(ensure_int8_teacher()))
    kept = manifest.get("optimization", {}).get("kept")
    run(f"artifacts ({kept or manifest.get('model_id', 'encoder')})", onnx(folder / "encoder"))
    candidates = folder / CANDIDATES
    if candidates.is_dir():
        order = {step: i for i, step in enumerate(STEPS)}
        for sub in sorted(candidates.iterdir(), key=lambda p: (order.get(p.name, len(order)), p.name)):
            if (sub / "model.onnx").is_file():
                run(f"candidate {sub.name}", onnx(sub))

    base = rows[0] if rows and rows[0]["encoder"] == "teacher fp32 torch" else None
    for r in rows:
        if base is not None:
            r["throughput_x"] = round(r["batch32_per_s"] / base["batch32_per_s"], 2)
            r["latency_x"] = round(base["batch1_p50_ms"] / max(r["batch1_p50_ms"], 1e-6), 2)
            r["size_ratio"] = round(r["size_mb"] / base["size_mb"], 3) if base["size_mb"] else None
    steps = {s["step"]: s for s in manifest.get("optimization", {}).get("steps", [])}
    teacher_ndcg = manifest.get("optimization", {}).get("teacher", {}).get("ndcg@10")
    for r in rows:
        name = r["encoder"]
        step = kept if name.startswith("artifacts") else name.removeprefix("candidate ")
        if step in steps:
            r["ndcg@10"], r["ndcg_ratio"] = steps[step].get("ndcg@10"), steps[step].get("ndcg_ratio")
        elif name == "teacher fp32 onnx" and teacher_ndcg is not None:
            r["ndcg@10"], r["ndcg_ratio"] = teacher_ndcg, 1.0
    out: dict[str, Any] = {
        "artifacts": str(folder),
        "queries": len(queries),
        "encoders": rows,
        "kept": kept,
        "kept_ndcg_ratio": steps.get(kept, {}).get("ndcg_ratio") if kept else None,
        "notes": notes,
    }
    return out
