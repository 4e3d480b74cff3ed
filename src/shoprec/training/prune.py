"""Structured pruning of a BERT-family encoder: whole attention heads, FFN neurons and layers
are removed, so the weight matrices really shrink (fewer parameters, a smaller file, less
compute). The short recovery fine-tune with the distillation loss that follows, and the
export, are :func:`shoprec.training.distill.prune_encoder`: this module only measures and cuts,
and imports nothing from ``distill`` (which builds its students with these cuts).

Importance is measured either from the weights (``weight``: a head's value and output
projections, a neuron's in and out weights) or from activations on catalog texts
(``activation``: how large each head's and each neuron's contribution to the residual
stream is, averaged over real tokens). Every layer keeps the same number of heads and
neurons, the most important ones, so the pruned model stays one regular shape per layer.

The slicing uses ``transformers.pytorch_utils.prune_linear_layer``; the attention code
infers the head count from the sliced projections, so nothing else changes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn
from transformers.pytorch_utils import prune_linear_layer

from shoprec.errors import ConfigError
from shoprec.training.export import MeanPooledEncoder

log = logging.getLogger(__name__)

Importance = Literal["weight", "activation"]


def count_parameters(module: nn.Module) -> int:
    return sum(int(p.numel()) for p in module.parameters())


def _layers(backbone: Any) -> Any:
    layers = backbone.encoder.layer
    if not isinstance(layers, nn.ModuleList):  # pragma: no cover - not a BERT-family model
        raise ConfigError("pruning needs a BERT-family encoder (encoder.layer)")
    return layers


def head_size(layer: Any) -> int:
    return int(layer.attention.self.attention_head_size)


def num_heads(layer: Any) -> int:
    return int(layer.attention.self.query.out_features) // head_size(layer)


def ffn_width(layer: Any) -> int:
    return int(layer.intermediate.dense.out_features)


def shapes(backbone: Any) -> list[dict[str, int]]:
    """Per layer: heads, head size and FFN width, as the matrices now are."""
    return [{"heads": num_heads(x), "head_size": head_size(x), "ffn": ffn_width(x)} for x in _layers(backbone)]


def drop_pooler(backbone: Any) -> None:
    """Remove the ``[CLS]`` pooler: mean pooling never reads it, so it is dead weight."""
    if getattr(backbone, "pooler", None) is not None:
        backbone.pooler = None


def select_layers(backbone: Any, keep: Sequence[int]) -> None:
    """Keep only the layers ``keep`` (in that order), dropping the rest, in place."""
    layers = _layers(backbone)
    if not keep or any(not 0 <= i < len(layers) for i in keep) or len(set(keep)) != len(keep):
        raise ConfigError(f"layers to keep must be distinct indices in [0, {len(layers)}), got {list(keep)}")
    backbone.encoder.layer = nn.ModuleList([layers[i] for i in keep])
    backbone.config.num_hidden_layers = len(keep)


def spread_layers(total: int, keep: int) -> list[int]:
    """``keep`` layer indices spread evenly over ``total``, always the first and the last."""
    if not 1 <= keep <= total:
        raise ConfigError(f"cannot keep {keep} of {total} layers")
    if keep == 1:
        return [total - 1]
    return sorted({int(round(i * (total - 1) / (keep - 1))) for i in range(keep)})


def prune_ffn(layer: Any, keep: torch.Tensor) -> None:
    """Keep only the FFN neurons ``keep`` of one layer (rows of the first, columns of the second matrix)."""
    index = cast(torch.LongTensor, torch.as_tensor(keep, dtype=torch.long).sort().values)
    layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, index, dim=0)
    layer.output.dense = prune_linear_layer(layer.output.dense, index, dim=1)


def prune_heads(layer: Any, keep: Sequence[int]) -> None:
    """Keep only the attention heads ``keep`` of one layer (query/key/value rows, output columns)."""
    att = layer.attention.self
    size, total = head_size(layer), num_heads(layer)
    heads = sorted(set(int(h) for h in keep))
    if not heads or heads[0] < 0 or heads[-1] >= total:
        raise ConfigError(f"heads to keep must be a non-empty subset of [0, {total}), got {list(keep)}")
    index = cast(torch.LongTensor, torch.cat([torch.arange(h * size, (h + 1) * size) for h in heads]).long())
    att.query = prune_linear_layer(att.query, index, dim=0)
    att.key = prune_linear_layer(att.key, index, dim=0)
    att.value = prune_linear_layer(att.value, index, dim=0)
    layer.attention.output.dense = prune_linear_layer(layer.attention.output.dense, index, dim=1)
    att.num_attention_heads = len(heads)
    att.all_head_size = len(heads) * size


def weight_importance(backbone: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(per-layer head scores, per-layer FFN neuron scores) from weight norms alone."""
    heads, ffn = [], []
    with torch.no_grad():
        for layer in _layers(backbone):
            size, n = head_size(layer), num_heads(layer)
            v = layer.attention.self.value.weight.reshape(n, size, -1)
            o = layer.attention.output.dense.weight.reshape(-1, n, size)
            heads.append(v.flatten(1).norm(dim=1) * o.transpose(0, 1).flatten(1).norm(dim=1))
            w_in = layer.intermediate.dense.weight
            w_out = layer.output.dense.weight
            ffn.append(w_in.norm(dim=1) * w_out.norm(dim=0))
    return heads, ffn


