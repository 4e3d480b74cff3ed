"""One search contract: the route's query parameters (and so /openapi.json) and the fast
path's parser are derived from the same declaration, and both paths run the same guards."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi.routing import APIRoute

from shoprec.http.app import create_app
from shoprec.http.fastpath import FastPath
from shoprec.http.routes.search import SEARCH_PATH, SearchParams, search_fields
from shoprec.settings import Settings

S = Settings.load(environ={}, max_query_chars=64, max_k=20, default_k=7, deadline_min_ms=15, deadline_max_ms=4000)


def _schema_limits(schema: dict[str, Any]) -> dict[str, Any]:
    plain = next((s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"), schema)
    names = {"minLength": "min_length", "maxLength": "max_length", "minimum": "ge", "maximum": "le"}
    return {ours: plain[theirs] for theirs, ours in names.items() if theirs in plain}


def test_the_openapi_parameters_are_the_contract() -> None:
    spec = create_app(S).openapi()["paths"][SEARCH_PATH]["get"]["parameters"]
    fields = search_fields(S)
    assert [p["name"] for p in spec] == [f.header or f.name for f in fields]
    for p, f in zip(spec, fields, strict=True):
        assert p["in"] == ("header" if f.header else "query"), f.name
        assert p.get("required", False) == f.required, f.name
        if not f.required and f.default is not None:
            assert p["schema"]["default"] == f.default, f.name
        limits = {"min_length": f.min_length, "max_length": f.max_length, "ge": f.ge, "le": f.le}
        assert _schema_limits(p["schema"]) == {k: v for k, v in limits.items() if v is not None}, f.name
        assert p["description"] == f.description


def test_limits_and_defaults_come_from_the_settings() -> None:
    by_name = {f.name: f for f in search_fields(S)}
    assert (by_name["q"].max_length, by_name["k"].le, by_name["k"].default) == (64, 20, 7)
    assert (by_name["deadline_ms"].ge, by_name["deadline_ms"].le) == (15, 4000)
    assert by_name["header_deadline_ms"].header == "X-Deadline-Ms"
    assert by_name["pipeline"].kind == ("bm25", "dense", "hybrid", "full")
    assert [f.name for f in search_fields(S)] == [f.name for f in dataclasses.fields(SearchParams)]


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """The app's API routes, inside included routers too (FastAPI keeps an included router as
    one route holding the original)."""
    out: list[APIRoute] = []
    for r in routes:
        included = getattr(r, "original_router", None)
        out += _api_routes(included.routes) if included is not None else [r] if isinstance(r, APIRoute) else []
    return out


def test_the_route_and_the_fast_path_run_the_same_guards() -> None:
    app = create_app(S)
    guards = app.state.guards.search
    route = next(r for r in _api_routes(app.routes) if r.path == SEARCH_PATH)
    route_guards = tuple(d.dependency for d in route.dependencies if d.dependency in guards)
    fast_path = next(m for m in app.user_middleware if m.cls is FastPath)
    assert route_guards == guards == tuple(fast_path.kwargs["guards"])
    assert len(guards) == 2  # authentication, then the rate limit
