"""``/v1/admin/rules``: the merchandising rules (admin role), versioned and audited.

``PUT`` replaces the whole set as a new version; ``POST .../rollback`` publishes an old
version's rules again as a new version; every change is appended to the audit log with its
version, rule ids and digest. The rules' shape is :class:`~shoprec.serving.rulestore.RuleIn`.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from shoprec.errors import RequestError
from shoprec.http.auth import actor
from shoprec.http.schemas import RollbackIn, RulesCurrentOut, RuleVersionSummary
from shoprec.http.state import AppServices, Guard, dependencies
from shoprec.serving.merchandising import Merchandiser
from shoprec.serving.rulestore import RuleIn, RuleSetIn, RuleVersion

RULES_PATH = "/v1/admin/rules"


def _summary(v: RuleVersion) -> RuleVersionSummary:
    return RuleVersionSummary(**v.model_dump(exclude={"rules"}), rules=len(v.rules))


def router(services: AppServices, merchandiser: Merchandiser, guards: Sequence[Guard]) -> APIRouter:
    routes = APIRouter(tags=["admin"], dependencies=dependencies(guards))
    store = merchandiser.store

    def check_products(rules: Sequence[RuleIn]) -> None:
        """Pins and hides must name products of the version being served."""
        index_of = services.require().bundle.catalog.index_of
        for r in rules:
            product_id = getattr(r.action, "product_id", None)
            if product_id is not None and product_id not in index_of:
                raise RequestError(f"rule {r.id!r}: no product with id {product_id!r} in the catalog")

    @routes.get(RULES_PATH, response_model=RulesCurrentOut, response_model_exclude_none=False)
    async def current() -> RulesCurrentOut:
        """The rule set in effect (``version`` null: none was ever published)."""
        live = await run_in_threadpool(store.current)
        v = live.version
        if v is None:
            return RulesCurrentOut(version=None, rules=[])
        return RulesCurrentOut(**v.model_dump(exclude={"rules"}), rules=list(v.rules))

    @routes.put(RULES_PATH, response_model=RuleVersion)
    async def replace(request: Request, body: RuleSetIn) -> RuleVersion:
        """Replace the whole rule set: a new version (the old ones are kept)."""
        check_products(body.rules)
        version = await run_in_threadpool(
            lambda: store.publish(list(body.rules), author=actor(request), note=body.note)
        )
        await services.record("rules.publish", request, version.audit_details())
        return version

    @routes.get(f"{RULES_PATH}/versions", response_model=list[RuleVersionSummary])
    async def versions() -> list[RuleVersionSummary]:
        """Every version, newest first."""
        return [_summary(v) for v in await run_in_threadpool(store.versions)]

    @routes.get(f"{RULES_PATH}/versions/{{number}}", response_model=RuleVersion)
    async def version(number: int) -> RuleVersion:
        """One version with its rules."""
        return await run_in_threadpool(store.get, number)

    @routes.post(f"{RULES_PATH}/rollback", response_model=RuleVersion)
    async def rollback(request: Request, body: RollbackIn) -> RuleVersion:
        """Publish an old version's rules again, as a new version."""
        version = await run_in_threadpool(lambda: store.rollback(body.version, author=actor(request), note=body.note))
        await services.record("rules.rollback", request, version.audit_details())
        return version

    return routes
