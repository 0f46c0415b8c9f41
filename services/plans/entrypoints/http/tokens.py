"""API token endpoints (administrators)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from services.plans.handlers import queries
from services.plans.handlers import tokens as handlers
from shared.auth import Role
from shared.dependencies import Uow
from shared.limits import Identifier
from shared.security import Caller
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


router = APIRouter(tags=["tokens"])


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API token bound to a unit and a role; shown once",
)
async def create(body: TokenIn, caller: Caller, uow: Uow) -> dict[str, str]:
    command = handlers.CreateToken(body.unit_code, body.role, body.valid_days)
    created = await handlers.create_token(command, uow, caller=caller)
    return {"token_id": created.token_id, "token": created.token}


@router.get("/tokens", summary="Tokens known here (never the tokens themselves)")
async def listing(caller: Caller, uow: Uow) -> list[dict[str, Any]]:
    return await queries.tokens(uow, caller=caller)


@router.delete("/tokens/{token_id}", summary="Revoke a token")
async def revoke(token_id: Identifier, caller: Caller, uow: Uow) -> dict[str, str]:
    await handlers.revoke_token(token_id, uow, caller=caller)
    return {"token_id": token_id, "status": "revoked"}
