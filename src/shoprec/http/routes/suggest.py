"""``GET /v1/suggest``: autocomplete as a shopper types (:mod:`shoprec.serving.suggest`)."""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, some of
# them local types built from the settings
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Response

from shoprec.errors import RequestError
from shoprec.http.render import dumps
from shoprec.http.schemas import SuggestOut
from shoprec.http.state import AppServices, Guard, dependencies

SUGGEST_PATH = "/v1/suggest"
DEFAULT_SUGGESTIONS = 5
DEFAULT_SUGGESTED_PRODUCTS = 4


def router(services: AppServices, guards: Sequence[Guard]) -> APIRouter:
    s = services.settings
    routes = APIRouter(tags=["search"], dependencies=dependencies(guards))
    Count = Annotated[int, Query(ge=0, le=s.max_suggestions, description="how many products to show")]
    Limit = Annotated[int, Query(ge=1, le=s.max_suggestions, description="most completions")]
    default_limit = min(DEFAULT_SUGGESTIONS, s.max_suggestions)
    default_products = min(DEFAULT_SUGGESTED_PRODUCTS, s.max_suggestions)

    @routes.get(SUGGEST_PATH, response_model=SuggestOut)
    async def suggest(
        q: Annotated[str, Query(min_length=1, max_length=s.max_query_chars, description="what the shopper typed")],
        limit: Limit = default_limit,
        products: Count = default_products,
    ) -> Response:
        """Completions of ``q`` from the shop's past queries and the catalog's titles, most
        frequent first, typo-tolerant (``correction`` says what was corrected), and the
        products the first completion finds. Answered on the event loop: it costs about as
        much as the hop to a worker thread."""
        if not q.strip():
            raise RequestError("q must contain a non-space character")
        service = services.require()
        found = service.suggester.suggest(q, limit, products)
        body = {
            "query": found.query,
            "suggestions": [{"text": x.text, "source": x.source, "count": x.count} for x in found.suggestions],
            "products": services.renderer.dicts(service.bundle.catalog, found.products, False),
            "correction": None if found.correction is None else found.correction.as_dict(),
        }
        # written as /v1/search writes its body: products as its hits (no null fields), correction null or not
        return Response(dumps(body), media_type="application/json")

    return routes
