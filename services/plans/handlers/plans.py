"""Handlers for plans: draft, issue, amend, close, roll over, and the sub-plan register."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from services.plans.adapters.repositories import PlanRepository, SubPlanRepository, UnitRepository
from services.plans.domain.plans import (
    Amendment,
    Plan,
    PlanRefused,
    PlanStatus,
    check_not_before_parent,
)
from services.plans.domain.requests import SubPlan
from services.plans.domain.units import Unit, UnitRefused, resolve_reference
from shared.auth import Principal, Role
from shared.errors import Conflict, Missing
from shared.events import Event, SubPlanRegistered
from shared.mapping import shown
from shared.security import audit, authorize
from shared.uow import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DraftPlan:
    """A plan as written: units may be named by reference (``kind:``, ``tag:``), resolved
    within ``province`` (defaults to the root of the issuing unit when it is a code)."""

    plan: Plan
    province: str | None = None
    actor: str = "system"


@dataclass(frozen=True)
class RegisterSubPlan(SubPlan):
    actor: str = "system"


@dataclass(frozen=True)
class SubPlanStatus:
    registered: list[dict[str, Any]]
    missing: list[str]


async def draft_plan(command: DraftPlan, uow: UnitOfWork, *, caller: Principal) -> Plan:
    registry = await uow.repository(UnitRepository).all()
    plan = _resolved(command.plan, command.province, registry)
    _may_plan_for(caller, plan, registry)
    plan.id = str(uuid.uuid4())
    plan.status = PlanStatus.DRAFT
    plans = uow.repository(PlanRepository)
    if plan.parent_plan_id:
        parent = await plans.get(plan.parent_plan_id)
        if parent is None:
            raise PlanRefused(f"no plan {plan.parent_plan_id}", field="parent_plan_id")
        check_not_before_parent(plan.issued_on, parent, "issued_on")
    now = uow.clock.now()
    await plans.add(plan, now)
    await plans.record(
        plan.id,
        at=now,
        actor=command.actor,
        action="drafted",
        details={"doc_number": plan.doc_number},
    )
    audit(uow, caller, "plan.drafted", plan.id)
    await uow.commit()
    return plan


def _resolved(plan: Plan, province: str | None, registry: dict[str, Unit]) -> Plan:
    scope = _scope(plan.issuing_unit, province, registry)

    def code(reference: str, where: str) -> str:
        try:
            return resolve_reference(reference, scope, registry)
        except UnitRefused as exc:
            raise PlanRefused(exc.message, field=where) from exc

    issuer = code(plan.issuing_unit, "issuing_unit")
    if issuer not in registry:
        raise PlanRefused(f"unknown issuing unit {issuer}", field="issuing_unit")
    rule = plan.assignee_rule
    return replace(
        plan,
        issuing_unit=issuer,
        assignee_rule=replace(
            rule,
            units=tuple(code(u, "assignees.units") for u in rule.units),
            subtrees=tuple(code(u, "assignees.subtrees") for u in rule.subtrees),
        ),
        schedule=[
            replace(e, receiving_unit=code(e.receiving_unit, f"schedule.{i}.receiving_unit"))
            for i, e in enumerate(plan.schedule)
        ],
        difficulties_to=(
            code(plan.difficulties_to, "difficulties_to") if plan.difficulties_to else None
        ),
        events=[],
    )


def _scope(issuing: str, province: str | None, registry: dict[str, Unit]) -> Unit | None:
    if province:
        if province not in registry:
            raise PlanRefused(f"unknown province {province}", field="province")
        return registry[province]
    if issuing in registry:
        return registry[registry[issuing].path[0]]
    return None


def _may_plan_for(caller: Principal, plan: Plan, registry: dict[str, Unit]) -> None:
    """Planners issue and change plans only as their own unit."""
    _planner_of(caller, plan.issuing_unit, registry.get(plan.issuing_unit), "issue plans")


def _planner_of(caller: Principal, code: str, unit: Unit | None, doing: str) -> None:
    """A planner of unit ``code`` (an administrator: of a subtree holding it, when known)."""
    path = unit.path if unit else None
    authorize(caller, Role.PLANNER, Role.ADMINISTRATOR, unit=code, doing=doing, unit_path=path)


async def _plan(plans: PlanRepository, plan_id: str) -> Plan:
    plan = await plans.get(plan_id)
    if plan is None:
        raise Missing(f"no plan {plan_id}")
    return plan


async def _own_plan(
    uow: UnitOfWork, plan_id: str, caller: Principal
) -> tuple[PlanRepository, Plan, dict[str, Unit]]:
    """The plan a caller changes (only as its issuing unit's planner), with the registry."""
    plans = uow.repository(PlanRepository)
    plan = await _plan(plans, plan_id)
    registry = await uow.repository(UnitRepository).all()
    _may_plan_for(caller, plan, registry)
    return plans, plan, registry


async def _keep(
    uow: UnitOfWork,
    plans: PlanRepository,
    plan: Plan,
    event: Event,
    actor: str,
    action: str,
    details: dict[str, Any],
    *,
    caller: Principal,
    now: datetime | None = None,
) -> None:
    """Store a plan's change with its line of history and its event, and audit it as
    ``plan.<action>``; the caller commits."""
    now = now or uow.clock.now()
    await plans.save(plan, now)
    await plans.record(plan.id, at=now, actor=actor, action=action, details=details)
    uow.publish(event)
    audit(uow, caller, f"plan.{action}", plan.id)


async def issue_plan(
    plan_id: str, uow: UnitOfWork, actor: str = "system", *, caller: Principal
) -> Plan:
    plans, plan, registry = await _own_plan(uow, plan_id, caller)
    parent = await _plan(plans, plan.parent_plan_id) if plan.parent_plan_id else None
    event = plan.issue(registry, parent)
    details = {"assignees": plan.assignees}
    await _keep(uow, plans, plan, event, actor, "issued", details, caller=caller)
    if parent is not None:
        await _register_sub_plan(
            RegisterSubPlan(
                parent.id,
                plan.issuing_unit,
                plan.doc_number,
                plan.issued_on,
                plan.title,
                plan.id,
                actor,
            ),
            uow,
        )
    await uow.commit()
    log.info("plan issued", plan_id=plan.id, assignees=len(plan.assignees))
    return plan


async def amend_plan(
    plan_id: str,
    amendment: Amendment,
    uow: UnitOfWork,
    actor: str = "system",
    *,
    caller: Principal,
) -> Plan:
    plans, plan, registry = await _own_plan(uow, plan_id, caller)
    now = uow.clock.now()
    event = plan.amend(amendment, registry, now)
    details = event.model_dump(mode="json", exclude={"unit_path"})
    await _keep(uow, plans, plan, event, actor, "amended", details, caller=caller, now=now)
    await uow.commit()
    return plan


async def close_plan(
    plan_id: str, reason: str, uow: UnitOfWork, actor: str = "system", *, caller: Principal
) -> Plan:
    plans, plan, registry = await _own_plan(uow, plan_id, caller)
    now = uow.clock.now()
    event = plan.close(reason, now, registry)
    await _keep(
        uow, plans, plan, event, actor, "closed", {"reason": reason}, caller=caller, now=now
    )
    await uow.commit()
    return plan


async def roll_over_plan(
    plan_id: str, year: int, uow: UnitOfWork, actor: str = "system", *, caller: Principal
) -> Plan:
    plans = uow.repository(PlanRepository)
    source = await _plan(plans, plan_id)
    _may_plan_for(caller, source, await uow.repository(UnitRepository).all())
    copy = source.roll_over(str(uuid.uuid4()), year)
    now = uow.clock.now()
    await plans.add(copy, now)
    await plans.record(
        copy.id,
        at=now,
        actor=actor,
        action="drafted",
        details={"rolled_over_from": source.id, "year": year},
    )
    audit(uow, caller, "plan.rolled_over", copy.id)
    await uow.commit()
    return copy


async def register_sub_plan(
    command: RegisterSubPlan, uow: UnitOfWork, *, caller: Principal
) -> None:
    unit = await uow.repository(UnitRepository).get(command.unit_code)
    _planner_of(caller, command.unit_code, unit, "register plans")
    await _register_sub_plan(command, uow)
    audit(uow, caller, "sub_plan.registered", f"{command.parent_plan_id}:{command.unit_code}")
    await uow.commit()


async def _register_sub_plan(command: RegisterSubPlan, uow: UnitOfWork) -> None:
    plans = uow.repository(PlanRepository)
    parent = await _plan(plans, command.parent_plan_id)
    if command.unit_code not in parent.assignees:
        raise PlanRefused(
            f"unit {command.unit_code} is not an assignee of plan {parent.doc_number}",
            field="unit_code",
        )
    check_not_before_parent(command.issued_on, parent, "issued_on")
    register = uow.repository(SubPlanRepository)
    if await register.exists(parent.id, command.unit_code):
        raise Conflict(
            f"unit {command.unit_code} has already registered its plan", field="unit_code"
        )
    unit = await uow.repository(UnitRepository).get(command.unit_code)
    assert unit is not None
    now = uow.clock.now()
    await register.add(command, registered_at=now)
    await plans.record(
        parent.id,
        at=now,
        actor=command.actor,
        action="sub_plan_registered",
        details={"unit_code": unit.code, "doc_number": command.doc_number},
    )
    uow.publish(
        shown(SubPlanRegistered, command, unit_path=unit.path, plan_id=command.plan_id or "")
    )


async def sub_plan_status(plan_id: str, uow: UnitOfWork) -> SubPlanStatus:
    plan = await _plan(uow.repository(PlanRepository), plan_id)
    registered = await uow.repository(SubPlanRepository).registered(plan.id)
    done = {row["unit_code"] for row in registered}
    return SubPlanStatus(registered, [code for code in plan.assignees if code not in done])
