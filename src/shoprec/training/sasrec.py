"""SASRec trained with softmax cross-entropy over all items ("SASRec-CE"), and its export.

The model is the self-attentive sequential recommender (Kang & McAuley, 2018) with one
change that matters more than any other: the loss is cross-entropy over the *whole*
catalog at every position of the sequence, not binary cross-entropy against one sampled
negative. Input and output item embeddings are shared; optional item attributes
(brand/category ids) are averaged and added to the item embedding, which gives rarely
seen items a useful vector.

On a CPU the full softmax is most of the cost (about 45 s an epoch on Amazon Beauty with
2 cores, against 8 s with 1,024 sampled negatives). So training starts with the sampled
softmax (corrected to estimate the full one), and when validation levels off it goes on
from the best weights with the full softmax, which adds the last few points. A wall-clock
budget (``max_train_s``) bounds the whole run; the best weights so far are kept.

Sequences are left-padded with 0; position embeddings count from the end, so the most
recent item always sits at position ``max_len - 1`` whatever the padding. Training batches
are grouped by length and padded only to the longest sequence of the batch, which cuts
the attention cost several times on short-sequence data such as Amazon reviews.

Early stopping watches validation NDCG@10 (the protocol of :mod:`shoprec.core.sequences`)
and restores the best weights. The same defaults are meant for every Amazon 5-core file:
nothing here is tuned to one dataset.

Export writes a folder read by :class:`shoprec.models.recommender.SequentialRecommender`:
``model.onnx`` (``item_ids`` int64 ``[batch, max_len]`` -> ``user_vectors`` float32
``[batch, hidden]``), ``item_embeddings.npy`` (float32 ``[n_items + 1, hidden]``, row 0 is
padding), ``items.json`` (config and the item id of each row) and ``manifest.json``.
Serving scores are ``user_vectors @ item_embeddings.T``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Read once, when torch loads OpenMP, so it must come before the first torch import. On a
# shared CPU, OpenMP threads spinning at a barrier while their partner is descheduled made
# an epoch ten times slower (155 s vs 13 s measured); sleeping threads cost little here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from shoprec.artifacts import write_artifacts, write_manifest
from shoprec.core.sequences import PAD_ID, evaluate_ranking
from shoprec.errors import ConfigError

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
EMBEDDINGS_FILE = "item_embeddings.npy"
CONFIG_FILE = "items.json"
ARTIFACT_KIND = "sasrec"


@dataclass(frozen=True, slots=True)
class SASRecConfig:
    """Hyper-parameters. The defaults are the recipe for sparse e-commerce data.

    ``patience`` counts validation rounds without a better NDCG@10; ``max_train_s`` is a
    wall-clock budget after which training stops and keeps the best weights so far.
    ``negatives`` = 0 is the full softmax over every item; a positive number replaces it by
    a sampled softmax over that many uniformly drawn items shared by the batch (with the
    log-ratio correction that keeps it an estimate of the full loss): several times
    cheaper per epoch on large catalogs, but it levels off lower. With ``finish_full``,
    training starts sampled and, once validation stops improving for ``switch_patience``
    rounds, goes on from the best weights with the full softmax until ``patience``.
    """

    max_len: int = 50
    hidden: int = 64
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.5
    lr: float = 2e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 3
    eval_every: int = 1
    max_train_s: float | None = 720.0
    use_attributes: bool = True
    negatives: int = 1024
    finish_full: bool = True
    switch_patience: int = 3
    threads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        positive = {
            "max_len": self.max_len,
            "hidden": self.hidden,
            "blocks": self.blocks,
            "heads": self.heads,
            "batch_size": self.batch_size,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "switch_patience": self.switch_patience,
            "eval_every": self.eval_every,
            "threads": self.threads,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"SASRecConfig.{name} must be at least 1, got {value}")
        if self.hidden % self.heads:
            raise ConfigError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.negatives < 0:
            raise ConfigError("negatives must be 0 (full softmax) or a positive count")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError("lr must be positive and weight_decay non-negative")
        if self.max_train_s is not None and self.max_train_s <= 0:
            raise ConfigError("max_train_s must be positive (or None for no budget)")


@dataclass(frozen=True, slots=True)
class TrainHistory:
    """What training did: one row per epoch, the best epoch and why it stopped."""

    epochs: tuple[Mapping[str, float], ...]
    best_epoch: int
    best_valid: Mapping[str, float]
    train_s: float
    stopped: str
    config: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- model


class _Block(nn.Module):
    """Pre-norm transformer block: causal self-attention, then a position-wise FFN."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(hidden, eps=1e-8)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=1e-8)
        self.ff1 = nn.Linear(hidden, hidden)
        self.ff2 = nn.Linear(hidden, hidden)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.norm1(x)
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        a = a.transpose(1, 2).reshape(b, n, d)
        x = x + F.dropout(self.proj(a), p, self.training)
        h = self.ff2(F.dropout(F.gelu(self.ff1(self.norm2(x))), p, self.training))
        return x + F.dropout(h, p, self.training)


