"""Loaded artifacts: the catalog as arrays, the lexical and vector indexes, the encoder,
the ranker. Loading verifies every checksum first (see :mod:`shoprec.models.artifacts`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shoprec.adapters.eventlog import event_from_json
from shoprec.core.text import normalize
from shoprec.errors import ArtifactError
from shoprec.models import artifacts
from shoprec.models.encoder import OnnxEncoder
from shoprec.models.ranker import Ranker
from shoprec.retrieval.lexical import LexicalIndex, analyze
from shoprec.retrieval.vector import VectorIndex
from shoprec.types import Event, Filters, Product

log = logging.getLogger(__name__)


def product_text(p: Product) -> str:
    """What the lexical index sees of a product: every text field and attribute value."""
    parts = [p.title, p.brand, p.category.replace(">", " "), p.description]
    parts.extend(str(v) for v in p.attributes.values())
    return " ".join(x for x in parts if x)


def product_dense_text(p: Product) -> str:
    """What the encoder sees of a product: title first, then brand and category leaf."""
    parts = [p.title]
    if p.brand and p.brand.lower() not in p.title.lower():
        parts.append(p.brand)
    if p.category_path:
        parts.append(p.category_path[-1])
    return ". ".join(parts)


def read_events_jsonl(path: Path) -> Iterator[Event]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield event_from_json(json.loads(line))


def product_from_json(d: Mapping[str, Any]) -> Product:
    return Product(
        id=str(d["id"]),
        title=str(d["title"]),
        description=str(d.get("description") or ""),
        category=str(d.get("category") or ""),
        brand=str(d.get("brand") or ""),
        price=None if d.get("price") is None else float(d["price"]),
        in_stock=bool(d.get("in_stock", True)),
        attributes={str(k): str(v) for k, v in (d.get("attributes") or {}).items()},
    )


@dataclass
class CatalogArrays:
    """Products in index order plus the columns filters and features need, as arrays."""

    products: list[Product]
    index_of: dict[str, int]
    titles: list[str]
    title_lengths: npt.NDArray[np.float32]
    brands_norm: list[str]
    category_norm: npt.NDArray[np.str_]
    category_tokens: list[frozenset[str]]
    price: npt.NDArray[np.float32]
    in_stock: npt.NDArray[np.bool_]
    popularity: npt.NDArray[np.float32]

    @classmethod
    def from_products(
        cls, products: Sequence[Product], popularity: npt.NDArray[np.float32] | None = None
    ) -> CatalogArrays:
        prods = list(products)
        n = len(prods)
        return cls(
            products=prods,
            index_of={p.id: i for i, p in enumerate(prods)},
            titles=[p.title for p in prods],
            title_lengths=np.asarray([len(analyze(p.title)) for p in prods], dtype=np.float32),
            brands_norm=[normalize(p.brand) for p in prods],
            category_norm=np.asarray([" > ".join(normalize(c) for c in p.category_path) for p in prods], dtype=np.str_),
            category_tokens=[frozenset(normalize(p.category.replace(">", " ")).split()) for p in prods],
            price=np.asarray([np.nan if p.price is None else p.price for p in prods], dtype=np.float32),
            in_stock=np.asarray([p.in_stock for p in prods], dtype=np.bool_),
            popularity=(popularity.astype(np.float32) if popularity is not None else np.zeros(n, dtype=np.float32)),
        )

    def __len__(self) -> int:
        return len(self.products)

    def allowed(self, filters: Filters) -> npt.NDArray[np.bool_] | None:
        """Boolean mask of products passing ``filters``; None when there are no filters."""
        if filters.is_empty():
            return None
        mask = np.ones(len(self.products), dtype=np.bool_)
        if filters.category is not None:
            want = " > ".join(normalize(c) for c in filters.category.split(">") if c.strip())
            exact = self.category_norm == want
            prefix = np.char.startswith(self.category_norm, want + " > ")
            mask &= exact | prefix
        if filters.brand is not None:
            want_b = normalize(filters.brand)
            mask &= np.asarray([b == want_b for b in self.brands_norm], dtype=np.bool_)
        if filters.min_price is not None:
            mask &= np.nan_to_num(self.price, nan=-1.0) >= filters.min_price
        if filters.max_price is not None:
            mask &= np.nan_to_num(self.price, nan=np.inf) <= filters.max_price
        if filters.in_stock is not None:
            mask &= self.in_stock == filters.in_stock
        return mask


@dataclass
class Bundle:
    """Everything a search request needs, loaded from one artifacts folder."""

    folder: Path
    manifest: dict[str, Any]
    catalog: CatalogArrays
    lexical: LexicalIndex
    lexical_title: LexicalIndex
    vectors: VectorIndex
    embeddings: npt.NDArray[np.float32]
    encoder: OnnxEncoder
    ranker: Ranker | None
    user_events: list[Event] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.manifest.get("version") or self.manifest["files"]["catalog.jsonl"][:12])

    @property
    def model_id(self) -> str:
        return str(self.manifest.get("model_id", "unknown"))


def load_bundle(folder: str | Path, *, check: bool = True, threads: int | None = None) -> Bundle:
    """Load an artifacts folder; with ``check`` every checksum is verified first."""
    folder = Path(folder)
    manifest = artifacts.verify(folder) if check else artifacts.read_manifest(folder)
    files = manifest["files"]

    def path(rel: str) -> Path:
        if rel not in files:
            raise ArtifactError(f"{folder}: the manifest lists no {rel}")
        return artifacts.safe_path(folder, rel)

    products: list[Product] = []
    with path("catalog.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                products.append(product_from_json(json.loads(line)))
    popularity = np.load(path("popularity.npy"), allow_pickle=False) if "popularity.npy" in files else None
    catalog = CatalogArrays.from_products(products, popularity)
    embeddings = np.load(path("embeddings.npy"), mmap_mode="r", allow_pickle=False)
    if embeddings.shape[0] != len(products):
        raise ArtifactError(f"{folder}: embeddings.npy has {embeddings.shape[0]} rows for {len(products)} products")
    ranker = Ranker.load(path("ranker.txt")) if "ranker.txt" in files else None
    user_events = list(read_events_jsonl(path("user_events.jsonl"))) if "user_events.jsonl" in files else []
    encoder = OnnxEncoder(artifacts.safe_path(folder, "encoder"), threads=threads)
    bundle = Bundle(
        folder=folder,
        manifest=manifest,
        catalog=catalog,
        lexical=LexicalIndex.load(artifacts.safe_path(folder, "lexical")),
        lexical_title=LexicalIndex.load(artifacts.safe_path(folder, "lexical_title")),
        vectors=VectorIndex.load(path("vectors.faiss")),
        embeddings=embeddings,
        encoder=encoder,
        ranker=ranker,
        user_events=user_events,
    )
    log.info(
        "loaded artifacts %s: %d products, encoder %s on %s, ranker %s",
        folder,
        len(products),
        encoder.model_id,
        encoder.provider,
        "learned" if ranker else "fusion",
    )
    return bundle
