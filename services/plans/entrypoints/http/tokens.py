"""API token endpoints (administrators)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from services.plans.handlers import tokens as handlers
from shared.auth import Role
from shared.limits import Identifier
from shared.runtime import Runtime
from shared.security import Caller, TokenStore
from shared.units import UnitCode


class TokenIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"unit_code": "X30337", "role": "submitter", "valid_days": 365}]
        },
    )

    unit_code: UnitCode
    role: Role
    valid_days: int | None = Field(365, ge=1, le=3650)


def token_routes(runtime: Runtime) -> APIRouter:
    router = APIRouter(tags=["tokens"])

    @router.post(
        "/tokens",
        status_code=status.HTTP_201_CREATED,
        summary="Create an API token bound to a unit and a role; shown once",
    )
    async def create(body: TokenIn, caller: Caller) -> dict[str, str]:
        command = handlers.CreateToken(body.unit_code, body.role, body.valid_days)
        async with runtime.uow() as uow:
            created = await handlers.create_token(command, uow, caller=caller)
        return {"token_id": created.token_id, "token": created.token}

    @router.get("/tokens", summary="Tokens known here (never the tokens themselves)")
    async def listing(caller: Caller) -> list[dict[str, Any]]:
        caller.require(Role.ADMINISTRATOR)
        assert runtime.security is not None
        async with runtime.uow() as uow:
            found = await TokenStore(runtime.security, uow.session).all()
        return [t for t in found if caller.covers(list(t["unit_path"]))]

    @router.delete("/tokens/{token_id}", summary="Revoke a token")
    async def revoke(token_id: Identifier, caller: Caller) -> dict[str, str]:
        async with runtime.uow() as uow:
            await handlers.revoke_token(token_id, uow, caller=caller)
        return {"token_id": token_id, "status": "revoked"}

    return router
