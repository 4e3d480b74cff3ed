"""Training toward the teacher: a small transformer student distilled from it, and a pruned
teacher recovered with the same distillation loop (:func:`prune_encoder`; the cutting itself
is :mod:`shoprec.training.prune`, which this module imports and never the reverse).

The student keeps a few of the teacher's layers (spread evenly, first and last included),
initialised from them, optionally with a narrower FFN (the teacher's most important neurons
kept, see :mod:`shoprec.training.prune`). It is trained to reproduce the teacher's pooled,
L2-normalised embeddings — loss ``1 - cos(student, teacher)`` — on catalog texts and queries
generated from them (title prefixes and word n-grams, lower-cased the way people type), so
it lives in the teacher's space: its query vectors can be compared with the teacher's
product vectors, or it can re-encode the products. Training stops at a wall-clock budget
(or a step limit), is seeded, and shows a tqdm bar.

The result is exported exactly like the teacher (:class:`MeanPooledEncoder` →
:func:`export_onnx`; ``model.onnx`` + ``tokenizer.json`` + ``encoder.json``), so
:class:`shoprec.models.encoder.OnnxEncoder` serves it unchanged.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from shoprec.atomicio import build_folder
from shoprec.errors import ConfigError
from shoprec.training.export import MeanPooledEncoder, export_onnx, load_backbone
from shoprec.training.prune import (
    Importance,
    activation_importance,
    count_parameters,
    drop_pooler,
    prune_backbone,
    select_layers,
    shapes,
    spread_layers,
    tokenize,
    weight_importance,
)

log = logging.getLogger(__name__)

DEFAULT_BUDGET_S = 240.0

TeacherEncode = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True, slots=True)
class DistillOptions:
    """How long and how the student (or a pruned model) is trained."""

    budget_s: float = DEFAULT_BUDGET_S
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 1e-4
    warmup_steps: int = 50
    max_length: int = 64
    eval_texts: int = 256
    seed: int = 0
    threads: int | None = None
    progress: bool = False
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if self.budget_s <= 0:
            raise ConfigError(f"training budget must be positive, got {self.budget_s} s")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("max_steps must be at least 1")
        if self.batch_size < 1 or self.max_length < 4 or self.lr <= 0 or self.warmup_steps < 0:
            raise ConfigError("batch_size >= 1, max_length >= 4, lr > 0 and warmup_steps >= 0 are required")


def load_tokenizer(encoder_dir: Path) -> Tokenizer:
    """The encoder folder's tokenizer, without the padding/truncation its file may carry
    (:func:`shoprec.training.prune.tokenize` pads and truncates per batch)."""
    tok = Tokenizer.from_file(str(Path(encoder_dir) / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def _encode_torch(model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], max_length: int) -> torch.Tensor:
    ids, mask = tokenize(tokenizer, texts, max_length)
    out: torch.Tensor = model(ids, mask, torch.zeros_like(ids))
    return out


def cosine_to_teacher(
    model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], targets: np.ndarray, *, max_length: int = 64
) -> float:
    """Mean cosine between the model's embeddings of ``texts`` and the teacher's ``targets``."""
    model.eval()
    sims = []
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            got = _encode_torch(model, tokenizer, texts[start : start + 64], max_length)
            want = torch.from_numpy(np.ascontiguousarray(targets[start : start + 64], dtype=np.float32))
            sims.append(torch.nn.functional.cosine_similarity(got, want, dim=1))
    return float(torch.cat(sims).mean())


def distill_to_teacher(
    model: nn.Module,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    teacher_encode: TeacherEncode,
    options: DistillOptions = DistillOptions(),
) -> dict[str, Any]:
    """Train ``model`` (a :class:`MeanPooledEncoder`) in place so its embeddings match
    ``teacher_encode`` on ``texts`` (cosine loss), until the time budget or step limit.
    A seeded slice of ``texts`` is held out to report the cosine before and after."""
    if len(texts) < 2:
        raise ConfigError("distillation needs at least two texts")
    torch.manual_seed(options.seed)
    if options.threads:
        torch.set_num_threads(options.threads)
    rng = np.random.default_rng(options.seed)
    order = rng.permutation(len(texts))
    n_eval = min(options.eval_texts, max(1, len(texts) // 10))
    eval_texts = [texts[i] for i in order[:n_eval]]
    train = [texts[i] for i in order[n_eval:]]
    eval_targets = np.asarray(teacher_encode(eval_texts), dtype=np.float32)
    cos_before = cosine_to_teacher(model, tokenizer, eval_texts, eval_targets, max_length=options.max_length)
    targets = np.zeros((len(train), eval_targets.shape[1]), dtype=np.float32)
    known = np.zeros(len(train), dtype=bool)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=0.01)
    warmup = max(1, options.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    # Eval mode while training: no dropout. The student should copy the teacher's function
    # as exactly as it can in a short budget; regularisation noise only slows that down.
    model.eval()
    start = options.clock()
    losses: list[float] = []
    steps = 0
    bar = None
    if options.progress:
        from tqdm import tqdm

        bar = tqdm(total=options.max_steps, desc="distilling", unit="step")
    try:
        done = False
        while not done:
            perm = rng.permutation(len(train))
            for b in range(0, len(perm), options.batch_size):
                idx = perm[b : b + options.batch_size]
                todo = idx[~known[idx]]
                if len(todo):
                    targets[todo] = teacher_encode([train[i] for i in todo])
                    known[todo] = True
                got = _encode_torch(model, tokenizer, [train[i] for i in idx], options.max_length)
                want = torch.from_numpy(targets[idx])
                loss = (1.0 - torch.nn.functional.cosine_similarity(got, want, dim=1)).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                steps += 1
                if bar is not None:
                    bar.update(1)
                    if steps % 20 == 0:
                        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
                elapsed = options.clock() - start
                if (options.max_steps is not None and steps >= options.max_steps) or elapsed >= options.budget_s:
                    done = True
                    break
    finally:
        if bar is not None:
            bar.close()
    seconds = options.clock() - start
    cos_after = cosine_to_teacher(model, tokenizer, eval_texts, eval_targets, max_length=options.max_length)
    head = losses[: min(20, len(losses))]
    tail = losses[-min(20, len(losses)) :]
    report = {
        "loss": "1 - cosine(student, teacher)",
        "steps": steps,
        "epochs": round(steps * options.batch_size / max(1, len(train)), 2),
        "seconds": round(seconds, 1),
        "budget_s": options.budget_s,
        "batch_size": options.batch_size,
        "lr": options.lr,
        "train_texts": len(train),
        "held_out_texts": len(eval_texts),
        "loss_first": round(float(np.mean(head)), 5),
        "loss_last": round(float(np.mean(tail)), 5),
        "cosine_before": round(cos_before, 4),
        "cosine_after": round(cos_after, 4),
        "seed": options.seed,
    }
    log.info(
        "distilled %d steps in %.0f s: loss %.4f -> %.4f, held-out cosine %.4f -> %.4f",
        steps,
        seconds,
        report["loss_first"],
        report["loss_last"],
        cos_before,
        cos_after,
    )
    return report


def make_student(teacher: Any, *, layers: int | Sequence[int] = 3, ffn_keep: float = 1.0) -> tuple[Any, dict[str, Any]]:
    """A copy of the teacher backbone with only some layers (an int: that many, spread evenly)
    and optionally a narrower FFN (the neurons with the largest weights kept); no pooler."""
    backbone = copy.deepcopy(teacher)
    drop_pooler(backbone)
    total = len(backbone.encoder.layer)
    keep = spread_layers(total, layers) if isinstance(layers, int) else list(layers)
    before = count_parameters(backbone)
    select_layers(backbone, keep)
    if ffn_keep < 1.0:
        heads, ffn = weight_importance(backbone)
        prune_backbone(backbone, heads, ffn, heads_keep=1.0, ffn_keep=ffn_keep)
    return backbone, {
        "teacher_layers_kept": keep,
        "ffn_keep": ffn_keep,
        "parameters_teacher": before,
        "parameters": count_parameters(backbone),
        "shapes": shapes(backbone),
    }


def save_encoder(model: nn.Module, teacher_dir: Path, out_dir: Path, *, kind: str, report: dict[str, Any]) -> Path:
    """Export ``model`` to ``out_dir`` (atomically) as the teacher folder is laid out: ONNX
    graph with pooling + L2 inside, the teacher's tokenizer, an ``encoder.json`` with the report."""
    teacher_dir, out_dir = Path(teacher_dir), Path(out_dir)
    teacher_cfg = json.loads((teacher_dir / "encoder.json").read_text())
    with build_folder(out_dir, required="model.onnx") as tmp:
        export_onnx(model, tmp / "model.onnx")
        shutil.copyfile(teacher_dir / "tokenizer.json", tmp / "tokenizer.json")
        base = str(teacher_cfg.get("model_id", "teacher")).rsplit("/", 1)[-1]
        config = {
            "model_id": f"{kind}-of-{base}",
            "kind": "transformer",
            "dim": int(teacher_cfg.get("dim", 0)) or None,
            "max_seq_length": int(teacher_cfg.get("max_seq_length", 128)),
            "pooling": "mean+l2 (in graph)",
            "teacher": teacher_cfg.get("model_id"),
            kind: report,
        }
        (tmp / "encoder.json").write_text(json.dumps(config, indent=2))
    return out_dir