class SASRec(nn.Module):
    """Self-attentive sequential recommender with a shared (tied) item embedding table."""

    causal: torch.Tensor
    eye: torch.Tensor
    item_attributes: torch.Tensor
    attr_counts: torch.Tensor

    def __init__(
        self,
        n_items: int,
        config: SASRecConfig,
        item_attributes: torch.Tensor | None = None,
        n_attributes: int = 0,
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.config = config
        d = config.hidden
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=PAD_ID)
        self.pos_emb = nn.Embedding(config.max_len, d)
        self.attr_emb: nn.Embedding | None = None
        if item_attributes is not None:
            self.attr_emb = nn.Embedding(n_attributes + 1, d, padding_idx=0)
            self.register_buffer("item_attributes", item_attributes, persistent=True)
            counts = (item_attributes > 0).sum(dim=1, keepdim=True).clamp(min=1)
            self.register_buffer("attr_counts", counts.to(torch.float32), persistent=True)
        self.blocks = nn.ModuleList(_Block(d, config.heads, config.dropout) for _ in range(config.blocks))
        self.norm = nn.LayerNorm(d, eps=1e-8)
        # Built once (ONNX Runtime has no boolean EyeLike); any top-left slice is valid.
        causal = torch.ones(config.max_len, config.max_len, dtype=torch.bool).tril()
        self.register_buffer("causal", causal, persistent=False)
        self.register_buffer("eye", torch.eye(config.max_len, dtype=torch.bool), persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Embedding):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
            nn.init.zeros_(m.bias)

    def item_table(self) -> torch.Tensor:
        """Item vectors ``[n_items + 1, hidden]``: item embedding + mean attribute embedding."""
        table = self.item_emb.weight
        if self.attr_emb is not None:
            attrs = self.attr_emb(self.item_attributes).sum(dim=1) / self.attr_counts
            table = table + attrs
        return table

    def encode(self, item_ids: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[batch, len, hidden]`` for left-padded ``item_ids``."""
        _, n = item_ids.shape
        valid = item_ids != PAD_ID
        start = self.config.max_len - n
        positions = torch.arange(start, self.config.max_len, device=item_ids.device)
        x = F.embedding(item_ids, table) * math.sqrt(self.config.hidden) + self.pos_emb(positions)
        x = F.dropout(x, self.config.dropout, self.training) * valid.unsqueeze(-1)
        # A padded query may only see itself, so no attention row is empty (NaN otherwise).
        mask = (self.causal[:n, :n] & valid.unsqueeze(1)) | self.eye[:n, :n]
        mask = mask.unsqueeze(1)
        for block in self.blocks:
            x = block(x, mask)
        hidden: torch.Tensor = self.norm(x)
        return hidden

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        """User vectors ``[batch, hidden]``: the hidden state at the last position."""
        users: torch.Tensor = self.encode(item_ids, self.item_table())[:, -1, :]
        return users


class _UserEncoder(nn.Module):
    """The exported graph: the item table is frozen into it, so only the encoder runs."""

    table: torch.Tensor

    def __init__(self, model: SASRec) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("table", model.item_table().detach().clone())

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode(item_ids, self.table)[:, -1, :]


# --------------------------------------------------------------------------- data


def left_pad(histories: Sequence[Sequence[int]], max_len: int) -> npt.NDArray[np.int64]:
    """The last ``max_len`` items of each history, left-padded with 0: ``[batch, max_len]``."""
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for row, h in enumerate(histories):
        tail = list(h)[-max_len:]
        if tail:
            out[row, max_len - len(tail) :] = tail
    return out


def _training_windows(train_seqs: Sequence[Sequence[int]], max_len: int) -> list[list[int]]:
    """Sequences of at most ``max_len + 1`` items (input + shifted target); longer users
    are cut into consecutive windows from the end so no transition is lost."""
    windows: list[list[int]] = []
    for s in train_seqs:
        s = list(s)
        end = len(s)
        while end >= 2:
            windows.append(s[max(0, end - max_len - 1) : end])
            end -= max_len
    return windows


def _batches(
    windows: Sequence[Sequence[int]], batch_size: int, rng: np.random.Generator
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled batches of similar length, each padded to its own longest window."""
    order = rng.permutation(len(windows))
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(windows[i]))
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    for idx in (batches[i] for i in rng.permutation(len(batches))):
        n = max(len(windows[i]) for i in idx) - 1
        inputs = np.zeros((len(idx), n), dtype=np.int64)
        targets = np.zeros((len(idx), n), dtype=np.int64)
        for row, i in enumerate(idx):
            w = windows[i]
            inputs[row, n - len(w) + 1 :] = w[:-1]
            targets[row, n - len(w) + 1 :] = w[1:]
        out.append((torch.from_numpy(inputs), torch.from_numpy(targets)))
    return out


