"""What the plans API reads: units, plans, requests, difficulties and tokens."""

from __future__ import annotations

from typing import Any

from services.plans.adapters.repositories import (
    DifficultyRepository,
    PlanRepository,
    ReportRequestRepository,
    UnitRepository,
)
from services.plans.domain.plans import Plan
from services.plans.domain.units import Unit
from shared.auth import Principal, Role
from shared.errors import Missing
from shared.security import TokenStore
from shared.uow import UnitOfWork


async def units(
    uow: UnitOfWork,
    *,
    kind: str | None = None,
    under: str | None = None,
    active: bool | None = None,
) -> list[Unit]:
    """The registry, or the units of a kind, strictly below a unit, (in)active."""
    registry = await uow.repository(UnitRepository).all()
    return [
        u
        for u in registry.values()
        if (kind is None or u.kind == kind)
        and (under is None or (u.is_within(under) and u.code != under))
        and (active is None or u.active == active)
    ]


async def unit(code: str, uow: UnitOfWork) -> Unit:
    found = await uow.repository(UnitRepository).get(code)
    if found is None:
        raise Missing(f"no unit {code}")
    return found


async def plans(
    uow: UnitOfWork,
    *,
    year: int | None = None,
    issuing_unit: str | None = None,
    status: str | None = None,
) -> list[Plan]:
    return await uow.repository(PlanRepository).find(
        year=year, issuing_unit=issuing_unit, status=status
    )


async def plan(plan_id: str, uow: UnitOfWork) -> Plan:
    found = await uow.repository(PlanRepository).get(plan_id)
    if found is None:
        raise Missing(f"no plan {plan_id}")
    return found


async def plan_history(plan_id: str, uow: UnitOfWork) -> list[dict[str, Any]]:
    await plan(plan_id, uow)
    return await uow.repository(PlanRepository).history(plan_id)


async def report_requests(uow: UnitOfWork, requesting_unit: str | None) -> list[dict[str, Any]]:
    return await uow.repository(ReportRequestRepository).find(requesting_unit)


async def difficulties(uow: UnitOfWork, plan_id: str | None) -> list[dict[str, Any]]:
    return await uow.repository(DifficultyRepository).find(plan_id)


async def difficulty(difficulty_id: str, uow: UnitOfWork) -> dict[str, Any]:
    found = await uow.repository(DifficultyRepository).get(difficulty_id)
    if found is None:
        raise Missing(f"no difficulty {difficulty_id}")
    return found


async def tokens(uow: UnitOfWork, *, caller: Principal) -> list[dict[str, Any]]:
    """Tokens known here (never the tokens themselves) that the administrator covers."""
    caller.require(Role.ADMINISTRATOR)
    assert uow.security is not None
    found = await TokenStore(uow.security, uow.session).all()
    return [t for t in found if caller.covers(list(t["unit_path"]))]