def distill_student(
    teacher_dir: Path,
    teacher_weights: Path,
    out_dir: Path,
    texts: Sequence[str],
    teacher_encode: TeacherEncode,
    *,
    layers: int | Sequence[int] = 3,
    ffn_keep: float = 1.0,
    options: DistillOptions = DistillOptions(),
) -> dict[str, Any]:
    """Build a student from the teacher's weights (Hugging Face folder ``teacher_weights``),
    train it against ``teacher_encode`` on ``texts`` and export it to ``out_dir`` next to the
    tokenizer of the ONNX teacher folder ``teacher_dir``. Returns the report (also in encoder.json)."""
    torch.manual_seed(options.seed)
    if options.threads:
        torch.set_num_threads(options.threads)
    tokenizer = load_tokenizer(Path(teacher_dir))
    backbone, structure = make_student(load_backbone(Path(teacher_weights)), layers=layers, ffn_keep=ffn_keep)
    model = MeanPooledEncoder(backbone)
    training = distill_to_teacher(model, tokenizer, texts, teacher_encode, options)
    report = {
        "method": "teacher layers kept, trained to reproduce the teacher's normalised embeddings",
        **structure,
        "training": training,
    }
    save_encoder(model, Path(teacher_dir), Path(out_dir), kind="student", report=report)
    return report


