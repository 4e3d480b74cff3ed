"""``shoprec optimize``: new artifacts with a faster encoder, each step measured and gated.

This is the orchestration; the encoder transformations are :mod:`shoprec.optimize`
(quantisation, the static student) and :mod:`shoprec.training` (the transformer student,
pruning), which import models and core only. It sits here, beside ``build``, because the
gate and the re-measured ladder use the pipeline's validation and the serving search.

A step turns the input's encoder into a candidate encoder folder. Each candidate is
measured (size, batch-1 latency, batch-32 throughput) and judged by the full search
pipeline's NDCG@10 on the validation groups (``validation.jsonl`` in the artifacts, or
judgments given explicitly), against the input artifacts' own score (the teacher
pipeline). A candidate under ``gate_fraction`` of the teacher's NDCG@10 is refused.

Where a candidate lives in the teacher's space (a quantized teacher), products keep the
teacher's vectors, computed offline where speed does not matter, and only queries use the
candidate; the students (static, small transformer) and the pruned teacher are measured both
ways (teacher product vectors kept, or products re-encoded with the candidate, timed) and the
better one is what the step keeps.

``student``/``prune`` (and their ``-int8`` quantized forms) need torch (the ``[train]``
extra) and the encoder's PyTorch weights: the small transformer student keeps a few of the
teacher's layers; pruning removes attention heads and FFN neurons; both are trained to
reproduce the teacher's embeddings on catalog texts and generated queries within
``train_budget_s`` (:mod:`shoprec.training.distill`, :mod:`shoprec.training.prune`), once
per run even when both the fp32 and the int8 step are named.

With ``keep_candidates`` every step's encoder is also kept under ``candidates/<step>/`` in
the output, for ``shoprec bench encoder`` to measure side by side. Named steps must each
pass, or nothing is written. With no step named the recommended
chain runs and the fastest passing encoder (by batch-1 latency) is kept; if none passes,
nothing is written. Output = a copy of the input with ``encoder/`` replaced (and
``embeddings.npy`` + ``vectors.faiss`` when products were re-encoded), written through
:func:`shoprec.artifacts.write_artifacts`, with an ``optimization`` manifest section.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shoprec import artifacts
from shoprec.errors import ConfigError, DataError, QualityGateError
from shoprec.models.bundle import Bundle, load_bundle, product_dense_text
from shoprec.models.compiled import COMPILED_FILE
from shoprec.models.encoder import OnnxEncoder
from shoprec.models.ranker import Ranker
from shoprec.optimize.measure import cosine_agreement, folder_size_mb, measure_encoder
from shoprec.pipeline.ltr import Group
from shoprec.pipeline.ranker_compile import MODEL_FILE, compile_ranker
from shoprec.pipeline.validation import evaluate_validation, load_validation
from shoprec.retrieval.vector import VectorIndex
from shoprec.serving.search import SearchService

log = logging.getLogger(__name__)

STEPS = ("int8", "int8-static", "fp16", "static", "static-fp16", "student", "student-int8", "prune", "prune-int8")
TRAINED = {"student": "student", "student-int8": "student", "prune": "prune", "prune-int8": "prune"}
DEFAULT_CHAIN = ("int8", "static")
DEFAULT_GATE_FRACTION = 0.97
CANDIDATES = "candidates"
REPLACED = ("encoder", "embeddings.npy", "vectors.faiss", artifacts.MANIFEST, "manifest.sig", CANDIDATES)


@dataclass(frozen=True, slots=True)
class OptimizeOptions:
    steps: tuple[str, ...] = ()
    gate_fraction: float = DEFAULT_GATE_FRACTION
    calibration_texts: int = 256
    threads: int | None = None
    progress: bool = True
    train_budget_s: float = 240.0
    train_max_steps: int | None = None
    train_texts: int = 40_000
    student_layers: int = 3
    student_ffn_keep: float = 1.0
    prune_heads_keep: float = 0.5
    prune_ffn_keep: float = 0.5
    teacher_weights: Path | None = None
    static_fit_queries: int = 40_000
    static_fit_products: int = 100_000
    static_fit_l2: float = 0.01
    keep_candidates: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.train_budget_s <= 0 or self.train_texts < 10 or self.student_layers < 1:
            raise ConfigError("train_budget_s > 0, train_texts >= 10 and student_layers >= 1 are required")
        for name in ("student_ffn_keep", "prune_heads_keep", "prune_ffn_keep"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not 0.0 < self.gate_fraction <= 1.0:
            raise ConfigError(f"gate fraction must be in (0, 1], got {self.gate_fraction}")
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise ConfigError(f"unknown optimize step(s) {unknown}; choose from {list(STEPS)}")
        if self.static_fit_queries < 0 or self.static_fit_products < 0 or self.static_fit_l2 <= 0:
            raise ConfigError("static_fit_queries and static_fit_products must be >= 0 and static_fit_l2 > 0")
        if self.calibration_texts < 1:
            raise ConfigError("calibration_texts must be at least 1")


@dataclass
class Candidate:
    step: str
    folder: Path
    products_reencoded: bool
    report: dict[str, Any]
    embeddings: npt.NDArray[np.float32] | None = None
    vectors: VectorIndex | None = None


def _variant(bundle: Bundle, encoder: OnnxEncoder, embeddings: Any, vectors: VectorIndex) -> Bundle:
    """The input artifacts with another encoder (and, when re-encoded, other product vectors)."""
    return dataclasses.replace(bundle, encoder=encoder, embeddings=embeddings, vectors=vectors)


def _service_with(bundle: Bundle, encoder: OnnxEncoder, embeddings: Any, vectors: VectorIndex) -> SearchService:
    return SearchService(_variant(bundle, encoder, embeddings, vectors))


def _measure_queries(groups: Sequence[Group], bundle: Bundle) -> list[str]:
    qs = [g.query for g in groups]
    return qs if qs else [p.title for p in bundle.catalog.products[:256]]


def optimize(
    artifacts_dir: Path,
    out: Path,
    *,
    options: OptimizeOptions = OptimizeOptions(),
    groups: Sequence[Group] | None = None,
) -> dict[str, Any]:
    """Run the steps (or the default chain) and write the kept candidate to ``out``.

    Raises :class:`QualityGateError` (nothing written) when a named step, or every step of
    the default chain, misses the gate."""
    artifacts_dir, out = Path(artifacts_dir), Path(out)
    bundle = load_bundle(artifacts_dir, threads=options.threads)
    if groups is None:
        groups = load_validation(artifacts_dir)
    groups = [g for g in groups if any(v > 0 for v in g.gains.values())]
    if not groups:
        raise DataError(
            f"{artifacts_dir}: no validation groups (build with --validation-fraction > 0, or pass --judgments)"
        )
    steps = options.steps or DEFAULT_CHAIN
    queries = _measure_queries(groups, bundle)
    texts = [product_dense_text(p) for p in bundle.catalog.products]

    teacher_eval = evaluate_validation(SearchService(bundle), groups)
    teacher_ndcg = float(teacher_eval["ndcg@10"])
    teacher_report = {
        "encoder": bundle.encoder.model_id,
        "size_mb": folder_size_mb(artifacts_dir / "encoder"),
        **measure_encoder(lambda t, b: bundle.encoder.encode(t, b), queries),
        "ndcg@10": teacher_ndcg,
        "validation_queries": teacher_eval["queries"],
    }
    log.info("teacher pipeline: NDCG@10 %.4f on %d validation queries", teacher_ndcg, teacher_eval["queries"])

    work = Path(tempfile.mkdtemp(prefix=".optimize-", dir=out.parent if out.parent.exists() else None))
    try:
        shared: dict[str, Any] = {}  # what several steps need is computed once per run
        candidates = [
            _run_step(step, bundle, work, texts, queries, groups, teacher_ndcg, options, shared) for step in steps
        ]
        for c in candidates:
            c.report["passed"] = c.report["ndcg_ratio"] >= options.gate_fraction
        passed = [c for c in candidates if c.report["passed"]]
        refused = [c for c in candidates if not c.report["passed"]]
        if options.steps and refused or not passed:
            worst = min(refused, key=lambda c: c.report["ndcg_ratio"])
            missed = options.gate_fraction - worst.report["ndcg_ratio"]
            raise QualityGateError(
                f"step {worst.step!r} refused: NDCG@10 {worst.report['ndcg@10']:.4f} is "
                f"{worst.report['ndcg_ratio']:.4f} of the teacher's {teacher_ndcg:.4f}, "
                f"under the gate {options.gate_fraction:.2f} by {missed:.4f}; nothing written"
            )
        kept = min(passed, key=lambda c: c.report["batch1_p50_ms"])
        section = {
            "source": str(artifacts_dir),
            "source_model_id": bundle.model_id,
            "gate_fraction": options.gate_fraction,
            "chain": "default" if not options.steps else "named",
            "teacher": teacher_report,
            "steps": [c.report for c in candidates],
            "kept": kept.step,
        }
        bundle, compiled = _compiled_ranker(bundle, artifacts_dir, work, groups, options)
        ladder = _measure_ladder(bundle, kept, groups, options) if "ladder" in bundle.manifest else None
        _write(
            bundle,
            artifacts_dir,
            out,
            kept,
            section,
            candidates if options.keep_candidates else [],
            ladder,
            compiled,
        )
        log.info(
            "kept %s (batch-1 %.2f ms, NDCG@10 ratio %.4f)",
            kept.step,
            kept.report["batch1_p50_ms"],
            kept.report["ndcg_ratio"],
        )
        return section
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_step(
    step: str,
    bundle: Bundle,
    work: Path,
    texts: list[str],
    queries: list[str],
    groups: Sequence[Group],
    teacher_ndcg: float,
    options: OptimizeOptions,
    shared: dict[str, Any],
) -> Candidate:
    from shoprec.optimize.quantize import convert_encoder_fp16, quantize_encoder, quantize_encoder_static
    from shoprec.optimize.static import distill_static

    t0 = time.perf_counter()
    src = bundle.folder / "encoder"
    dst = work / step
    did: str
    if step == "int8":
        quantize_encoder(src, dst)
        did = "int8 dynamic quantization (per-channel weights) of the encoder; products keep the teacher's vectors"
    elif step == "int8-static":
        rng = np.random.default_rng(0)
        idx = rng.choice(len(texts), size=min(options.calibration_texts, len(texts)), replace=False)
        quantize_encoder_static(src, dst, [texts[i] for i in idx])
        did = (
            f"int8 static quantization (QDQ, weights and activations) calibrated on {len(idx)} catalog texts; "
            "products keep the teacher's vectors"
        )
    elif step == "fp16":
        convert_encoder_fp16(src, dst)
        did = (
            "fp16 conversion of the encoder (inputs/outputs stay float32), for the CUDA provider; "
            "products keep the teacher's vectors"
        )
    elif step in TRAINED:
        did = _trained_step(step, bundle, work, texts, options)
    else:
        if "static_fit" not in shared:
            shared["static_fit"] = _static_fit_data(bundle, texts, options)
        fit_texts, fit_targets = shared["static_fit"]
        distill_static(
            src,
            dst,
            texts,
            fp16=step == "static-fp16",
            fit_texts=fit_texts,
            fit_targets=fit_targets,
            fit_l2=options.static_fit_l2,
            progress=options.progress,
            threads=options.threads,
        )
        did = "static-embedding student distilled from the encoder (per-token teacher vectors, catalog SIF weights)"
        if fit_texts:
            n_products = min(len(texts), options.static_fit_products)
            did += (
                f", then ridge-fitted to the encoder's embeddings of {n_products} catalog texts and "
                f"{len(fit_texts) - n_products} generated queries"
            )
    build_s = time.perf_counter() - t0
    encoder = OnnxEncoder(dst, threads=options.threads)
    report: dict[str, Any] = {"step": step, "did": did, "model_id": encoder.model_id, "build_s": round(build_s, 1)}
    if step in TRAINED:
        report["structure"] = _structure(work / TRAINED[step])
    report["size_mb"] = folder_size_mb(dst)
    report.update(measure_encoder(lambda t, b: encoder.encode(t, b), queries))
    sample = queries[:256]
    report["query_cosine_to_teacher"] = cosine_agreement(encoder.encode(sample), bundle.encoder.encode(sample))
    query_only = evaluate_validation(_service_with(bundle, encoder, bundle.embeddings, bundle.vectors), groups)
    cand = Candidate(step, dst, False, report)
    best = query_only
    if step.startswith("static") or step in TRAINED:
        t = time.perf_counter()
        emb = encoder.encode(texts, batch_size=256 if step.startswith("static") else 32, progress=options.progress)
        vectors = VectorIndex.build(emb, exact_max=_exact_max(bundle))
        report["reencode_products_s"] = round(time.perf_counter() - t, 1)
        report["reencode_products_per_s"] = round(len(texts) / max(time.perf_counter() - t, 1e-9), 1)
        both = evaluate_validation(_service_with(bundle, encoder, emb, vectors), groups)
        report["ndcg@10_query_only"] = query_only["ndcg@10"]
        report["ndcg@10_products_reencoded"] = both["ndcg@10"]
        if both["ndcg@10"] >= query_only["ndcg@10"]:
            best = both
            cand.products_reencoded, cand.embeddings, cand.vectors = True, emb, vectors
    report["products"] = "re-encoded with this encoder" if cand.products_reencoded else "teacher vectors kept"
    report["ndcg@10"] = float(best["ndcg@10"])
    report["ndcg_ratio"] = round(float(best["ndcg@10"]) / teacher_ndcg, 4) if teacher_ndcg > 0 else 0.0
    report["search_p50_ms"] = best["p50_ms"]
    log.info(
        "step %s: NDCG@10 %.4f (%.4f of teacher), batch-1 %.2f ms, batch-32 %.0f/s, %.1f MB",
        step,
        report["ndcg@10"],
        report["ndcg_ratio"],
        report["batch1_p50_ms"],
        report["batch32_per_s"],
        report["size_mb"],
    )
    return cand


def _static_fit_data(
    bundle: Bundle, texts: list[str], options: OptimizeOptions
) -> tuple[list[str], npt.NDArray[np.float32] | None]:
    """Texts and the artifacts' encoder's embeddings of them to fit the static table to: the
    catalog texts (their vectors are already in the artifacts; a seeded sample when the
    catalog is larger than ``static_fit_products``) and generated queries (encoded now)."""
    from shoprec.core.querygen import generate_queries

    if options.static_fit_queries == 0:
        return [], None
    rng = np.random.default_rng(options.seed)
    take = min(len(texts), options.static_fit_products)
    idx = np.sort(rng.choice(len(texts), size=take, replace=False)) if take < len(texts) else np.arange(len(texts))
    product_texts = [texts[i] for i in idx]
    product_targets = np.asarray(bundle.embeddings[idx], dtype=np.float32)
    queries = generate_queries(texts, seed=options.seed)[: options.static_fit_queries]
    log.info("encoding %d generated queries to fit the static student to", len(queries))
    query_targets = bundle.encoder.encode(queries, batch_size=64, progress=options.progress)
    return product_texts + queries, np.concatenate([product_targets, np.asarray(query_targets, dtype=np.float32)])


def _teacher_weights(bundle: Bundle, options: OptimizeOptions) -> Path:
    """The PyTorch weights (a Hugging Face folder) of the encoder the artifacts hold: the
    student and pruning start from them."""
    from shoprec.training.export import TEACHER_ID, teacher_model_dir

    if options.teacher_weights is not None:
        return Path(options.teacher_weights)
    if bundle.encoder.model_id == TEACHER_ID:
        return teacher_model_dir()
    raise ConfigError(
        f"the student and prune steps start from the PyTorch weights of the encoder {bundle.encoder.model_id!r}; "
        "only those of the default teacher are known here (pass teacher_weights)"
    )


def _structure(folder: Path) -> dict[str, Any]:
    """What training recorded in a student's or pruned model's ``encoder.json``."""
    config = OnnxEncoder(folder).config
    found = config.get("student", config.get("pruned", {}))
    return dict(found) if isinstance(found, dict) else {}


def _trained_step(step: str, bundle: Bundle, work: Path, texts: list[str], options: OptimizeOptions) -> str:
    """Train (once per run) the fp32 student or pruned model into ``work/<kind>``; the ``-int8``
    step quantizes that folder into ``work/<step>``. Returns what the step did."""
    from shoprec.core.querygen import training_texts
    from shoprec.optimize.quantize import quantize_encoder
    from shoprec.training.distill import DistillOptions, distill_student, prune_encoder

    kind = TRAINED[step]
    fp32 = work / kind
    if not fp32.exists():
        src = bundle.folder / "encoder"
        train = training_texts(texts, seed=options.seed, max_texts=options.train_texts)
        dopts = DistillOptions(
            budget_s=options.train_budget_s,
            max_steps=options.train_max_steps,
            seed=options.seed,
            threads=options.threads,
            progress=options.progress,
        )
        weights = _teacher_weights(bundle, options)

        def teacher(batch: Sequence[str]) -> np.ndarray:
            return bundle.encoder.encode(batch, batch_size=64)

        if kind == "student":
            distill_student(
                src,
                weights,
                fp32,
                train,
                teacher,
                layers=options.student_layers,
                ffn_keep=options.student_ffn_keep,
                options=dopts,
            )
        else:
            prune_encoder(
                src,
                weights,
                fp32,
                train,
                teacher,
                heads_keep=options.prune_heads_keep,
                ffn_keep=options.prune_ffn_keep,
                options=dopts,
            )
    info = _structure(fp32)
    if kind == "student":
        training = info.get("training", {})
        did = (
            f"small transformer student: teacher layers {info.get('teacher_layers_kept')} kept "
            f"(FFN x{info.get('ffn_keep')}), {info.get('parameters')} parameters, distilled "
            f"{training.get('steps')} steps / {training.get('seconds')} s on catalog texts and generated queries "
            f"(held-out cosine {training.get('cosine_before')} -> {training.get('cosine_after')})"
        )
    else:
        training = info.get("recovery", {})
        did = (
            f"structured pruning: heads x{info.get('heads_keep')}, FFN x{info.get('ffn_keep')} "
            f"({info.get('parameters_before')} -> {info.get('parameters_after')} parameters), recovery fine-tune "
            f"{training.get('steps')} steps / {training.get('seconds')} s "
            f"(held-out cosine {training.get('cosine_before')} -> {training.get('cosine_after')})"
        )
    if step.endswith("-int8"):
        quantize_encoder(fp32, work / step)
        did += "; then int8 dynamic quantization (per-channel)"
    return did


def _compiled_ranker(
    bundle: Bundle, src: Path, work: Path, groups: Sequence[Group], options: OptimizeOptions
) -> tuple[Bundle, tuple[Path, dict[str, Any]] | None]:
    """Artifacts with a trained ranker but no compiled one (built before rankers were
    compiled, or without a compiler): compile it now, so the output serves it and its ladder
    is measured with it. The bundle to measure with, and (library, report) to write."""
    if bundle.ranker is None or bundle.ranker.kind == "compiled" or not (src / MODEL_FILE).is_file():
        return bundle, None
    folder = work / "ranker"
    folder.mkdir()
    shutil.copy2(src / MODEL_FILE, folder / MODEL_FILE)
    report = compile_ranker(folder, SearchService(bundle), groups, threads=options.threads)
    if report["kept"] != "compiled":
        return bundle, None
    ranker = Ranker.load(folder / MODEL_FILE, compiled=folder / COMPILED_FILE)
    return dataclasses.replace(bundle, ranker=ranker), (folder / COMPILED_FILE, report)


def _measure_ladder(
    bundle: Bundle, kept: Candidate, groups: Sequence[Group], options: OptimizeOptions
) -> dict[str, Any]:
    """The degradation ladder re-measured with the kept encoder: every level's cost changes
    with the encoder, so the input's measurements would mislead the server."""
    from shoprec.pipeline.ladder import ladder_service, measure_ladder

    encoder = OnnxEncoder(kept.folder, threads=options.threads)
    embeddings, vectors = bundle.embeddings, bundle.vectors
    if kept.products_reencoded and kept.embeddings is not None and kept.vectors is not None:
        embeddings, vectors = kept.embeddings, kept.vectors
    service = ladder_service(_variant(bundle, encoder, embeddings, vectors))
    return measure_ladder(service, groups, progress=options.progress)


