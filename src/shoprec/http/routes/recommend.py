"""Recommendations: ``/v1/recommend`` ("recommended for you") and ``/v1/similar/{id}``
(similar products, and what was bought or viewed after this one)."""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, some of
# them local types built from the settings
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from shoprec.errors import NotReadyError
from shoprec.http.render import scored
from shoprec.http.routes.catalog import NOT_FOUND, product_id_param
from shoprec.http.schemas import FILTER_MAX_CHARS, HitOut, RecommendOut, SimilarOut
from shoprec.http.state import AppServices, Guard, dependencies
from shoprec.serving.search import SearchService
from shoprec.types import Filters


def router(services: AppServices, guards: Sequence[Guard]) -> APIRouter:
    s = services.settings
    routes = APIRouter(dependencies=dependencies(guards))
    ProductId = product_id_param(s)
    K = Annotated[int, Query(ge=1, le=s.max_k)]
    fields = services.renderer.fields

    def hits(service: SearchService, scores: Sequence[tuple[str, float]]) -> list[HitOut]:
        """The products still on sale, as hits with their scores."""
        on_sale = service.bundle.catalog.on_sale_product
        return [HitOut(**scored(fields(p), score, None)) for pid, score in scores if (p := on_sale(pid)) is not None]

    @routes.get("/v1/similar/{product_id}", response_model=SimilarOut, tags=["search"], responses=NOT_FOUND)
    async def similar(product_id: ProductId, k: K = s.default_k) -> SimilarOut:  # type: ignore[valid-type]
        """Products similar to one product (content similarity of their embeddings), and the
        products bought or viewed after it (co-occurrence; empty without a recommender)."""
        service = services.require()
        similar_hits = await run_in_threadpool(service.similar, product_id, k)
        recommender = services.recommend
        also = await run_in_threadpool(recommender.also_bought, product_id, k) if recommender is not None else []
        return SimilarOut(
            id=product_id,
            k=k,
            strategy="content",
            results=hits(service, [(h.product_id, h.score) for h in similar_hits]),
            also_bought=hits(service, also),
        )

    @routes.get("/v1/recommend", response_model=RecommendOut, response_model_exclude_none=True, tags=["recommend"])
    async def recommend(
        user_id: Annotated[str | None, Query(min_length=1, max_length=s.max_id_chars)] = None,
        k: K = s.default_k,
        exclude_seen: bool = True,
        category: Annotated[str | None, Query(min_length=1, max_length=FILTER_MAX_CHARS)] = None,
    ) -> RecommendOut:
        """Recommended for you: the sequential model over the user's history; unknown users
        get the popularity fallback. ``strategy`` says which served."""
        service = services.require()
        recommender = services.recommend
        if recommender is None:
            raise NotReadyError("these artifacts hold no recommender (build with --events)")
        rec = await run_in_threadpool(
            recommender.recommend, user_id, k, exclude_seen=exclude_seen, filters=Filters(category=category)
        )
        return RecommendOut(
            user_id=user_id,
            k=k,
            strategy=rec.strategy,
            history_length=rec.history_length,
            model_version=service.bundle.version,
            results=hits(service, rec.items),
        )

    return routes
