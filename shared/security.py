"""API tokens and the audit log in a service's own database, and the HTTP side of both.

``QCDC_AUTH=tokens`` (compose, production) requires ``Authorization: Bearer <token>`` on
every API call; ``QCDC_AUTH=open`` (the embedded development default) lets every request
act as an administrator of everything, and says so in the logs at start-up."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import (
    OPEN,
    TOKEN_PREFIX,
    Forbidden,
    Principal,
    Role,
    TokenRecord,
    Unauthenticated,
    hash_token,
)
from shared.bus.envelope import Envelope
from shared.db import SecurityTables
from shared.events import TokenIssued, TokenRevoked
from shared.settings import ServiceSettings
from shared.uow import UnitOfWork

if TYPE_CHECKING:
    from shared.oidc import OidcVerifier

log = structlog.get_logger(__name__)
_principal: ContextVar[Principal] = ContextVar("principal", default=OPEN)


def current_principal() -> Principal:
    return _principal.get()


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
        await self.session.execute(
            self.table.insert().values(
                token_id=event.token_id,
                token_hash=event.token_hash,
                unit_code=event.unit_code,
                unit_path=list(event.unit_path),
                role=event.role,
                expires_at=event.expires_at,
                created_at=now,
            )
        )

    async def revoked(self, event: TokenRevoked) -> None:
        await self.session.execute(
            self.table.update()
            .where(self.table.c.token_id == event.token_id, self.table.c.revoked_at.is_(None))
            .values(revoked_at=event.revoked_at)
        )

    async def find(self, token: str) -> TokenRecord | None:
        row = (
            await self.session.execute(
                sa.select(self.table).where(self.table.c.token_hash == hash_token(token))
            )
        ).first()
        if row is None:
            return None
        return TokenRecord(
            token_id=row.token_id,
            token_hash=row.token_hash,
            unit_code=row.unit_code,
            unit_path=tuple(row.unit_path),
            role=Role(row.role),
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )

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
    if unit:
        query = query.where(table.c.unit_code == unit)
    if action:
        query = query.where(table.c.action == action)
    if outcome:
        query = query.where(table.c.outcome == outcome)
    if since:
        query = query.where(table.c.at >= since)
    return [dict(row._mapping) for row in (await session.execute(query)).all()]


def authorize(*roles: Role, unit: str, doing: str, unit_path: list[str] | None = None) -> None:
    """The caller has one of ``roles`` and acts for ``unit`` (an administrator: for any unit
    of its subtree, when ``unit_path`` is known); otherwise :class:`Forbidden`."""
    principal = current_principal()
    principal.require(*roles)
    principal.require_unit(unit, doing, unit_path)


def audit(uow: UnitOfWork, action: str, target: str = "") -> None:
    """Record, in the unit of work's transaction, that the caller did ``action``."""
    uow.audit(current_principal(), action, target)


async def on_token_issued(event: TokenIssued, _envelope: Envelope, uow: UnitOfWork) -> None:
    assert uow.security is not None
    await TokenStore(uow.security, uow.session).issued(event, uow.clock.now())


async def on_token_revoked(event: TokenRevoked, _envelope: Envelope, uow: UnitOfWork) -> None:
    assert uow.security is not None
    await TokenStore(uow.security, uow.session).revoked(event)


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the caller, from its bearer token (or everyone, in open mode)."""
    runtime = request.app.state.runtime
    if runtime.settings.auth == "open" or runtime.security is None:
        _principal.set(OPEN)
        return OPEN
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send an API token: Authorization: Bearer <token>")
        principal = await _principal_of(request, runtime, token.strip())
    except Unauthenticated as exc:
        await _audit_refusal(runtime, request, "unauthenticated", exc.reason)
        raise
    _principal.set(principal)
    request.state.principal = principal
    if principal.role is Role.INTEGRATOR and request.method not in ("GET", "HEAD"):
        raise Forbidden("an integrator token only reads")
    return principal


async def _principal_of(request: Request, runtime: Any, token: str) -> Principal:
    """An API token of ours, or else a token of the identity provider, if one is set up."""
    oidc: OidcVerifier | None = getattr(request.app.state, "oidc", None)
    if oidc is not None and not token.startswith(TOKEN_PREFIX):
        return await oidc.principal(token)
    async with runtime.uow() as uow:
        record = await TokenStore(runtime.security, uow.session).find(token)
    if record is None:
        raise Unauthenticated("unknown token")
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
    principal = getattr(request.state, "principal", None) or Principal(
        "anonymous", "-", (), Role.INTEGRATOR
    )
    try:
        async with runtime.uow() as uow:
            uow.audit(
                principal, f"{request.method} {request.url.path}", outcome=outcome, reason=reason
            )
            await uow.commit()
    except Exception:  # a refusal must still be answered if the audit cannot be written
        log.exception("could not audit a refusal", reason=reason)