def attribute_matrix(attributes: Mapping[int, Sequence[int]], n_items: int) -> tuple[torch.Tensor, int]:
    """Padded ``[n_items + 1, max_attrs]`` attribute ids (shifted by one; 0 is padding),
    and the number of distinct attributes."""
    distinct = sorted({a for i, attrs in attributes.items() if 1 <= i <= n_items for a in attrs})
    index = {a: j + 1 for j, a in enumerate(distinct)}
    width = max((len(v) for v in attributes.values()), default=1) or 1
    mat = np.zeros((n_items + 1, width), dtype=np.int64)
    for item, attrs in attributes.items():
        if 1 <= item <= n_items:
            ids = [index[a] for a in attrs]
            mat[item, : len(ids)] = ids
    return torch.from_numpy(mat), len(distinct)


# --------------------------------------------------------------------------- training


class _Adam:
    """Adam (Kingma & Ba), as ``torch.optim.Adam`` computes it.

    Written out because ``torch.optim`` imports ``torch._dynamo`` on first use, which
    costs several seconds per process: more than training a small model takes.
    """

    def __init__(
        self,
        params: list[nn.Parameter],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**self.steps)
        root_correction = math.sqrt(1 - beta2**self.steps)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            if p.grad is None:
                continue
            g = p.grad if self.weight_decay == 0 else p.grad.add(p, alpha=self.weight_decay)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.addcdiv_(m, (v.sqrt() / root_correction).add_(self.eps), value=-step_size)


