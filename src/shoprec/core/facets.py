"""Facet values and counts over catalog columns: pure numpy.

A facet selection is given as text, values within one facet separated by ``|`` (an OR):
``brand=acme|bolt``, ``category=tools|garden``, ``price_range=25-50|50-100``. Price ranges
are fixed, lower bound included and upper bound excluded; a product without a price is in
none of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FACETS: tuple[str, ...] = ("category", "brand", "price", "in_stock")
SEPARATOR = "|"
PRICE_EDGES: tuple[float, ...] = (25.0, 50.0, 100.0, 250.0, 500.0)
PRICE_RANGES: tuple[str, ...] = ("0-25", "25-50", "50-100", "100-250", "250-500", "500+")


def split_values(text: str) -> list[str]:
    """The values of a ``|``-separated selection, stripped, empty ones dropped."""
    return [v.strip() for v in text.split(SEPARATOR) if v.strip()]


def parse_facets(text: str) -> tuple[str, ...]:
    """The facet names of ``facets=category,brand``, each once, in the given order; a name
    that is not a facet raises ValueError."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FACETS]
    if unknown or not names:
        raise ValueError(f"facets must be a comma-separated subset of {', '.join(FACETS)}, got {text!r}")
    return names


def price_range_indices(text: str) -> list[int]:
    """The indices into :data:`PRICE_RANGES` of a ``|``-separated selection of range labels;
    an unknown label raises ValueError."""
    labels = split_values(text)
    unknown = [label for label in labels if label not in PRICE_RANGES]
    if unknown or not labels:
        raise ValueError(f"price_range values must be among {', '.join(PRICE_RANGES)}, got {text!r}")
    return [PRICE_RANGES.index(label) for label in labels]


def price_bins(price: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """Each price's index into :data:`PRICE_RANGES`, -1 where the price is missing."""
    bins = np.digitize(np.nan_to_num(price, nan=0.0), np.asarray(PRICE_EDGES, dtype=np.float64), right=False)
    return np.where(np.isnan(price), -1, bins).astype(np.int64)


def value_counts(codes: npt.NDArray[np.int64], values: Sequence[str], mask: npt.NDArray[np.bool_]) -> dict[str, int]:
    """How many rows of ``mask`` have each value (``values[code]``; code -1: none), most first,
    ties by value; values no row has are left out."""
    picked = codes[mask]
    counts = np.bincount(picked[picked >= 0], minlength=len(values))
    order = sorted((i for i in np.flatnonzero(counts).tolist()), key=lambda i: (-int(counts[i]), values[i]))
    return {values[i]: int(counts[i]) for i in order}


def price_counts(bins: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> dict[str, int]:
    """How many rows of ``mask`` fall in each price range, in range order, empty ones left out."""
    picked = bins[mask]
    counts = np.bincount(picked[picked >= 0], minlength=len(PRICE_RANGES))
    return {label: int(n) for label, n in zip(PRICE_RANGES, counts.tolist(), strict=True) if n}
