"""The storefront at ``/`` and the ops page at ``/ops``: static HTML, CSS and ES modules that
ship in the package (``http/static``, no build step, nothing from a CDN) and talk only to the
public API, like any other client of it."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/static"


def routes() -> list[BaseRoute]:
    pages = APIRouter(tags=["pages"], include_in_schema=False)

    @pages.get("/")
    async def storefront() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @pages.get("/ops")
    async def ops() -> FileResponse:
        return FileResponse(STATIC_DIR / "ops.html", media_type="text/html")

    return [*pages.routes, Mount(STATIC_PATH, app=StaticFiles(directory=STATIC_DIR), name="static")]
