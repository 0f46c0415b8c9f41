"""Unit registry endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from services.plans.entrypoints.schemas import DissolveIn, UnitIn, UnitOut, UnitPatch
from services.plans.handlers import queries
from services.plans.handlers import units as handlers
from shared import openapi
from shared.dependencies import Uow
from shared.mapping import taken
from shared.security import Caller
from shared.units import UnitCode

router = APIRouter(tags=["units"])


@router.post(
    "/units",
    status_code=status.HTTP_201_CREATED,
    response_model=UnitOut,
    responses=openapi.conflict("A unit with this code is already registered."),
)
async def register_unit(body: UnitIn, caller: Caller, uow: Uow) -> UnitOut:
    command = taken(handlers.RegisterUnit, body)
    return UnitOut.of(await handlers.register_unit(command, uow, caller=caller))


@router.get("/units", response_model=list[UnitOut])
async def list_units(
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    under: UnitCode | None = None,
    active: bool | None = None,
    *,
    caller: Caller,
    uow: Uow,
) -> list[UnitOut]:
    found = await queries.units(uow, kind=kind, under=under, active=active)
    return [UnitOut.of(u, with_contacts=caller.covers(u.path)) for u in found]


@router.get("/units/{code}", response_model=UnitOut)
async def get_unit(code: UnitCode, caller: Caller, uow: Uow) -> UnitOut:
    unit = await queries.unit(code, uow)
    # The registry is every token's to read; a unit's people's addresses, its subtree's.
    return UnitOut.of(unit, with_contacts=caller.covers(unit.path))


@router.patch("/units/{code}", response_model=UnitOut)
async def update_unit(code: UnitCode, body: UnitPatch, caller: Caller, uow: Uow) -> UnitOut:
    command = taken(handlers.UpdateUnit, body, code=code)
    return UnitOut.of(await handlers.update_unit(command, uow, caller=caller))


@router.post(
    "/units/{code}/dissolve",
    response_model=UnitOut,
    summary="Dissolve a unit (merged or abolished); its history is kept",
)
async def dissolve_unit(code: UnitCode, body: DissolveIn, caller: Caller, uow: Uow) -> UnitOut:
    return UnitOut.of(await handlers.dissolve_unit(code, body.on, uow, caller=caller))
