"""API tokens: created and revoked here, announced to every service by events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from services.plans.adapters.repositories import UnitRepository
from shared.auth import Principal, Role, hash_token, new_token
from shared.errors import Missing, Refused
from shared.events import TokenIssued, TokenRevoked
from shared.security import TokenStore, audit
from shared.uow import UnitOfWork


@dataclass(frozen=True)
class CreateToken:
    unit_code: str
    role: Role
    valid_days: int | None = 365


@dataclass(frozen=True)
class CreatedToken:
    token_id: str
    token: str
    """Shown once: only its hash is kept."""


async def create_token(command: CreateToken, uow: UnitOfWork, *, caller: Principal) -> CreatedToken:
    unit = await uow.repository(UnitRepository).get(command.unit_code)
    if unit is None or not unit.active:
        raise Refused(f"unknown unit {command.unit_code}", field="unit_code")
    principal = caller
    principal.require(Role.ADMINISTRATOR)
    principal.require_subtree(unit.path, "create tokens")
    if command.valid_days is not None and command.valid_days <= 0:
        raise Refused("a token is valid for at least one day", field="valid_days")
    token, token_id = new_token(), str(uuid.uuid4())
    now = uow.clock.now()
    uow.publish(
        TokenIssued(
            unit_path=unit.path,
            token_id=token_id,
            token_hash=hash_token(token),
            unit_code=unit.code,
            role=command.role.value,
            expires_at=now + timedelta(days=command.valid_days) if command.valid_days else None,
            issued_by=principal.token_id,
        )
    )
    audit(uow, caller, "token.created", f"{token_id} {unit.code} {command.role.value}")
    await uow.commit()
    return CreatedToken(token_id, token)


async def revoke_token(token_id: str, uow: UnitOfWork, *, caller: Principal) -> None:
    assert uow.security is not None
    token = await TokenStore(uow.security, uow.session).get(token_id)
    if token is None:
        raise Missing(f"no token {token_id}")
    unit_path = list(token["unit_path"])
    principal = caller
    principal.require(Role.ADMINISTRATOR)
    principal.require_subtree(unit_path, "revoke tokens")
    uow.publish(
        TokenRevoked(
            unit_path=unit_path,
            token_id=token_id,
            revoked_at=uow.clock.now(),
            revoked_by=principal.token_id,
        )
    )
    audit(uow, caller, "token.revoked", token_id)
    await uow.commit()