@torch.no_grad()
def score_histories(
    model: SASRec, histories: Sequence[Sequence[int]], table: torch.Tensor | None = None
) -> npt.NDArray[np.float32]:
    """Scores ``[batch, n_items + 1]`` of every item for each history (eval mode).

    The batch is padded only to its longest history (at most ``max_len``): padding never
    changes the result, it only costs time.
    """
    model.eval()
    t = model.item_table() if table is None else table
    longest = max((len(h) for h in histories), default=1)
    ids = torch.from_numpy(left_pad(histories, max(1, min(longest, model.config.max_len))))
    users = model.encode(ids, t)[:, -1, :]
    return (users @ t.T).numpy()


def _validate(model: SASRec, histories: Sequence[Sequence[int]], targets: Sequence[int]) -> dict[str, float]:
    # Users sorted by history length: each batch pads to a similar length.
    order = sorted(range(len(histories)), key=lambda i: len(histories[i]))
    with torch.no_grad():
        model.eval()
        table = model.item_table()
        return evaluate_ranking(
            lambda h: score_histories(model, h, table),
            [histories[i] for i in order],
            [targets[i] for i in order],
            model.n_items,
            batch_size=512,
        )


def train_sasrec(
    train_seqs: Sequence[Sequence[int]],
    n_items: int,
    valid_targets: Sequence[int],
    attributes: Mapping[int, Sequence[int]] | None = None,
    config: SASRecConfig | None = None,
    progress: bool = False,
) -> tuple[SASRec, TrainHistory]:
    """Train SASRec-CE on ``train_seqs`` (item ids ``1..n_items``, one list per user).

    ``valid_targets[u]`` is the item that follows ``train_seqs[u]``; it drives early
    stopping only. Returns the model with its best-validation weights, in eval mode.
    """
    config = config or SASRecConfig()
    if len(train_seqs) != len(valid_targets):
        raise ValueError(f"{len(train_seqs)} sequences but {len(valid_targets)} valid targets")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(train_seqs, n_items, valid_targets, attributes, config, progress)
    finally:
        torch.set_num_threads(threads_before)


def _loss(hidden: torch.Tensor, targets: torch.Tensor, table: torch.Tensor, negatives: int) -> torch.Tensor:
    """Cross-entropy of the next item: over all items, or over sampled negatives."""
    n_items = table.shape[0] - 1
    if negatives == 0 or negatives >= n_items:
        logits = hidden @ table.T
        logits[:, PAD_ID] = float("-inf")
        return F.cross_entropy(logits, targets)
    sampled = torch.randint(1, n_items + 1, (negatives,))
    positive = (hidden * table[targets]).sum(dim=1, keepdim=True)
    # Each sampled item stands for (n_items - 1) / negatives items of the full softmax.
    neg = hidden @ table[sampled].T + math.log((n_items - 1) / negatives)
    neg = neg.masked_fill(sampled.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))
    logits = torch.cat([positive, neg], dim=1)
    return F.cross_entropy(logits, torch.zeros_like(targets))


