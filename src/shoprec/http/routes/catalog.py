"""``/v1/products/{id}``: read a product (search role); change its price or stock, or take it
off sale (admin role)."""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, some of
# them local types built from the settings
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path

from shoprec.catalog.loaders import product_to_json
from shoprec.http.schemas import ProductOut, ProductUpdateIn, ProductUpdateOut
from shoprec.http.state import AppServices, Guard, dependencies
from shoprec.settings import Settings

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such product"}}


def product_id_param(settings: Settings) -> object:
    """A product id in the path, within the settings' length limit."""
    return Annotated[str, Path(min_length=1, max_length=settings.max_id_chars)]


def router(services: AppServices, *, read: Sequence[Guard], write: Sequence[Guard]) -> APIRouter:
    routes = APIRouter(tags=["catalog"], responses=NOT_FOUND)
    ProductId = product_id_param(services.settings)
    accelerated = services.accelerated

    @routes.get("/v1/products/{product_id}", response_model=ProductOut, dependencies=dependencies(read))
    async def product(product_id: ProductId) -> ProductOut:  # type: ignore[valid-type]
        """One product by id."""
        return ProductOut(**product_to_json(services.require().product(product_id)))

    @routes.patch(
        "/v1/products/{product_id}",
        response_model=ProductUpdateOut,
        response_model_exclude_none=True,
        dependencies=dependencies(write),
    )
    async def update_product(product_id: ProductId, body: ProductUpdateIn) -> ProductUpdateOut:  # type: ignore[valid-type]
        """Change a product's price or stock. Filters see it at once; cached results that show
        the product are dropped here and, with Redis, on every replica."""
        service = services.require()
        dropped, _ = await accelerated.update_product(service, product_id, price=body.price, in_stock=body.in_stock)
        updated = ProductOut(**product_to_json(service.product(product_id)))
        return ProductUpdateOut(id=product_id, removed=False, product=updated, invalidated_results=dropped)

    @routes.delete(
        "/v1/products/{product_id}",
        response_model=ProductUpdateOut,
        response_model_exclude_none=True,
        dependencies=dependencies(write),
    )
    async def remove_product(product_id: ProductId) -> ProductUpdateOut:  # type: ignore[valid-type]
        """Take a product off sale: it leaves search, similar and recommendations, and the cached
        results that showed it are dropped."""
        dropped, _ = await accelerated.update_product(services.require(), product_id, remove=True)
        return ProductUpdateOut(id=product_id, removed=True, invalidated_results=dropped)

    return routes
