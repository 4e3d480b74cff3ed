"""The one place where errors become HTTP responses. Every error body is JSON:
``{"error": <code>, "detail": <what was wrong>}``."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shoprec.errors import ShoprecError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


def error_response(status: int, code: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out


def shoprec_error_response(exc: ShoprecError) -> JSONResponse:
    """The response for one of shoprec's own errors (the route handlers' and the fast path's)."""
    if exc.status_code >= 500 and exc.status_code != 503:
        log.error("%s: %s", type(exc).__name__, exc.message)
    headers = {"Retry-After": "1"} if exc.status_code == 503 else None
    retry_after_s = getattr(exc, "retry_after_s", None)
    if retry_after_s is not None:  # whole seconds, rounded up so a client that obeys succeeds
        headers = {"Retry-After": str(max(1, math.ceil(min(float(retry_after_s), 3600.0))))}
    if exc.status_code == 401:  # RFC 9110: a 401 names the scheme to authenticate with
        headers = {"WWW-Authenticate": 'Bearer realm="shoprec"'}
    return error_response(exc.status_code, exc.code, exc.message, headers)


def unexpected_error_response() -> JSONResponse:
    """A bug: logged with its traceback by the caller's ``except`` block; the client gets a JSON 500."""
    log.exception("unexpected error")
    return error_response(500, "internal_error", "internal error")


def install(app: FastAPI) -> None:
    @app.exception_handler(ShoprecError)
    async def shoprec_error(_: Request, exc: ShoprecError) -> JSONResponse:
        return shoprec_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_error", _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, exc.detail, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return unexpected_error_response()
