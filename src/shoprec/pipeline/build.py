"""``shoprec build``: catalog (+ events, + judgments) -> a verified artifacts folder."""

from __future__ import annotations

import fcntl
import logging
import os
import resource
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shoprec import artifacts
from shoprec.catalog.loaders import write_events_jsonl, write_products_jsonl
from shoprec.errors import DataError
from shoprec.models.bundle import (
    Bundle,
    CatalogArrays,
    product_dense_text,
    product_text,
)
from shoprec.models.encoder import OnnxEncoder
from shoprec.pipeline.ltr import Group, groups_from_events, groups_from_judgments, train_ranker
from shoprec.pipeline.ranker_compile import compile_ranker
from shoprec.pipeline.validation import VALIDATION_FILE, split_groups, write_validation
from shoprec.retrieval.lexical import LexicalIndex
from shoprec.retrieval.vector import DEFAULT_EXACT_MAX, VectorIndex
from shoprec.serving.search import SearchService
from shoprec.types import Event, Judgment, Product

log = logging.getLogger(__name__)

EVENT_WEIGHT = {"view": 0.1, "click": 1.0, "cart": 2.0, "purchase": 4.0}


@dataclass(frozen=True, slots=True)
class BuildOptions:
    encode_batch_size: int = 64
    exact_max: int = DEFAULT_EXACT_MAX
    # candidates per query the ranker learns from (more than the server ranks: more negatives)
    lexical_candidates: int = 100
    dense_candidates: int = 100
    seed: int = 0
    threads: int | None = None
    int8: bool = False
    personalize: bool = True
    recommender: bool = True
    recommender_max_train_s: float = 300.0
    max_train_queries: int = 4000
    validation_fraction: float = 0.2
    ladder: bool = True  # measure the degradation ladder on the validation set
    compile_ranker: bool = True  # compile the ranker's trees (kept when faster, same scores)


def default_cache_dir() -> Path:
    base = os.environ.get("SHOPREC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "shoprec"
    )
    return Path(base)


def ensure_teacher_encoder(cache_dir: Path | None = None) -> Path:
    """The ONNX export of all-MiniLM-L6-v2, exported once (needs the ``[train]`` extra)."""
    folder = (cache_dir or default_cache_dir()) / "encoders" / "all-MiniLM-L6-v2"

    def ready() -> bool:
        return (folder / "model.onnx").is_file() and (folder / "encoder.json").is_file()

    if ready():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / ".export.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent builds (or test workers) export once
        if ready():
            return folder
        from shoprec.training.export import export_teacher  # torch: build time only

        log.info("exporting the teacher encoder to ONNX once, into %s", folder)
        return export_teacher(folder)


