"""Loaded artifacts: the catalog as arrays, the lexical and vector indexes, the encoder,
the ranker. Loading verifies every checksum first (see :mod:`shoprec.artifacts`).

With a :class:`Trust` policy (what the service uses), the signature over the manifest is
checked against the trusted public keys before any file is read, and encrypted files
(``name.enc``, see :mod:`shoprec.security.crypto`) are decrypted into anonymous memory
files (``memfd``): the loaders read them through a private folder of links, and no
plaintext ever touches a disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shoprec import artifacts
from shoprec.catalog.loaders import event_from_json
from shoprec.core.facets import price_bins, price_range_indices, split_values
from shoprec.core.text import normalize
from shoprec.errors import ArtifactError, NotFoundError
from shoprec.models.compiled import COMPILED_FILE
from shoprec.models.encoder import OnnxEncoder
from shoprec.models.ranker import Ranker, TitleIndex
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
    # products taken off sale since the artifacts were built (catalog updates); None: none yet
    removed: npt.NDArray[np.bool_] | None = None

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

    @functools.cached_property
    def title_index(self) -> TitleIndex:
        """The per-product data of the ranker's features (built on first use; the server's
        warm-up builds it before a version takes traffic)."""
        return TitleIndex.build(self.titles, self.brands_norm, self.category_tokens)

    @functools.cached_property
    def brand_codes(self) -> tuple[npt.NDArray[np.int64], list[str]]:
        """Each product's index into the sorted distinct normalised brands, and those brands."""
        values, codes = np.unique(np.asarray(self.brands_norm, dtype=np.str_), return_inverse=True)
        return codes.astype(np.int64).reshape(-1), [str(v) for v in values]

    @functools.cached_property
    def top_category_codes(self) -> tuple[npt.NDArray[np.int64], list[str]]:
        """Each product's index into the sorted distinct normalised top-level categories (-1:
        none), and those categories."""
        tops = [c.split(" > ", 1)[0] for c in self.category_norm.tolist()]
        values = sorted({t for t in tops if t})
        index = {v: i for i, v in enumerate(values)}
        return np.asarray([index.get(t, -1) for t in tops], dtype=np.int64), values

    def on_sale_row(self, product_id: str) -> int | None:
        """The product's row when it is on sale — known to this catalog and not taken off sale
        by a catalog update — else None: the one rule search, similar and recommend share."""
        row = self.index_of.get(product_id)
        return None if row is None or (self.removed is not None and self.removed[row]) else row

    def on_sale_product(self, product_id: str) -> Product | None:
        """The product when it is on sale (:meth:`on_sale_row`), else None."""
        row = self.on_sale_row(product_id)
        return None if row is None else self.products[row]

    def update_product(
        self, product_id: str, *, price: float | None = None, in_stock: bool | None = None, remove: bool = False
    ) -> Product:
        """Change a product's price or stock, or take it off sale, in place; filters and features
        see the change at once. Returns the product as it is now."""
        row = self.on_sale_row(product_id)
        if row is None:
            raise NotFoundError(f"no product with id {product_id!r}")
        if remove:
            removed = self.removed if self.removed is not None else np.zeros(len(self.products), dtype=np.bool_)
            removed[row] = True
            self.removed = removed
            return self.products[row]
        product = self.products[row]
        if price is not None:
            self.price[row] = price
            product = dataclasses.replace(product, price=price)
        if in_stock is not None:
            self.in_stock[row] = in_stock
            product = dataclasses.replace(product, in_stock=in_stock)
        self.products[row] = product
        return product

    def allowed(self, filters: Filters) -> npt.NDArray[np.bool_] | None:
        """Boolean mask of products passing ``filters`` (never removed ones); None when all pass."""
        removed = self.removed
        if filters.is_empty():
            return None if removed is None else ~removed
        mask = np.ones(len(self.products), dtype=np.bool_) if removed is None else ~removed
        if filters.category is not None:  # each of `a|b` with the categories below it
            wants = [
                " > ".join(normalize(c) for c in v.split(">") if c.strip()) for v in split_values(filters.category)
            ]
            any_category = np.zeros(len(self.products), dtype=np.bool_)
            for want in wants:
                any_category |= (self.category_norm == want) | np.char.startswith(self.category_norm, want + " > ")
            mask &= any_category
        if filters.brand is not None:  # any of `a|b`
            codes, values = self.brand_codes
            wanted = {normalize(v) for v in split_values(filters.brand)}
            mask &= np.isin(codes, [i for i, v in enumerate(values) if v in wanted])
        if filters.price_range is not None:  # any of the ranges
            mask &= np.isin(price_bins(self.price), price_range_indices(filters.price_range))
        if filters.min_price is not None:
            mask &= np.nan_to_num(self.price, nan=-1.0) >= filters.min_price
        if filters.max_price is not None:
            mask &= np.nan_to_num(self.price, nan=np.inf) <= filters.max_price
        if filters.in_stock is not None:
            mask &= self.in_stock == filters.in_stock
        return mask


@dataclass(frozen=True)
class Trust:
    """How :func:`load_bundle` checks a folder before using anything in it.

    ``require_signature`` refuses unsigned folders; ``trusted_keys`` are the PEM public keys
    a signature must come from; ``data_key`` (32 bytes) decrypts encrypted files.
    """

    require_signature: bool = True
    trusted_keys: tuple[Path, ...] = ()
    data_key: bytes | None = field(default=None, repr=False)


