"""Plain ASGI middleware."""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shoprec.serving.looplag import LoopLagMonitor
from shoprec.serving.runtime import Live, Runtime


class ResponseHeader:
    """Add one fixed header to every HTTP response (e.g. the replica that produced it)."""

    def __init__(self, app: ASGIApp, name: str, value: str) -> None:
        self.app = app
        self.header = (name.lower().encode("latin-1"), value.encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_header)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_body_bytes`` with a JSON 413, before the app reads them."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_length = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                has_length = True
                try:
                    length = int(value)
                except ValueError:
                    await _reply(send, 400, "bad_request", "invalid Content-Length header")
                    return
                if length > self.max_body_bytes:
                    await _reply(send, 413, "payload_too_large", self._too_large())
                    return
        if has_length or scope.get("method") in ("GET", "HEAD"):
            # The server holds the body to its declared length.
            await self.app(scope, receive, send)
            return
        # A streamed (chunked) body: read it up to the limit before the app sees it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body_bytes:
                await _reply(send, 413, "payload_too_large", self._too_large())
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"request body is over the limit of {self.max_body_bytes} bytes"


# The version a request leased when it started (see ``LeaseMiddleware``): every read of the
# services during that request goes to it, even if a new version is switched in meanwhile.
LEASED: ContextVar[Live | None] = ContextVar("shoprec_leased_version", default=None)


class LeaseMiddleware:
    """Hold the version current at the start of each HTTP request until it ends (plain ASGI:
    a FastAPI generator dependency did the same at several times the cost per request)."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.runtime.lease() as live:
            token = LEASED.set(live)
            try:
                await self.app(scope, receive, send)
            finally:
                LEASED.reset(token)


class FrontDoorShedder:
    """Refuse model-backed requests with a fast JSON 503 + ``Retry-After``, each with the
    monitor's shed probability (:class:`~shoprec.serving.looplag.LoopLagMonitor`: it rises
    while the event loop has a standing lag), before FastAPI parses, validates or routes them:
    a refusal here costs a fraction of what serving does, so the loop catches up and answers
    the rest instead of letting requests time out unread."""

    def __init__(self, app: ASGIApp, monitor: LoopLagMonitor, paths: tuple[str, ...], retry_after_s: int = 1) -> None:
        self.app = app
        self.monitor = monitor
        self.paths = paths
        self.retry_after_s = retry_after_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the path first: health checks and other cheap routes are never refused, nor draw
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(self.paths) and self.monitor.should_shed():
            self.monitor.shed_total += 1
            detail = f"overloaded: the server is {self.monitor.lag_ms:.0f} ms behind; retry in {self.retry_after_s} s"
            await _reply(send, 503, "overloaded", detail, headers=[(b"retry-after", str(self.retry_after_s).encode())])
            return
        await self.app(scope, receive, send)


async def _reply(
    send: Send, status: int, code: str, detail: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
