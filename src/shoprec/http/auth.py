"""API-key authentication for the HTTP routes.

Every route runs the guard of the role it needs (:meth:`Authenticator.guard`). The key
is read from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` and resolved through
the :class:`~shoprec.security.apikeys.KeyStore` (salted hashes, constant-time compare). The
resolved :class:`~shoprec.security.apikeys.ApiKey` — or None for an anonymous request — is
left on ``request.state.api_key`` for what runs later (rate limits, audit).

No key, or an unknown, malformed or revoked one: 401. A valid key without the role: 403.
Both go through the one error mapping in :mod:`shoprec.http.errors`. Anonymous requests are
allowed on ``search`` routes when the ``anonymous_read`` setting is on; on ``search`` and
``events`` routes as the ``storefront_anonymous`` setting says (off by default; from loopback
clients in ``shoprec demo``, so its storefront needs no key); on ``/metrics`` and
``/v1/ops/summary`` as the ``metrics_anonymous`` setting says (by default from loopback clients
only); never on ``admin`` routes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.concurrency import run_in_threadpool

from shoprec.security.apikeys import ApiKey, AuthenticationError, KeyStore, Role, require

# Declared for the OpenAPI spec (clients and fuzzers learn both ways to send a key); the
# checks below read the headers themselves so a malformed header is a 401, not ignored.
API_KEY_SCHEMES = (
    HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer sr_...`"),
    APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key: `X-API-Key: sr_...`"),
)


class Authenticator:
    """Resolves presented keys; one per app."""

    def __init__(self, keys: KeyStore | None, *, anonymous_read: bool) -> None:
        self.keys = keys
        self.anonymous_read = anonymous_read

    def presented_key(self, request: Request) -> str | None:
        """The key the request carries, or None. A malformed Authorization header is a 401."""
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthenticationError("malformed Authorization header: expected 'Bearer <API key>'")
            return token.strip()
        value = request.headers.get("x-api-key")
        if value is not None:
            if not value.strip():
                raise AuthenticationError("empty X-API-Key header")
            return value.strip()
        return None

    async def resolve(
        self, request: Request, role: Role, anonymous: Callable[[Request], bool] | None = None
    ) -> ApiKey | None:
        """The request's key if it may act as ``role``; None for an anonymous request that is
        allowed (a search with ``anonymous_read`` on, or one ``anonymous`` lets in)."""
        request.state.api_key = None
        presented = self.presented_key(request)
        if presented is None:
            if (role == "search" and self.anonymous_read) or (anonymous is not None and anonymous(request)):
                return None
            raise AuthenticationError(
                f"this endpoint needs an API key with the {role!r} role: "
                "send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            )
        key = await run_in_threadpool(self.keys.authenticate, presented) if self.keys is not None else None
        if key is None:
            raise AuthenticationError("invalid or revoked API key")
        request.state.api_key = key
        return require(key, role)

    def guard(
        self, role: Role, anonymous: Callable[[Request], bool] | None = None
    ) -> Callable[[Request], Awaitable[None]]:
        """A route guard: lets the request through if its key may act as ``role`` (or it is an
        anonymous read and those are allowed, or ``anonymous`` lets it in), else 401 or 403."""

        async def guard(request: Request) -> None:
            await self.resolve(request, role, anonymous)

        guard.__name__ = f"require_{role}"
        return guard


def actor(request: Request) -> str:
    """Who made the request, for the audit log: ``key:<key_id>`` or ``anonymous``."""
    key: ApiKey | None = getattr(request.state, "api_key", None)
    return f"key:{key.key_id}" if key is not None else "anonymous"


def from_loopback(request: Request) -> bool:
    """Whether the client's address is a loopback one (127.0.0.0/8, ::1)."""
    host = request.client.host if request.client is not None else None
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:  # not an address (a test client's name)
        return False