def ensure_int8_teacher(cache_dir: Path | None = None) -> Path:
    """The teacher with int8 dynamic quantisation (per-channel), made once from the fp32 export."""
    fp32 = ensure_teacher_encoder(cache_dir)
    folder = fp32.with_name(fp32.name + "-int8")
    if (folder / "model.onnx").is_file() and (folder / "encoder.json").is_file():
        return folder
    with (folder.parent / ".export.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "model.onnx").is_file():
            from shoprec.optimize.quantize import quantize_encoder

            log.info("quantising the teacher encoder to int8 once, into %s", folder)
            quantize_encoder(fp32, folder)
    return folder


def popularity_from_events(events: Sequence[Event], index_of: dict[str, int], n: int) -> npt.NDArray[np.float32]:
    pop = np.zeros(n, dtype=np.float32)
    for e in events:
        i = index_of.get(e.item_id)
        if i is not None:
            pop[i] += EVENT_WEIGHT[e.type]
    return pop


def build(
    products: Sequence[Product],
    out: Path,
    *,
    events: Sequence[Event] = (),
    judgments: Sequence[Judgment] = (),
    encoder_dir: Path | None = None,
    options: BuildOptions = BuildOptions(),
    progress: bool = True,
    inputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build search artifacts into ``out`` (atomically) and return the manifest."""
    if not products:
        raise DataError("no products to build from")
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    if encoder_dir:
        enc_src = Path(encoder_dir)
    else:
        enc_src = ensure_int8_teacher() if options.int8 else ensure_teacher_encoder()
    with artifacts.write_artifacts(Path(out)) as tmp:
        t = time.perf_counter()
        shutil.copytree(enc_src, tmp / "encoder")
        write_products_jsonl(products, tmp / "catalog.jsonl")
        timings["catalog_s"] = time.perf_counter() - t

        t = time.perf_counter()
        lexical = LexicalIndex.build([product_text(p) for p in products], progress=progress)
        lexical.save(tmp / "lexical")
        lexical_title = LexicalIndex.build([p.title for p in products], progress=progress)
        lexical_title.save(tmp / "lexical_title")
        timings["lexical_s"] = time.perf_counter() - t

        t = time.perf_counter()
        encoder = OnnxEncoder(tmp / "encoder", threads=options.threads)
        embeddings = encoder.encode(
            [product_dense_text(p) for p in products],
            batch_size=options.encode_batch_size,
            progress=progress,
        )
        np.save(tmp / "embeddings.npy", embeddings, allow_pickle=False)
        timings["encode_s"] = time.perf_counter() - t
        t = time.perf_counter()
        vectors = VectorIndex.build(embeddings, exact_max=options.exact_max)
        vectors.save(tmp / "vectors.faiss")
        timings["vector_index_s"] = time.perf_counter() - t

        index_of = {p.id: i for i, p in enumerate(products)}
        popularity = popularity_from_events(events, index_of, len(products))
        if events:
            np.save(tmp / "popularity.npy", popularity, allow_pickle=False)

        catalog = CatalogArrays.from_products(products, popularity)
        bundle = Bundle(
            folder=tmp,
            manifest={"files": {}, "model_id": encoder.model_id},
            catalog=catalog,
            lexical=lexical,
            lexical_title=lexical_title,
            vectors=vectors,
            embeddings=embeddings,
            encoder=encoder,
            ranker=None,
        )
        ranker_metrics: dict[str, Any] = {"trained_from": "none (untrained fusion)"}
        groups: list[Group] = []
        source = "none"
        if judgments:
            groups, source = groups_from_judgments(judgments), "judgments"
        elif events:
            groups, source = groups_from_events(events), "events"
        if events:
            write_events_jsonl(events, tmp / "user_events.jsonl")
        groups, validation = split_groups(groups, options.validation_fraction, seed=options.seed)
        if validation:
            write_validation(validation, tmp / VALIDATION_FILE)
        if groups:
            t = time.perf_counter()
            service = SearchService(
                bundle,
                lexical_candidates=options.lexical_candidates,
                dense_candidates=options.dense_candidates,
            )
            try:
                ranker, ranker_metrics = train_ranker(
                    service,
                    groups,
                    history=events,
                    personalize=options.personalize,
                    seed=options.seed,
                    progress=progress,
                    threads=options.threads or 0,
                    max_queries=options.max_train_queries,
                )
            except ValueError as exc:
                log.warning("ranker not trained: %s", exc)
                ranker_metrics = {"trained_from": f"none ({exc})"}
            else:
                ranker.save(tmp / "ranker.txt")
                ranker_metrics["trained_from"] = source
                if options.compile_ranker:
                    ranker_metrics["compiled"] = compile_ranker(
                        tmp, service, validation or groups, threads=options.threads
                    )
            timings["ranker_s"] = time.perf_counter() - t

        recommender_metrics: dict[str, Any] = {}
        if events and options.recommender:
            from shoprec.pipeline.recommender_build import build_recommenders

            t = time.perf_counter()
            recommender_metrics = build_recommenders(
                products,
                events,
                tmp / "recommender",
                seed=options.seed,
                max_train_s=options.recommender_max_train_s,
                progress=progress,
            )
            timings["recommender_s"] = time.perf_counter() - t
        ladder: dict[str, Any] = {}
        if validation and options.ladder:
            t = time.perf_counter()
            ladder = _measure_ladder(tmp, bundle, events, options, validation, progress)
            timings["ladder_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - t_start
        metrics: dict[str, Any] = {
            "products": len(products),
            "events": len(events),
            "judgments": len(judgments),
            "embedding_dim": int(embeddings.shape[1]),
            "vector_index": vectors.kind,
            "timings_s": {k: round(v, 2) for k, v in timings.items()},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "ranker": ranker_metrics,
            "validation": {"groups": len(validation), "source": source if validation else "none"},
            "recommender": recommender_metrics,
        }
        config = {
            **asdict(options),
            "lexical": {"library": "bm25s", "k1": 1.2, "b": 0.75, "stemmer": "snowball-english"},
            "encoder": encoder.config,
        }
        manifest = artifacts.write_manifest(
            tmp,
            model_id=encoder.model_id,
            config=config,
            metrics=metrics,
            extra={"inputs": inputs or {}, **({"ladder": ladder} if ladder else {})},
        )
    return manifest


def _measure_ladder(
    tmp: Path,
    bundle: Bundle,
    events: Sequence[Event],
    options: BuildOptions,
    validation: Sequence[Group],
    progress: bool,
) -> dict[str, Any]:
    """The ladder measured on the service as it will be served: trained ranker, user history."""
    from dataclasses import replace

    from shoprec.models.compiled import COMPILED_FILE
    from shoprec.models.ranker import Ranker
    from shoprec.pipeline.ladder import ladder_service, measure_ladder

    ranker_path, compiled = tmp / "ranker.txt", tmp / COMPILED_FILE
    served = replace(
        bundle,
        ranker=Ranker.load(ranker_path, compiled=compiled if compiled.exists() else None)
        if ranker_path.exists()
        else None,
        user_events=sorted(events, key=lambda e: e.timestamp),
    )
    return measure_ladder(ladder_service(served), validation, progress=progress)