def _train(
    train_seqs: Sequence[Sequence[int]],
    n_items: int,
    valid_targets: Sequence[int],
    attributes: Mapping[int, Sequence[int]] | None,
    config: SASRecConfig,
    progress: bool,
) -> tuple[SASRec, TrainHistory]:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    attr_mat, n_attr = (None, 0)
    if config.use_attributes and attributes:
        attr_mat, n_attr = attribute_matrix(attributes, n_items)
    model = SASRec(n_items, config, attr_mat, n_attr)
    opt = _Adam(list(model.parameters()), lr=config.lr, weight_decay=config.weight_decay)
    windows = _training_windows(train_seqs, config.max_len)
    if not windows:
        raise ValueError("no training sequence has two items: nothing to learn from")
    t0 = time.perf_counter()
    rows: list[dict[str, float]] = []
    best: dict[str, float] = {"ndcg@10": -1.0}
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch = 0
    stale = 0
    stopped = "max_epochs"
    negatives = config.negatives if config.negatives < n_items else 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.max_epochs, desc="sasrec", unit="epoch")
    try:
        for epoch in range(1, config.max_epochs + 1):
            model.train()
            total = 0.0
            tokens = 0
            for inputs, targets in _batches(windows, config.batch_size, rng):
                table = model.item_table()
                hidden = model.encode(inputs, table)
                keep = targets != PAD_ID
                loss = _loss(hidden[keep], targets[keep], table, negatives)
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                n = int(keep.sum())
                total += loss.detach().item() * n
                tokens += n
            row: dict[str, float] = {
                "epoch": float(epoch),
                "loss": total / max(tokens, 1),
                "negatives": float(negatives),
            }
            if epoch % config.eval_every == 0 or epoch == config.max_epochs:
                metrics = _validate(model, train_seqs, valid_targets)
                row.update({f"valid_{k}": v for k, v in metrics.items() if k != "users"})
                if metrics["ndcg@10"] > best["ndcg@10"]:
                    best = metrics
                    best_epoch = epoch
                    best_state = copy.deepcopy(model.state_dict())
                    stale = 0
                else:
                    stale += 1
            row["elapsed_s"] = time.perf_counter() - t0
            rows.append(row)
            log.info("sasrec epoch %d: %s", epoch, row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    loss=f"{row['loss']:.3f}",
                    ndcg10=f"{row.get('valid_ndcg@10', float('nan')):.4f}",
                    best=f"{best['ndcg@10']:.4f}@{best_epoch}",
                )
            if negatives and config.finish_full and stale >= config.switch_patience:
                log.info("sasrec: sampled softmax levelled off; full softmax from epoch %d", best_epoch)
                negatives = 0
                stale = 0
                if best_state is not None:
                    model.load_state_dict(best_state)
            elif stale >= config.patience:
                stopped = "patience"
                break
            if config.max_train_s is not None and row["elapsed_s"] >= config.max_train_s:
                stopped = "time_budget"
                break
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    history = TrainHistory(
        epochs=tuple(rows),
        best_epoch=best_epoch,
        best_valid={k: v for k, v in best.items() if k != "users"},
        train_s=time.perf_counter() - t0,
        stopped=stopped,
        config=asdict(config),
    )
    return model, history


# --------------------------------------------------------------------------- export


def export_sasrec(
    model: SASRec,
    path: str | Path,
    *,
    items: Sequence[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    opset: int = 17,
) -> Path:
    """Write the serving folder ``path`` (see the module docstring); returns it.

    ``items[i]`` is the external id of item ``i + 1`` (default: the integer itself).
    Built in a temporary sibling folder and renamed, so a failed export changes nothing.
    """
    out = Path(path)
    names = [str(i) for i in range(1, model.n_items + 1)] if items is None else list(items)
    if len(names) != model.n_items:
        raise ValueError(f"{len(names)} item ids for a model of {model.n_items} items")
    model.eval()
    wrapper = _UserEncoder(model).eval()
    example = torch.zeros((2, model.config.max_len), dtype=torch.long)
    example[:, -3:] = torch.tensor([1, min(2, model.n_items), model.n_items])
    table = wrapper.table.numpy().astype(np.float32)
    with write_artifacts(out) as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated upstream and says so on every call.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                (example,),
                str(tmp / MODEL_FILE),
                input_names=["item_ids"],
                output_names=["user_vectors"],
                dynamic_axes={"item_ids": {0: "batch"}, "user_vectors": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
        np.save(tmp / EMBEDDINGS_FILE, table)
        config = {
            "kind": ARTIFACT_KIND,
            "max_len": model.config.max_len,
            "hidden": model.config.hidden,
            "n_items": model.n_items,
            "pad_id": PAD_ID,
            "input": "item_ids",
            "output": "user_vectors",
            "training": asdict(model.config),
            "items": names,
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(config))
        write_manifest(
            tmp,
            model_id=ARTIFACT_KIND,
            config={k: v for k, v in config.items() if k != "items"},
            metrics=dict(metrics or {}),
        )
    return out
