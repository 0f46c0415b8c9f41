"""Handlers of the plans service: one per command. Entrypoints call only these."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date

import structlog

from services.plans.adapters.db import PlanRepository, UnitRepository
from services.plans.domain.plans import AssigneeRule, Plan, PlanRefused, ScheduleEntry
from services.plans.domain.units import Unit, UnitRefused
from shared.events import Contacts, ContentArea
from shared.uow import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RegisterUnit:
    code: str
    name: str
    kind: str
    parent_code: str | None = None
    reports_to_code: str | None = None
    contacts: Contacts = field(default_factory=Contacts)


@dataclass(frozen=True)
class DraftPlan:
    doc_number: str
    title: str
    issuing_unit: str
    issued_on: date
    year: int
    place: str
    content_areas: tuple[ContentArea, ...]
    assignee_rule: AssigneeRule
    schedule: tuple[ScheduleEntry, ...]


async def register_unit(command: RegisterUnit, uow: UnitOfWork) -> Unit:
    repository = UnitRepository(uow.session)
    if await repository.get(command.code) is not None:
        raise UnitRefused(f"unit {command.code} is already registered", field="code")
    parent = await _existing(repository, command.parent_code, "parent_code")
    reports_to = await _existing(repository, command.reports_to_code, "reports_to_code")
    unit = Unit.register(
        code=command.code,
        name=command.name,
        kind=command.kind,
        parent=parent,
        reports_to=reports_to,
        contacts=command.contacts,
    )
    await repository.add(unit, uow.clock.now())
    uow.publish(*unit.events)
    await uow.commit()
    return unit


async def _existing(repository: UnitRepository, code: str | None, field: str) -> Unit | None:
    if code is None:
        return None
    unit = await repository.get(code)
    if unit is None:
        raise UnitRefused(f"unknown unit {code}", field=field)
    return unit


async def draft_plan(command: DraftPlan, uow: UnitOfWork) -> Plan:
    if await UnitRepository(uow.session).get(command.issuing_unit) is None:
        raise PlanRefused(f"unknown issuing unit {command.issuing_unit}", field="issuing_unit")
    plan = Plan(
        id=str(uuid.uuid4()),
        doc_number=command.doc_number,
        title=command.title,
        issuing_unit=command.issuing_unit,
        issued_on=command.issued_on,
        year=command.year,
        place=command.place,
        content_areas=list(command.content_areas),
        assignee_rule=command.assignee_rule,
        schedule=list(command.schedule),
    )
    await PlanRepository(uow.session).add(plan, uow.clock.now())
    await uow.commit()
    return plan


async def issue_plan(plan_id: str, uow: UnitOfWork) -> Plan:
    plans = PlanRepository(uow.session)
    plan = await plans.get(plan_id)
    if plan is None:
        raise LookupError(f"no plan {plan_id}")
    plan.issue(await UnitRepository(uow.session).all())
    await plans.save(plan, uow.clock.now())
    uow.publish(*plan.events)
    await uow.commit()
    log.info("plan issued", plan_id=plan.id, assignees=len(plan.assignees))
    return plan
