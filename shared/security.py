"""API tokens and the audit log in a service's own database, and the HTTP side of both.

``QCDC_AUTH=tokens`` (the default: compose, the Docker image, production) requires
``Authorization: Bearer <token>`` on every API call; ``QCDC_AUTH=open`` (set only by
``qcdc up``, for development) lets every request act as an administrator of everything,
serves on the loopback interface only, and says so loudly at start-up.

Who calls is decided once, by :class:`Authentication` (ASGI middleware), before the
request's body is read: an unauthenticated request is a 401 whatever its body, and is
audited as anonymous. The caller then travels explicitly: routes take it with the
:data:`Caller` dependency and hand it to the handlers, which take it as an argument. There
is no ambient or default caller: a route outside the middleware has none, and is refused."""

from __future__ import annotations

import functools
import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
import structlog
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth import (
    OPEN,
    TOKEN_PREFIX,
    Principal,
    Role,
    TokenRecord,
    Unauthenticated,
    hash_token,
)
from shared.bus.envelope import Envelope
from shared.db import SecurityTables, matching
from shared.events import TokenIssued, TokenRevoked
from shared.mapping import RowMapping
from shared.settings import ServiceSettings
from shared.uow import UnitOfWork

if TYPE_CHECKING:
    from shared.oidc import OidcVerifier

