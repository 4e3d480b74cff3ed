"""The JSON shapes of the API (pydantic models): what the routes take and return, and what
``/openapi.json`` documents. Models whose limits come from the settings are built by a
function of the settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from shoprec.settings import Settings

FILTER_MAX_CHARS = 200  # category and brand filters
MAX_PRICE = 1e12


class ProductOut(BaseModel):
    id: str
    title: str
    description: str = ""
    category: str = ""
    brand: str = ""
    price: float | None = None
    in_stock: bool = True
    attributes: dict[str, str] = Field(default_factory=dict)


class HitOut(BaseModel):
    id: str
    title: str
    brand: str
    category: str
    price: float | None = None
    in_stock: bool
    score: float
    stages: dict[str, float] | None = None
    title_highlighted: str | None = Field(
        default=None, description="with `highlight`: the title HTML-escaped, the query's words in `<mark>`"
    )


class WordCorrectionOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", description="the word as typed")
    to: str = Field(description="the catalog word searched instead")


class CorrectionOut(BaseModel):
    """The typos corrected before searching: "did you mean `corrected`", "search instead for `original`"."""

    original: str
    corrected: str
    words: list[WordCorrectionOut]


class SuggestionOut(BaseModel):
    text: str
    source: Literal["catalog", "queries"] = Field(description="the shop's past queries, or the catalog's titles")
    count: int = Field(description="how many events searched it, or how many products' titles hold it")


class SuggestOut(BaseModel):
    query: str
    suggestions: list[SuggestionOut]
    products: list[HitOut]
    correction: CorrectionOut | None = None


class SearchOut(BaseModel):
    query: str
    k: int
    pipeline: str
    ranker: str
    personalized: bool
    model_version: str
    degradation_level: str = Field(description="the degradation ladder level that served this response")
    cached: bool = Field(default=False, description="served from the result cache")
    results: list[HitOut]
    timings_ms: dict[str, float]
    total: int | None = Field(
        default=None, description="the size of the matched set (with page, per_page, sort or facets)"
    )
    page: int | None = None
    per_page: int | None = None
    sort: str | None = None
    facets: dict[str, dict[str, int]] | None = Field(
        default=None,
        description="per facet, the matched products per value (disjunctive: a facet's own selection aside)",
    )
    correction: CorrectionOut | None = Field(
        default=None, description="the typos corrected before searching (null: searched as typed)"
    )


class SimilarOut(BaseModel):
    id: str
    k: int
    strategy: str
    results: list[HitOut]
    also_bought: list[HitOut] = Field(
        default_factory=list, description="products bought or viewed after this one (item-to-item co-occurrence)"
    )


class RecommendOut(BaseModel):
    user_id: str | None
    k: int
    strategy: str
    history_length: int
    model_version: str
    results: list[HitOut]


class EventsAccepted(BaseModel):
    accepted: int
    unknown_items: list[str]


class Health(BaseModel):
    status: str
    version: str


class Ready(BaseModel):
    status: str
    model_version: str
    model_id: str
    products: int


class ModelOut(BaseModel):
    version: str
    model_id: str
    folder: str
    source: str
    registry_version: str | None
    loaded_at: float
    signed_by: str | None
    encrypted: bool
    products: int
    inflight: int


class ProductUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False)
    in_stock: bool | None = None


class ProductUpdateOut(BaseModel):
    id: str
    removed: bool
    product: ProductOut | None = None
    invalidated_results: int = Field(description="cached results on this replica that showed the product")


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    artifacts: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="artifacts folder to load; default: the registry's current version, else the configured one",
    )


class EventIn(BaseModel):
    """One event as posted (its limits are the defaults; :func:`events_in` applies the settings')."""

    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1)
    item_id: str = Field(min_length=1)
    type: Literal["view", "click", "cart", "purchase"]
    timestamp: float | None = Field(default=None, ge=0, le=1e11, allow_inf_nan=False)
    query: str | None = None
    id: str | None = Field(
        default=None, min_length=1, description="the event's id: an id is applied once (send one to retry safely)"
    )


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1)


def events_in(settings: Settings) -> type[EventsIn]:
    """:class:`EventsIn` with the settings' limits on ids, queries and the batch size."""
    event = create_model(
        "EventIn",
        __base__=EventIn,
        user_id=(str, Field(min_length=1, max_length=settings.max_id_chars)),
        item_id=(str, Field(min_length=1, max_length=settings.max_id_chars)),
        query=(str | None, Field(default=None, max_length=settings.max_query_chars)),
        id=(str | None, Field(default=None, min_length=1, max_length=settings.max_id_chars)),
    )
    return create_model(
        "EventsIn",
        __base__=EventsIn,
        events=(list[event], Field(min_length=1, max_length=settings.max_events_per_batch)),
    )
