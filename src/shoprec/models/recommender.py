"""Recommenders at inference time: the exported sequential model, popularity, co-occurrence.

No torch here. :class:`SequentialRecommender` runs the ONNX graph written by
:func:`shoprec.training.sasrec.export_sasrec` and scores items with numpy:
``scores = user_vector @ item_embeddings.T``. ONNX Runtime stays owned by
:mod:`shoprec.models.encoder`: sessions are made through its provider choice (picked once,
logged) and its session options, never by importing the runtime here.

:class:`PopularityModel` and :class:`CoOccurrenceModel` ("bought together / after") are
plain arrays, updated incrementally as events arrive, and saved as ``.npy`` + JSON — never
pickle. The co-occurrence matrix is a scipy CSR matrix saved as its three arrays; updates
go to a small overlay that :meth:`CoOccurrenceModel.compact` folds in.

:class:`BlendedRecommender` combines the sequential model's next-item probabilities with
the co-occurrence transitions as a product of experts (the exponent chosen on validation
data); the two are complementary: co-occurrence remembers exact item-to-item transitions,
the sequential model generalises to everything those never covered.

Every model speaks external item ids (strings); integer ids (1-based, 0 is padding) stay
inside. Unknown items in a history are ignored.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from shoprec.atomicio import save_npy, write_json
from shoprec.core.sequences import PAD_ID, blend_scores, cooccurrence_pairs, popularity_scores
from shoprec.errors import ArtifactError
from shoprec.models import encoder as _encoder
from shoprec.models.encoder import _session_options, pick_providers
from shoprec.types import FloatArray

Recommendation = tuple[str, float]

SEQUENTIAL_MODEL_FILE = "model.onnx"
SEQUENTIAL_EMBEDDINGS_FILE = "item_embeddings.npy"
SEQUENTIAL_CONFIG_FILE = "items.json"


def _top_k(
    scores: npt.NDArray[np.floating], k: int, exclude: npt.NDArray[np.int64] | None = None
) -> list[tuple[int, float]]:
    """Indices and scores of the ``k`` best entries, best first; ties by lower index."""
    s = np.asarray(scores, dtype=np.float64).copy()
    if exclude is not None and exclude.size:
        s[exclude] = -np.inf
    k = min(k, int(np.isfinite(s).sum()))
    if k <= 0:
        return []
    part = np.argpartition(-s, k - 1)[:k] if k < s.size else np.arange(s.size)
    best = part[np.lexsort((part, -s[part]))]
    return [(int(i), float(s[i])) for i in best]


class _ItemIndex:
    """External item ids <-> integer ids ``1..n`` (0 is padding)."""

    def __init__(self, items: Sequence[str]) -> None:
        self.items: list[str] = [str(i) for i in items]
        self.index: dict[str, int] = {item: i + 1 for i, item in enumerate(self.items)}
        if len(self.index) != len(self.items):
            raise ArtifactError("item ids are not unique")

    def __len__(self) -> int:
        return len(self.items)

    def ids(self, items: Iterable[str]) -> list[int]:
        """Integer ids of the known items, in order; unknown items are dropped."""
        return [j for j in (self.index.get(str(i)) for i in items) if j is not None]

    def add(self, item: str) -> int:
        j = self.index.get(item)
        if j is None:
            self.items.append(item)
            j = self.index[item] = len(self.items)
        return j

    def name(self, j: int) -> str:
        return self.items[j - 1]


def _recommend(
    index: _ItemIndex, scores: npt.NDArray[np.floating], k: int, exclude: Iterable[str]
) -> list[Recommendation]:
    """``scores`` over items ``1..n`` (no padding column) -> top ``k`` external ids."""
    drop = np.asarray([j - 1 for j in index.ids(exclude)], dtype=np.int64)
    return [(index.name(i + 1), s) for i, s in _top_k(scores, k, drop)]


def _load_npy(path: Path) -> npt.NDArray[Any]:
    if not path.is_file():
        raise ArtifactError(f"file missing: {path}")
    try:
        array: npt.NDArray[Any] = np.load(path, allow_pickle=False)
        return array
    except ValueError as exc:
        raise ArtifactError(f"{path}: not a plain .npy array: {exc}") from exc


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object")
    return data


# --------------------------------------------------------------------------- sequential


def _create_session(model_path: Path, threads: int | None) -> Any:
    """An ONNX Runtime session built exactly as the encoder builds its own."""
    try:
        return _encoder.ort.InferenceSession(  # type: ignore[attr-defined]
            str(model_path), sess_options=_session_options(threads), providers=pick_providers()
        )
    except Exception as exc:  # the runtime raises its own untyped errors on a bad graph
        raise ArtifactError(f"{model_path}: cannot load the ONNX model: {exc}") from exc


class SequentialRecommender:
    """Next-item scores from a user's recent items, through an exported SASRec graph."""

    def __init__(
        self,
        session: Any,
        item_embeddings: FloatArray,
        items: Sequence[str],
        max_len: int,
    ) -> None:
        self.session = session
        self.item_embeddings = np.ascontiguousarray(item_embeddings, dtype=np.float32)
        self.index = _ItemIndex(items)
        self.max_len = max_len
        if self.item_embeddings.shape[0] != len(self.index) + 1:
            raise ArtifactError(
                f"{self.item_embeddings.shape[0]} embedding rows for {len(self.index)} items "
                "(expected one more, for padding)"
            )
        self._input = session.get_inputs()[0].name

    @classmethod
    def load(cls, folder: str | Path, *, threads: int | None = None) -> SequentialRecommender:
        """Load ``model.onnx``, ``item_embeddings.npy`` and ``items.json`` from ``folder``."""
        folder = Path(folder)
        config = _load_json(folder / SEQUENTIAL_CONFIG_FILE)
        items = config.get("items")
        if not isinstance(items, list) or "max_len" not in config:
            raise ArtifactError(f"{folder}/{SEQUENTIAL_CONFIG_FILE}: needs 'items' and 'max_len'")
        model_path = folder / SEQUENTIAL_MODEL_FILE
        if not model_path.is_file():
            raise ArtifactError(f"file missing: {model_path}")
        session = _create_session(model_path, threads)
        emb = _load_npy(folder / SEQUENTIAL_EMBEDDINGS_FILE)
        return cls(session, emb, items, int(config["max_len"]))

    @property
    def items(self) -> list[str]:
        """External item ids; ``scores(...)[i]`` belongs to ``items[i]``."""
        return self.index.items

    @property
    def dim(self) -> int:
        return int(self.item_embeddings.shape[1])

    def pad(self, histories: Sequence[Sequence[int]]) -> npt.NDArray[np.int64]:
        """The last ``max_len`` integer ids of each history, left-padded with 0."""
        out = np.zeros((len(histories), self.max_len), dtype=np.int64)
        for row, h in enumerate(histories):
            tail = list(h)[-self.max_len :]
            if tail:
                out[row, self.max_len - len(tail) :] = tail
        return out

    def user_vectors_from_ids(self, histories: Sequence[Sequence[int]]) -> FloatArray:
        """User vectors ``[batch, dim]`` for histories of integer ids (1-based)."""
        if not histories:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.session.run(None, {self._input: self.pad(histories)})[0]
        vectors: FloatArray = np.asarray(out, dtype=np.float32)
        return vectors

    def score_ids(self, histories: Sequence[Sequence[int]]) -> FloatArray:
        """Scores ``[batch, n_items + 1]`` (column 0 is padding) for integer-id histories:
        the batch entry point used by evaluation."""
        return self.user_vectors_from_ids(histories) @ self.item_embeddings.T

    def user_vector(self, history_item_ids: Sequence[str]) -> FloatArray:
        """The user's vector ``[dim]`` from the items they interacted with, oldest first."""
        vector: FloatArray = self.user_vectors_from_ids([self.index.ids(history_item_ids)])[0]
        return vector

    def scores(self, history: Sequence[str]) -> FloatArray:
        """A score for every item (aligned with :attr:`items`), higher is better."""
        vec = self.user_vector(history)
        return (self.item_embeddings[1:] @ vec).astype(np.float32, copy=False)

    def recommend(self, history: Sequence[str], k: int = 10, exclude: Iterable[str] = ()) -> list[Recommendation]:
        """The ``k`` best next items as ``(item_id, score)``, best first, minus ``exclude``."""
        return _recommend(self.index, self.scores(history), k, exclude)