def prune_encoder(
    teacher_dir: Path,
    teacher_weights: Path,
    out_dir: Path,
    texts: Sequence[str],
    teacher_encode: TeacherEncode,
    *,
    heads_keep: float = 0.5,
    ffn_keep: float = 0.5,
    layers: Sequence[int] | None = None,
    importance: Importance = "activation",
    importance_texts: int = 512,
    options: DistillOptions | None = None,
) -> dict[str, Any]:
    """Prune the teacher (weights in ``teacher_weights``, a Hugging Face folder; tokenizer and
    config from the ONNX encoder folder ``teacher_dir``), recover with the distillation loss on
    ``texts`` against ``teacher_encode``, and export to ``out_dir`` (atomically) the same way
    as the teacher. Returns the report that also goes into ``encoder.json``."""
    opts = options if options is not None else DistillOptions()
    torch.manual_seed(opts.seed)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    tokenizer = load_tokenizer(Path(teacher_dir))
    backbone = copy.deepcopy(load_backbone(Path(teacher_weights)))
    drop_pooler(backbone)
    model = MeanPooledEncoder(backbone)
    if importance == "activation":
        rng = np.random.default_rng(opts.seed)
        idx = rng.choice(len(texts), size=min(importance_texts, len(texts)), replace=False)
        head_scores, ffn_scores = activation_importance(
            model, tokenizer, [texts[i] for i in sorted(idx)], max_length=opts.max_length
        )
    elif importance == "weight":
        head_scores, ffn_scores = weight_importance(model.backbone)
    else:
        raise ConfigError(f"importance must be 'weight' or 'activation', got {importance!r}")
    structure = prune_backbone(
        model.backbone, head_scores, ffn_scores, heads_keep=heads_keep, ffn_keep=ffn_keep, layers=layers
    )
    log.info(
        "pruned %d -> %d parameters; shapes %s",
        structure["parameters_before"],
        structure["parameters_after"],
        structure["shapes"],
    )
    training = distill_to_teacher(model, tokenizer, texts, teacher_encode, opts)
    report = {
        "method": f"structured pruning ({importance} importance) + recovery fine-tune (cosine distillation loss)",
        "heads_keep": heads_keep,
        "ffn_keep": ffn_keep,
        **structure,
        "recovery": training,
    }
    save_encoder(model, Path(teacher_dir), Path(out_dir), kind="pruned", report=report)
    return report
