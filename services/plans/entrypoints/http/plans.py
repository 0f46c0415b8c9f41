"""Plan endpoints: draft, issue, amend, close, roll over, history, sub-plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, status

from services.plans.domain.plans import Amendment
from services.plans.entrypoints.schemas import (
    AmendmentIn,
    CloseIn,
    PlanIn,
    PlanOut,
    RollOverIn,
    SubPlanRegistrationIn,
)
from services.plans.handlers import plans as handlers
from services.plans.handlers import queries
from shared import openapi
from shared.auth import Principal
from shared.dependencies import Uow
from shared.limits import Identifier
from shared.mapping import taken
from shared.security import Caller
from shared.units import UnitCode


@dataclass(frozen=True)
class Planner:
    """Who changes a plan: the caller, and the person its history names (``X-Actor``)."""

    caller: Principal
    actor: str


def planner(
    caller: Caller, actor: Annotated[str, Header(alias="X-Actor", max_length=256)] = "anonymous"
) -> Planner:
    return Planner(caller, actor)


Acting = Annotated[Planner, Depends(planner)]


router = APIRouter(tags=["plans"])


@router.post(
    "/plans",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanOut,
    summary="Create a plan as a draft",
)
async def draft_plan(body: PlanIn, who: Acting, uow: Uow) -> PlanOut:
    command = handlers.DraftPlan(body.to_plan(), province=body.province, actor=who.actor)
    return PlanOut.of(await handlers.draft_plan(command, uow, caller=who.caller))


@router.get("/plans", response_model=list[PlanOut])
async def list_plans(
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    issuing_unit: UnitCode | None = None,
    status: Annotated[str | None, Query(pattern="^(draft|issued|amended|closed)$")] = None,
    *,
    uow: Uow,
) -> list[PlanOut]:
    found = await queries.plans(uow, year=year, issuing_unit=issuing_unit, status=status)
    return [PlanOut.of(p) for p in found]


@router.get("/plans/{plan_id}", response_model=PlanOut)
async def get_plan(plan_id: Identifier, uow: Uow) -> PlanOut:
    return PlanOut.of(await queries.plan(plan_id, uow))


@router.post(
    "/plans/{plan_id}/issue",
    response_model=PlanOut,
    summary="Issue a draft: expands its assignees and publishes PlanIssued",
)
async def issue_plan(plan_id: Identifier, who: Acting, uow: Uow) -> PlanOut:
    return PlanOut.of(await handlers.issue_plan(plan_id, uow, who.actor, caller=who.caller))


@router.post(
    "/plans/{plan_id}/amendments",
    response_model=PlanOut,
    summary="Move deadlines, add or remove assignees: publishes PlanAmended",
)
async def amend_plan(plan_id: Identifier, body: AmendmentIn, who: Acting, uow: Uow) -> PlanOut:
    amendment = taken(Amendment, body)
    return PlanOut.of(
        await handlers.amend_plan(plan_id, amendment, uow, who.actor, caller=who.caller)
    )


@router.post("/plans/{plan_id}/close", response_model=PlanOut)
async def close_plan(plan_id: Identifier, body: CloseIn, who: Acting, uow: Uow) -> PlanOut:
    return PlanOut.of(
        await handlers.close_plan(plan_id, body.reason, uow, who.actor, caller=who.caller)
    )


@router.post(
    "/plans/{plan_id}/roll-over",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanOut,
    summary="Copy into another year as a new draft",
)
async def roll_over(plan_id: Identifier, body: RollOverIn, who: Acting, uow: Uow) -> PlanOut:
    return PlanOut.of(
        await handlers.roll_over_plan(plan_id, body.year, uow, who.actor, caller=who.caller)
    )


@router.get("/plans/{plan_id}/history")
async def history(plan_id: Identifier, uow: Uow) -> list[dict[str, Any]]:
    return await queries.plan_history(plan_id, uow)


@router.get(
    "/plans/{plan_id}/sub-plans",
    summary="Which assignees have and have not registered their own plans",
)
async def sub_plans(plan_id: Identifier, uow: Uow) -> dict[str, Any]:
    found = await handlers.sub_plan_status(plan_id, uow)
    return {"registered": found.registered, "missing": found.missing}


@router.post(
    "/plans/{plan_id}/sub-plans",
    status_code=status.HTTP_201_CREATED,
    summary="Register an assignee's own implementation plan (issued elsewhere)",
    responses=openapi.conflict("The unit has already registered its plan."),
)
async def register_sub_plan(
    plan_id: Identifier, body: SubPlanRegistrationIn, who: Acting, uow: Uow
) -> dict[str, str]:
    command = taken(handlers.RegisterSubPlan, body, parent_plan_id=plan_id, actor=who.actor)
    await handlers.register_sub_plan(command, uow, caller=who.caller)
    return {"parent_plan_id": plan_id, "unit_code": body.unit_code}