class _PlainView:
    """A private folder of links: plain files link to the artifacts folder, encrypted ones to
    an anonymous memory file holding their plaintext. Closed when the bundle is collected."""

    def __init__(self, folder: Path, manifest: Mapping[str, Any], key: bytes | None) -> None:
        from shoprec.security import crypto  # the one module that imports cryptography

        encrypted = set(manifest.get("encryption", {}).get("files", []))
        if key is None:
            raise crypto.KeyFileError(
                f"{folder}: {len(encrypted)} artifact files are encrypted ({sorted(encrypted)[0]}, ...); "
                "configure a data key (setting data_key_file, or the variable named by data_key_env)"
            )
        want = manifest["encryption"].get("key_id")
        have = crypto.data_key_id(key)
        if want and want != have:
            raise crypto.DecryptionError(
                f"{folder}: wrong data key: the artifacts were encrypted with key {want}, the configured key is {have}"
            )
        self.root = Path(tempfile.mkdtemp(prefix="shoprec-plain-"))
        self._fds: list[int] = []
        try:
            for rel in manifest["files"]:
                artifacts.safe_path(folder, rel)
                plain_rel = rel[: -len(crypto.ENCRYPTED_SUFFIX)] if rel in encrypted else rel
                link = self.root / plain_rel
                link.parent.mkdir(parents=True, exist_ok=True)
                if rel in encrypted:
                    data = crypto.read_artifact_bytes(folder, plain_rel, key)
                    fd = os.memfd_create(Path(plain_rel).name, os.MFD_CLOEXEC)
                    self._fds.append(fd)
                    _write_all(fd, data)
                    os.symlink(f"/proc/{os.getpid()}/fd/{fd}", link)
                else:
                    os.symlink(artifacts.safe_path(folder, rel), link)
        except BaseException:
            _close_view(self.root, self._fds)
            raise
        self._finalizer = weakref.finalize(self, _close_view, self.root, self._fds)

    def close(self) -> None:
        self._finalizer()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _close_view(root: Path, fds: list[int]) -> None:
    shutil.rmtree(root, ignore_errors=True)
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


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
    # where loaders read files from: ``folder`` itself, or the plaintext view of an encrypted one
    read_root: Path | None = None
    signer: dict[str, Any] | None = None

    @property
    def files_root(self) -> Path:
        return self.read_root or self.folder

    @property
    def version(self) -> str:
        return str(self.manifest.get("version") or self.manifest["files"]["catalog.jsonl"][:12])

    @property
    def model_id(self) -> str:
        return str(self.manifest.get("model_id", "unknown"))


def load_bundle(
    folder: str | Path,
    *,
    check: bool = True,
    threads: int | None = None,
    trust: Trust | None = None,
) -> Bundle:
    """Load an artifacts folder; with ``check`` every checksum is verified first.

    With ``trust``, the signature is checked against ``trust.trusted_keys`` before anything
    else (a :class:`~shoprec.security.crypto.SignatureError` names what is wrong) and
    encrypted files are decrypted in memory with ``trust.data_key``.
    """
    folder = Path(folder)
    signer: dict[str, Any] | None = None
    if trust is not None:
        from shoprec.security import crypto  # the one module that imports cryptography

        artifacts.read_manifest(folder)  # "not an artifacts folder" before "unsigned"
        checked = crypto.verify_artifacts(folder, trust.trusted_keys, require_signature=trust.require_signature)
        manifest = checked["manifest"]
        if checked["key_id"] is not None:
            signer = {"key_id": checked["key_id"], "signer": checked["signer"]}
    else:
        manifest = artifacts.verify(folder) if check else artifacts.read_manifest(folder)
    files = manifest["files"]
    view = _PlainView(folder, manifest, trust.data_key if trust else None) if manifest.get("encryption") else None
    root = view.root if view is not None else folder
    plain_files = {f.removesuffix(".enc") if view is not None else f for f in files}

    def path(rel: str) -> Path:
        if rel not in plain_files:
            raise ArtifactError(f"{folder}: the manifest lists no {rel}")
        artifacts.safe_path(folder, rel)
        return root / rel if view is not None else artifacts.safe_path(folder, rel)

    def subdir(rel: str) -> Path:
        artifacts.safe_path(folder, rel)
        return root / rel if view is not None else artifacts.safe_path(folder, rel)

    products: list[Product] = []
    with path("catalog.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                products.append(product_from_json(json.loads(line)))
    popularity = np.load(path("popularity.npy"), allow_pickle=False) if "popularity.npy" in plain_files else None
    catalog = CatalogArrays.from_products(products, popularity)
    embeddings = np.load(path("embeddings.npy"), mmap_mode="r", allow_pickle=False)
    if embeddings.shape[0] != len(products):
        raise ArtifactError(f"{folder}: embeddings.npy has {embeddings.shape[0]} rows for {len(products)} products")
    ranker = None
    if "ranker.txt" in plain_files:
        compiled = path(COMPILED_FILE) if COMPILED_FILE in plain_files else None
        ranker = Ranker.load(path("ranker.txt"), compiled=compiled)
    user_events = list(read_events_jsonl(path("user_events.jsonl"))) if "user_events.jsonl" in plain_files else []
    encoder = OnnxEncoder(subdir("encoder"), threads=threads)
    bundle = Bundle(
        folder=folder,
        manifest=manifest,
        catalog=catalog,
        lexical=LexicalIndex.load(subdir("lexical")),
        lexical_title=LexicalIndex.load(subdir("lexical_title")),
        vectors=VectorIndex.load(path("vectors.faiss")),
        embeddings=embeddings,
        encoder=encoder,
        ranker=ranker,
        user_events=user_events,
        read_root=view.root if view is not None else None,
        signer=signer,
    )
    if view is not None:
        bundle.extras["plain_view"] = view  # lives (memory files open) as long as the bundle
    log.info(
        "loaded artifacts %s: %d products, encoder %s on %s, ranker %s",
        folder,
        len(products),
        encoder.model_id,
        encoder.provider,
        f"learned ({ranker.kind})" if ranker else "fusion",
    )
    return bundle