def activation_importance(
    model: MeanPooledEncoder,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int = 64,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(per-layer head scores, per-layer FFN neuron scores): the mean norm of what each head and
    each neuron adds to the residual stream, over the real (unpadded) tokens of ``texts``."""
    layers = _layers(model.backbone)
    head_sum = [torch.zeros(num_heads(x)) for x in layers]
    ffn_sum = [torch.zeros(ffn_width(x)) for x in layers]
    state: dict[str, torch.Tensor] = {}

    def head_hook(i: int) -> Callable[[Any, tuple[torch.Tensor, ...]], None]:
        def hook(module: Any, args: tuple[torch.Tensor, ...]) -> None:
            ctx = args[0]  # [B, S, heads * size], the input of the output projection
            n, size = num_heads(layers[i]), head_size(layers[i])
            w = module.weight.reshape(module.weight.shape[0], n, size)  # [hidden, heads, size]
            per_head = torch.einsum("bshd,ohd->bsho", ctx.reshape(*ctx.shape[:2], n, size), w).norm(dim=-1)
            head_sum[i] += (per_head * state["mask"][..., None]).sum(dim=(0, 1))

        return hook

    def ffn_hook(i: int) -> Callable[[Any, tuple[torch.Tensor, ...]], None]:
        def hook(module: Any, args: tuple[torch.Tensor, ...]) -> None:
            act = args[0].abs() * module.weight.norm(dim=0)  # [B, S, ffn]
            ffn_sum[i] += (act * state["mask"][..., None]).sum(dim=(0, 1))

        return hook

    handles = []
    for i, layer in enumerate(layers):
        handles.append(layer.attention.output.dense.register_forward_pre_hook(head_hook(i)))
        handles.append(layer.output.dense.register_forward_pre_hook(ffn_hook(i)))
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                ids, mask = tokenize(tokenizer, texts[start : start + batch_size], max_length)
                state["mask"] = mask.to(torch.float32)
                model(ids, mask, torch.zeros_like(ids))
    finally:
        for h in handles:
            h.remove()
    return head_sum, ffn_sum


def tokenize(tokenizer: Tokenizer, texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) as int64 tensors, truncated to ``max_length``, padded to the longest."""
    encs = tokenizer.encode_batch(list(texts))
    width = min(max_length, max(sum(e.attention_mask) for e in encs))
    ids = np.zeros((len(encs), width), dtype=np.int64)
    mask = np.zeros((len(encs), width), dtype=np.int64)
    for row, e in enumerate(encs):
        real = e.ids[: sum(e.attention_mask)]
        seq = real[:width]
        if len(real) > width:  # keep the closing special token, as the tokenizer's own truncation does
            seq = [*real[: width - 1], real[-1]]
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def prune_backbone(
    backbone: Any,
    head_scores: Sequence[torch.Tensor],
    ffn_scores: Sequence[torch.Tensor],
    *,
    heads_keep: float = 0.5,
    ffn_keep: float = 0.5,
    layers: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Remove the least important heads and FFN neurons of every layer (keeping the fractions
    given, at least one head and one neuron), then keep only ``layers`` if given. In place."""
    for name, frac in (("heads_keep", heads_keep), ("ffn_keep", ffn_keep)):
        if not 0.0 < frac <= 1.0:
            raise ConfigError(f"{name} must be in (0, 1], got {frac}")
    all_layers = _layers(backbone)
    if len(head_scores) != len(all_layers) or len(ffn_scores) != len(all_layers):
        raise ConfigError("one head score vector and one FFN score vector per layer are needed")
    before = count_parameters(backbone)
    removed_heads: dict[int, list[int]] = {}
    for i, layer in enumerate(all_layers):
        n, width = num_heads(layer), ffn_width(layer)
        k_heads = max(1, math.ceil(n * heads_keep - 1e-9))
        k_ffn = max(1, math.ceil(width * ffn_keep - 1e-9))
        if k_heads < n:
            keep = torch.topk(head_scores[i], k_heads).indices.tolist()
            removed_heads[i] = sorted(set(range(n)) - set(keep))
            prune_heads(layer, keep)
        if k_ffn < width:
            prune_ffn(layer, torch.topk(ffn_scores[i], k_ffn).indices)
    if layers is not None:
        select_layers(backbone, layers)
    kept = _layers(backbone)
    if len({ffn_width(x) for x in kept}) == 1:
        backbone.config.intermediate_size = ffn_width(kept[0])
    after = count_parameters(backbone)
    return {
        "parameters_before": before,
        "parameters_after": after,
        "removed_heads": {str(k): v for k, v in removed_heads.items()},
        "layers_kept": list(layers) if layers is not None else list(range(len(all_layers))),
        "shapes": shapes(backbone),
    }