# --------------------------------------------------------------------------- popularity


class PopularityModel:
    """Most-interacted items first: the baseline, and the fallback for unknown users."""

    FILE_COUNTS = "popularity_counts.npy"
    FILE_ITEMS = "popularity_items.json"

    def __init__(self, items: Sequence[str], counts: npt.NDArray[np.floating]) -> None:
        self.index = _ItemIndex(items)
        self.counts = np.asarray(counts, dtype=np.float64).copy()
        if self.counts.shape != (len(self.index) + 1,):
            raise ArtifactError(f"popularity counts of shape {self.counts.shape} for {len(self.index)} items")

    @classmethod
    def fit(cls, sequences: Iterable[Sequence[str]], items: Sequence[str] | None = None) -> PopularityModel:
        """Count interactions in ``sequences`` (external ids). ``items`` fixes the vocabulary."""
        seqs = [list(s) for s in sequences]
        index = _ItemIndex(items if items is not None else [])
        if items is None:
            for s in seqs:
                for i in s:
                    index.add(str(i))
        counts = popularity_scores([index.ids(s) for s in seqs], len(index))
        return cls(index.items, counts)

    @classmethod
    def from_ids(cls, train: Iterable[Sequence[int]], items: Sequence[str]) -> PopularityModel:
        """Count interactions in integer-id sequences over the vocabulary ``items``."""
        return cls(items, popularity_scores(train, len(items)))

    @property
    def items(self) -> list[str]:
        return self.index.items

    def update(self, item_id: str, weight: float = 1.0) -> None:
        """Count one more interaction with ``item_id`` (a new item joins the vocabulary)."""
        j = self.index.add(str(item_id))
        if j >= self.counts.size:
            self.counts = np.concatenate([self.counts, np.zeros(j + 1 - self.counts.size)])
        self.counts[j] += weight

    def score_ids(self, histories: Sequence[Sequence[int]]) -> FloatArray:
        """The same popularity row for every history: ``[batch, n_items + 1]``."""
        row = self.counts.astype(np.float32)
        return np.broadcast_to(row, (len(histories), row.size))

    def scores(self, history: Sequence[str] = ()) -> FloatArray:
        return self.counts[1:].astype(np.float32)

    def recommend(self, history: Sequence[str] = (), k: int = 10, exclude: Iterable[str] = ()) -> list[Recommendation]:
        return _recommend(self.index, self.scores(history), k, exclude)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_npy(folder / self.FILE_COUNTS, self.counts)
        write_json(folder / self.FILE_ITEMS, {"kind": "popularity", "items": self.items})

    @classmethod
    def load(cls, folder: str | Path) -> PopularityModel:
        folder = Path(folder)
        meta = _load_json(folder / cls.FILE_ITEMS)
        return cls(list(meta.get("items", [])), _load_npy(folder / cls.FILE_COUNTS))