log = structlog.get_logger(__name__)
ANONYMOUS = Principal("anonymous", "-", (), Role.INTEGRATOR)
"""Who the audit log names for a request without a valid token."""
PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/livez",
        "/readyz",
        "/metrics",
        "/docs",
        "/docs/oauth2-redirect",
        "/openapi.json",
        "/asyncapi.yaml",
    }
)
"""Health, metrics and the APIs' own descriptions: all that answers without a token
(metrics carry counts by route, consumer and status, never ids or personal data)."""
PUBLIC_PREFIX = "/docs/static/"
"""Swagger UI's own files (shared/static/swagger-ui), public like /docs."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
TOKEN_CACHE_SECONDS = 5.0
"""How long a service trusts a token it looked up without looking again. A revocation
handled by this process takes effect at once (:func:`on_token_revoked`); one handled only by
another replica of the service, within this time. Expiry is checked on every request."""
TOKEN_CACHE_SIZE = 10_000


class TokenCache:
    """The token records one service looked up recently, by token hash: without it every
    request of a token holder began with a transaction of its own to read its token.

    Only tokens found are kept (an unknown token is looked up again: it may be issued
    meanwhile). A revocation handled in this process invalidates every entry of every
    cache, once its transaction has committed, and any lookup that began before that
    commit is not kept (:attr:`generation`), so a revoked token is never served from here.
    """

    generation = 0
    """Bumped by each revocation handled in this process (all services in it)."""

    def __init__(self, seconds: float = TOKEN_CACHE_SECONDS, size: int = TOKEN_CACHE_SIZE) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: dict[str, tuple[float, int, TokenRecord]] = {}

    def get(self, token_hash: str) -> TokenRecord | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        until, generation, record = entry
        if generation != TokenCache.generation or time.monotonic() >= until:
            del self._entries[token_hash]
            return None
        return record

    def put(self, token_hash: str, record: TokenRecord, generation: int) -> None:
        """Keep ``record``, read when :attr:`generation` was ``generation``."""
        if generation != TokenCache.generation:
            return  # a revocation committed while it was read: it may be stale
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[token_hash] = (time.monotonic() + self.seconds, generation, record)

    @staticmethod
    def invalidate() -> None:
        TokenCache.generation += 1


@functools.cache
def _records(table: sa.Table) -> tuple[RowMapping[Principal], RowMapping[TokenRecord]]:
    """A row of a service's ``api_tokens`` as a record and the principal in it (every
    service has the table, each its own, all alike)."""
    return RowMapping(Principal, table), RowMapping(TokenRecord, table, given=("principal",))


class TokenStore:
    def __init__(self, tables: SecurityTables, session: AsyncSession) -> None:
        self.table = tables.tokens
        self.session = session

    async def issued(self, event: TokenIssued, now: datetime) -> None:
        exists = await self.session.scalar(
            sa.select(self.table.c.token_id).where(self.table.c.token_id == event.token_id)
        )
        if exists:
            return
        # The event carries the row: each column of its name (not yet revoked).
        stored = event.model_dump(include=set(self.table.c.keys()))
        await self.session.execute(self.table.insert().values(**stored, created_at=now))

    async def revoked(self, event: TokenRevoked) -> None:
        await self.session.execute(
            self.table.update()
            .where(self.table.c.token_id == event.token_id, self.table.c.revoked_at.is_(None))
            .values(revoked_at=event.revoked_at)
        )

    async def find(self, token: str) -> TokenRecord | None:
        return await self.find_hash(hash_token(token))

    async def find_hash(self, token_hash: str) -> TokenRecord | None:
        row = (
            await self.session.execute(
                sa.select(self.table).where(self.table.c.token_hash == token_hash)
            )
        ).first()
        if row is None:
            return None
        principals, records = _records(self.table)
        return records.from_row(row, principal=principals.from_row(row))

    async def all(self) -> list[dict[str, Any]]:
        rows = (await self.session.execute(sa.select(self.table))).all()
        return [_shown(row) for row in rows]

    async def get(self, token_id: str) -> dict[str, Any] | None:
        query = sa.select(self.table).where(self.table.c.token_id == token_id)
        row = (await self.session.execute(query)).first()
        return _shown(row) if row is not None else None


def _shown(row: Any) -> dict[str, Any]:
    """A token as the API shows it: never its hash."""
    return {k: v for k, v in row._mapping.items() if k != "token_hash"}


async def find_audit(
    session: AsyncSession,
    tables: SecurityTables,
    *,
    unit: str | None,
    action: str | None,
    outcome: str | None,
    since: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    table = tables.audit
    query = sa.select(table).order_by(table.c.id.desc()).limit(limit)
    query = matching(query, table, unit_code=unit, action=action, outcome=outcome)
    if since:
        query = query.where(table.c.at >= since)
    return [dict(row._mapping) for row in (await session.execute(query)).all()]


def authorize(
    caller: Principal, *roles: Role, unit: str, doing: str, unit_path: list[str] | None = None
) -> None:
    """The caller has one of ``roles`` and acts for ``unit`` (an administrator: for any unit
    of its subtree, when ``unit_path`` is known); otherwise :class:`Forbidden`."""
    caller.require(*roles)
    caller.require_unit(unit, doing, unit_path)


def audit(uow: UnitOfWork, caller: Principal, action: str, target: str = "") -> None:
    """Record, in the unit of work's transaction, that the caller did ``action``."""
    uow.audit(caller, action, target)


async def on_token_issued(event: TokenIssued, _envelope: Envelope, uow: UnitOfWork) -> None:
    assert uow.security is not None
    await TokenStore(uow.security, uow.session).issued(event, uow.clock.now())


async def on_token_revoked(event: TokenRevoked, _envelope: Envelope, uow: UnitOfWork) -> None:
    assert uow.security is not None
    await TokenStore(uow.security, uow.session).revoked(event)
    # Now (nothing cached from here on is trusted) and once the revocation is visible to
    # every lookup (one that read the token before that is not kept).
    TokenCache.invalidate()
    uow.after_commit(TokenCache.invalidate)