def _exact_max(bundle: Bundle) -> int:
    from shoprec.retrieval.vector import DEFAULT_EXACT_MAX

    value = bundle.manifest.get("config", {}).get("exact_max", DEFAULT_EXACT_MAX)
    return int(value)


def _write(
    bundle: Bundle,
    src: Path,
    out: Path,
    kept: Candidate,
    section: dict[str, Any],
    candidates: Sequence[Candidate],
    ladder: dict[str, Any] | None,
    compiled: tuple[Path, dict[str, Any]] | None = None,
) -> None:
    """Write the output artifacts; ``candidates`` (``keep_candidates``) are copied under
    ``candidates/<step>/`` so ``shoprec bench encoder`` can measure them side by side."""
    manifest = bundle.manifest
    with artifacts.write_artifacts(out) as tmp:
        for c in candidates:
            shutil.copytree(c.folder, tmp / CANDIDATES / c.step)
        for item in src.iterdir():
            if item.name in REPLACED or item.name.startswith("."):
                continue
            if item.is_dir():
                shutil.copytree(item, tmp / item.name)
            else:
                shutil.copy2(item, tmp / item.name)
        shutil.copytree(kept.folder, tmp / "encoder")
        if kept.products_reencoded and kept.embeddings is not None and kept.vectors is not None:
            np.save(tmp / "embeddings.npy", kept.embeddings, allow_pickle=False)
            kept.vectors.save(tmp / "vectors.faiss")
        else:
            shutil.copy2(src / "embeddings.npy", tmp / "embeddings.npy")
            shutil.copy2(src / "vectors.faiss", tmp / "vectors.faiss")
        metrics = dict(manifest.get("metrics", {}))
        if compiled is not None:
            library, report = compiled
            shutil.copy2(library, tmp / COMPILED_FILE)
            metrics["ranker"] = {**metrics.get("ranker", {}), "compiled": report}
        encoder_config = OnnxEncoder(tmp / "encoder").config
        config = dict(manifest.get("config", {}))
        config["encoder"] = encoder_config
        extra = {
            k: v
            for k, v in manifest.items()
            if k not in {"format_version", "shoprec_version", "created_at", "model_id", "config", "metrics", "files"}
        }
        extra["optimization"] = section
        extra.pop("ladder", None)
        if ladder is not None:
            extra["ladder"] = ladder
        artifacts.write_manifest(
            tmp,
            model_id=str(encoder_config.get("model_id", kept.step)),
            config=config,
            metrics=metrics,
            extra=extra,
        )