# --------------------------------------------------------------------------- co-occurrence


class CoOccurrenceModel:
    """Item-to-item "bought after / bought together" weights from users' sequences.

    Items ``a`` then ``b`` at distance ``d <= window`` in one user's sequence add ``1/d``
    to ``a -> b`` and ``backward_weight/d`` to ``b -> a``. A history is scored by summing
    the rows of its last ``history_items`` items, the most recent weighted most
    (``recency_decay`` per step back), plus a tiny popularity prior so that ties and
    histories with no known neighbour fall back to the most popular items.
    """

    FILE_META = "cooccurrence.json"
    FILE_ARRAYS = ("cooc_data.npy", "cooc_indices.npy", "cooc_indptr.npy", "cooc_popularity.npy")
    PRIOR_WEIGHT = 1e-6

    def __init__(
        self,
        items: Sequence[str],
        matrix: sp.csr_matrix,
        popularity: npt.NDArray[np.floating],
        *,
        window: int = 3,
        backward_weight: float = 0.5,
        history_items: int = 3,
        recency_decay: float = 0.5,
    ) -> None:
        self.index = _ItemIndex(items)
        n = len(self.index) + 1
        if matrix.shape != (n, n) or np.shape(popularity) != (n,):
            raise ArtifactError(
                f"co-occurrence matrix {matrix.shape} / popularity {np.shape(popularity)} do not fit {n - 1} items"
            )
        self.matrix: sp.csr_matrix = sp.csr_matrix(matrix, dtype=np.float32)
        self.popularity = np.asarray(popularity, dtype=np.float64).copy()
        self.window = window
        self.backward_weight = backward_weight
        self.history_items = history_items
        self.recency_decay = recency_decay
        self._pending: defaultdict[int, defaultdict[int, float]] = defaultdict(lambda: defaultdict(float))

    @classmethod
    def from_ids(
        cls,
        train: Sequence[Sequence[int]],
        items: Sequence[str],
        *,
        window: int = 3,
        backward_weight: float = 0.5,
        history_items: int = 3,
        recency_decay: float = 0.5,
    ) -> CoOccurrenceModel:
        """Build from integer-id sequences over the vocabulary ``items``."""
        n = len(items) + 1
        rows, cols, vals = cooccurrence_pairs(train, window=window, backward_weight=backward_weight)
        matrix = sp.csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float32)
        matrix.sum_duplicates()
        return cls(
            items,
            matrix,
            popularity_scores(train, len(items)),
            window=window,
            backward_weight=backward_weight,
            history_items=history_items,
            recency_decay=recency_decay,
        )

    @classmethod
    def fit(cls, sequences: Iterable[Sequence[str]], **options: Any) -> CoOccurrenceModel:
        """Build from external-id sequences; the vocabulary is every item seen."""
        seqs = [[str(i) for i in s] for s in sequences]
        index = _ItemIndex([])
        for s in seqs:
            for i in s:
                index.add(i)
        return cls.from_ids([index.ids(s) for s in seqs], index.items, **options)

    @property
    def items(self) -> list[str]:
        return self.index.items

    @property
    def pending_updates(self) -> int:
        return sum(len(r) for r in self._pending.values())

    def weight(self, a: str, b: str) -> float:
        """The current ``a -> b`` weight (0 for unknown items)."""
        ia, ib = self.index.index.get(a), self.index.index.get(b)
        if ia is None or ib is None:
            return 0.0
        rows, cols = self.matrix.shape
        base = float(self.matrix[ia, ib]) if ia < rows and ib < cols else 0.0
        pending = self._pending.get(ia)
        return base + (pending.get(ib, 0.0) if pending else 0.0)

    def update(self, user_history: Sequence[str], new_item: str) -> None:
        """Record that ``new_item`` followed ``user_history`` (oldest first).

        Adds the same weights as building from the extended sequence would; a new item
        joins the vocabulary. Cheap: the CSR matrix changes only at :meth:`compact`.
        """
        j = self.index.add(str(new_item))
        if j >= self.popularity.size:
            grow = np.zeros(j + 1 - self.popularity.size)
            self.popularity = np.concatenate([self.popularity, grow])
        self.popularity[j] += 1.0
        recent = list(user_history)[-self.window :]
        for d, item in enumerate(reversed(recent), start=1):
            i = self.index.index.get(str(item))
            if i is None:
                continue
            self._pending[i][j] += 1.0 / d
            self._pending[j][i] += self.backward_weight / d

    def compact(self) -> None:
        """Fold pending updates into the CSR matrix (grown to the current vocabulary)."""
        n = len(self.index) + 1
        if not self._pending and self.matrix.shape == (n, n):
            return
        rows, cols, vals = [], [], []
        for i, row in self._pending.items():
            for j, w in row.items():
                rows.append(i)
                cols.append(j)
                vals.append(w)
        delta = sp.csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float32)
        base = self.matrix.tocoo()
        base = sp.csr_matrix((base.data, (base.row, base.col)), shape=(n, n), dtype=np.float32)
        self.matrix = sp.csr_matrix(base + delta)
        self._pending.clear()

    def _row(self, i: int, n: int) -> npt.NDArray[np.float64]:
        out = np.zeros(n, dtype=np.float64)
        if i < self.matrix.shape[0]:
            start, stop = self.matrix.indptr[i], self.matrix.indptr[i + 1]
            out[self.matrix.indices[start:stop]] += self.matrix.data[start:stop]
        for j, w in self._pending.get(i, {}).items():
            out[j] += w
        return out

    def _score_row(self, history: Sequence[int]) -> npt.NDArray[np.float64]:
        n = len(self.index) + 1
        scores = np.zeros(n, dtype=np.float64)
        for step, i in enumerate(reversed(list(history)[-self.history_items :])):
            scores += self.recency_decay**step * self._row(i, n)
        top = self.popularity.max() if self.popularity.size else 0.0
        prior = self.popularity[:n] / top if top > 0 else np.zeros(n)
        scores[: prior.size] += self.PRIOR_WEIGHT * prior
        scores[PAD_ID] = 0.0
        return scores

    def score_ids(self, histories: Sequence[Sequence[int]]) -> FloatArray:
        """Scores ``[batch, n_items + 1]`` for integer-id histories (column 0 is padding)."""
        n = len(self.index) + 1
        if not self._pending and self.matrix.shape == (n, n):
            return self._score_ids_sparse(histories)
        return np.stack([self._score_row(h) for h in histories]).astype(np.float32)

    def _score_ids_sparse(self, histories: Sequence[Sequence[int]]) -> FloatArray:
        n = len(self.index) + 1
        rows, cols, vals = [], [], []
        for r, h in enumerate(histories):
            for step, i in enumerate(reversed(list(h)[-self.history_items :])):
                rows.append(r)
                cols.append(i)
                vals.append(self.recency_decay**step)
        weights = sp.csr_matrix((vals, (rows, cols)), shape=(len(histories), n), dtype=np.float64)
        scores = np.asarray((weights @ self.matrix).todense(), dtype=np.float64)
        top = self.popularity.max() if self.popularity.size else 0.0
        if top > 0:
            scores += self.PRIOR_WEIGHT * (self.popularity / top)[None, :]
        scores[:, PAD_ID] = 0.0
        return scores.astype(np.float32)

    def scores(self, history: Sequence[str]) -> FloatArray:
        """A score for every item (aligned with :attr:`items`), higher is better."""
        return self._score_row(self.index.ids(history))[1:].astype(np.float32)

    def recommend(self, history: Sequence[str], k: int = 10, exclude: Iterable[str] = ()) -> list[Recommendation]:
        """The ``k`` items most often bought after / with the last items of ``history``."""
        return _recommend(self.index, self.scores(history), k, exclude)

    def related(self, item_id: str, k: int = 10) -> list[Recommendation]:
        """Customers who bought this also bought: the ``k`` strongest neighbours of one item."""
        return self.recommend([item_id], k, exclude=[item_id])

    def options(self) -> Mapping[str, float | int]:
        return {
            "window": self.window,
            "backward_weight": self.backward_weight,
            "history_items": self.history_items,
            "recency_decay": self.recency_decay,
        }

    def save(self, folder: str | Path) -> None:
        """Write the CSR arrays, popularity (``.npy``) and ``cooccurrence.json``."""
        self.compact()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = (self.matrix.data, self.matrix.indices, self.matrix.indptr, self.popularity)
        for name, array in zip(self.FILE_ARRAYS, arrays, strict=True):
            save_npy(folder / name, np.asarray(array))
        meta = {"kind": "cooccurrence", "items": self.items, **self.options()}
        write_json(folder / self.FILE_META, meta)

    @classmethod
    def load(cls, folder: str | Path) -> CoOccurrenceModel:
        folder = Path(folder)
        meta = _load_json(folder / cls.FILE_META)
        items = list(meta.get("items", []))
        data, indices, indptr, popularity = (_load_npy(folder / f) for f in cls.FILE_ARRAYS)
        n = len(items) + 1
        try:
            matrix = sp.csr_matrix((data, indices, indptr), shape=(n, n))
        except ValueError as exc:
            raise ArtifactError(f"{folder}: malformed co-occurrence arrays: {exc}") from exc
        return cls(
            items,
            matrix,
            popularity,
            window=int(meta.get("window", 3)),
            backward_weight=float(meta.get("backward_weight", 0.5)),
            history_items=int(meta.get("history_items", 3)),
            recency_decay=float(meta.get("recency_decay", 0.5)),
        )