class Authentication:
    """ASGI middleware: decides who calls before anything reads the request's body, so a
    request without a valid token is a 401 (never a 400 or 422 about a body nobody may
    send), audited as anonymous. The caller is left in ``request.state.principal``."""

    def __init__(self, app: ASGIApp, runtime: Any) -> None:
        self.app = app
        self.runtime = runtime
        self.tokens = TokenCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _public(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            principal = await identify(request, self.runtime, self.tokens)
        except Unauthenticated as exc:
            await _audit_refusal(self.runtime, request, "unauthenticated", exc.reason)
            headers = {"WWW-Authenticate": "Bearer"}
            await _answer(send, 401, exc.reason, headers)
            return
        # A token store (this service's database) that is away raises on: the
        # DatabaseOutage middleware around this one answers 503, as for any other route.
        scope.setdefault("state", {})["principal"] = principal
        if principal.role is Role.INTEGRATOR and request.method not in ("GET", "HEAD"):
            reason = "an integrator token only reads"
            await _audit_refusal(self.runtime, request, "forbidden", reason)
            await _answer(send, 403, reason)
            return
        await self.app(scope, receive, send)


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIX)


async def _answer(
    send: Send, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    """A JSON error in the shape every service uses, sent without touching the body."""
    body = json.dumps({"error": {"message": message}}, ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def identify(request: Request, runtime: Any, cache: TokenCache | None = None) -> Principal:
    """The caller, from its bearer token; in open mode (``qcdc up`` only) the open
    development principal, which the service announced at start."""
    if runtime.settings.auth == "open":
        return OPEN
    if runtime.security is None:
        raise Unauthenticated("this service cannot check tokens")
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an API token: Authorization: Bearer <token>")
    return await _principal_of(request, runtime, token.strip(), cache or TokenCache())


async def caller(request: Request) -> Principal:
    """FastAPI dependency: the caller :class:`Authentication` identified. A route it did not
    guard has no caller, and is refused rather than given one. (``async``: a plain ``def``
    dependency runs in a worker thread.)"""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise Unauthenticated("no caller was identified for this request")
    return principal


Caller = Annotated[Principal, Depends(caller)]
"""A route's explicit caller: ``async def route(..., caller: Caller)``."""


def check_open_mode(settings: ServiceSettings, host: str) -> None:
    """Open mode answers anyone as an administrator of everything: refuse to serve it on
    anything but the loopback interface (the Docker image listens on all interfaces)."""
    if settings.auth == "open" and host not in LOOPBACK_HOSTS:
        raise SystemExit(
            f"QCDC_AUTH=open serves the API without tokens and may only listen on the "
            f"loopback interface, not on {host}; set QCDC_AUTH=tokens (the default)"
        )


async def _principal_of(request: Request, runtime: Any, token: str, cache: TokenCache) -> Principal:
    """An API token of ours, or else a token of the identity provider, if one is set up."""
    oidc: OidcVerifier | None = getattr(request.app.state, "oidc", None)
    if oidc is not None and not token.startswith(TOKEN_PREFIX):
        return await oidc.principal(token)
    token_hash = hash_token(token)
    record = cache.get(token_hash)
    if record is None:
        generation = TokenCache.generation
        async with runtime.uow() as uow:
            record = await TokenStore(runtime.security, uow.session).find_hash(token_hash)
        if record is None:
            raise Unauthenticated("unknown token")
        cache.put(token_hash, record, generation)
    return record.check(runtime.now_clock.now())


def oidc_verifier(settings: ServiceSettings) -> OidcVerifier | None:
    if settings.auth != "tokens" or not settings.oidc_issuer:
        return None
    # Imported only when an identity provider is set up: JWT and crypto cost every start.
    from shared.oidc import OidcConfig, OidcVerifier

    return OidcVerifier(
        OidcConfig(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            unit_claim=settings.oidc_unit_claim,
            role_claim=settings.oidc_role_claim,
        )
    )


async def audit_forbidden(runtime: Any, request: Request, reason: str) -> None:
    await _audit_refusal(runtime, request, "forbidden", reason)


async def _audit_refusal(runtime: Any, request: Request, outcome: str, reason: str) -> None:
    principal = getattr(request.state, "principal", None) or ANONYMOUS
    try:
        async with runtime.uow() as uow:
            uow.audit(
                principal, f"{request.method} {request.url.path}", outcome=outcome, reason=reason
            )
            await uow.commit()
    except Exception:  # a refusal must still be answered if the audit cannot be written
        log.exception("could not audit a refusal", reason=reason)
