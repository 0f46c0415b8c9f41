"""Plan endpoints: draft, issue, amend, close, roll over, history, sub-plans."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, status

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
from shared.dependencies import Uow
from shared.limits import Identifier
from shared.mapping import taken
from shared.security import Caller
from shared.units import UnitCode

Actor = Annotated[str, Header(alias="X-Actor", max_length=256)]


router = APIRouter(tags=["plans"])


@router.post(
    "/plans",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanOut,
    summary="Create a plan as a draft",
)
async def draft_plan(
    body: PlanIn, caller: Caller, actor: Actor = "anonymous", *, uow: Uow
) -> PlanOut:
    command = handlers.DraftPlan(body.to_plan(), province=body.province, actor=actor)
    return PlanOut.of(await handlers.draft_plan(command, uow, caller=caller))


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
async def issue_plan(
    plan_id: Identifier,
    caller: Caller,
    actor: Actor = "anonymous",
    *,
    uow: Uow,
) -> PlanOut:
    return PlanOut.of(await handlers.issue_plan(plan_id, uow, actor, caller=caller))


@router.post(
    "/plans/{plan_id}/amendments",
    response_model=PlanOut,
    summary="Move deadlines, add or remove assignees: publishes PlanAmended",
)
async def amend_plan(
    plan_id: Identifier,
    body: AmendmentIn,
    caller: Caller,
    actor: Actor = "anonymous",
    *,
    uow: Uow,
) -> PlanOut:
    amendment = taken(Amendment, body)
    return PlanOut.of(await handlers.amend_plan(plan_id, amendment, uow, actor, caller=caller))


@router.post("/plans/{plan_id}/close", response_model=PlanOut)
async def close_plan(
    plan_id: Identifier,
    body: CloseIn,
    caller: Caller,
    actor: Actor = "anonymous",
    *,
    uow: Uow,
) -> PlanOut:
    return PlanOut.of(await handlers.close_plan(plan_id, body.reason, uow, actor, caller=caller))


@router.post(
    "/plans/{plan_id}/roll-over",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanOut,
    summary="Copy into another year as a new draft",
)
async def roll_over(
    plan_id: Identifier,
    body: RollOverIn,
    caller: Caller,
    actor: Actor = "anonymous",
    *,
    uow: Uow,
) -> PlanOut:
    return PlanOut.of(await handlers.roll_over_plan(plan_id, body.year, uow, actor, caller=caller))


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
    plan_id: Identifier,
    body: SubPlanRegistrationIn,
    caller: Caller,
    actor: Actor = "anonymous",
    *,
    uow: Uow,
) -> dict[str, str]:
    command = taken(handlers.RegisterSubPlan, body, parent_plan_id=plan_id, actor=actor)
    await handlers.register_sub_plan(command, uow, caller=caller)
    return {"parent_plan_id": plan_id, "unit_code": body.unit_code}