# --------------------------------------------------------------------------- blend


class BlendedRecommender:
    """``log softmax(sequential) + weight * log(co-occurrence share)``, higher is better.

    Both models must number items the same way (same ``items`` list), which holds when
    they are built from one vocabulary; see :func:`shoprec.core.sequences.blend_scores`.
    """

    FILE_META = "blend.json"

    def __init__(self, sequential: SequentialRecommender, cooccurrence: CoOccurrenceModel, weight: float) -> None:
        if not weight >= 0.0:
            raise ArtifactError(f"blend weight must be non-negative, got {weight}")
        if cooccurrence.items[: len(sequential.items)] != sequential.items:
            raise ArtifactError("the blended models do not share one item vocabulary")
        self.sequential = sequential
        self.cooccurrence = cooccurrence
        self.weight = weight

    @property
    def items(self) -> list[str]:
        return self.sequential.items

    def score_ids(self, histories: Sequence[Sequence[int]]) -> FloatArray:
        """Scores ``[batch, n_items + 1]`` (column 0, padding, is ``-inf``) for integer ids."""
        n = len(self.sequential.items) + 1
        cooc = self.cooccurrence.score_ids(histories)[:, :n]
        return blend_scores(self.sequential.score_ids(histories), cooc, self.weight)

    def scores(self, history: Sequence[str]) -> FloatArray:
        """A score for every item (aligned with :attr:`items`), higher is better."""
        ids = self.sequential.index.ids(history)
        row: FloatArray = self.score_ids([ids])[0, 1:]
        return row

    def recommend(self, history: Sequence[str], k: int = 10, exclude: Iterable[str] = ()) -> list[Recommendation]:
        return _recommend(self.sequential.index, self.scores(history), k, exclude)

    def save_weight(self, folder: str | Path) -> None:
        """Write ``blend.json``; the two models are saved in their own folders."""
        write_json(Path(folder) / self.FILE_META, {"kind": "blend", "weight": self.weight})

    @classmethod
    def read_weight(cls, folder: str | Path) -> float | None:
        """The weight stored in ``folder/blend.json``; None when the folder holds no blend."""
        path = Path(folder) / cls.FILE_META
        if not path.is_file():
            return None
        weight = _load_json(path).get("weight")
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise ArtifactError(f"{path}: weight must be a number, got {weight!r}")
        return float(weight)

    @classmethod
    def load(cls, folder: str | Path) -> BlendedRecommender:
        """Load ``folder/sequential``, ``folder/cooccurrence`` and ``folder/blend.json``."""
        folder = Path(folder)
        meta = _load_json(folder / cls.FILE_META)
        return cls(
            SequentialRecommender.load(folder / "sequential"),
            CoOccurrenceModel.load(folder / "cooccurrence"),
            float(meta.get("weight", 0.0)),
        )
