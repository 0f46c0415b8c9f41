"""Handlers for report requests (thematic, ad hoc) and difficulties raised against a plan."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from services.plans.adapters.repositories import (
    DifficultyRepository,
    PlanRepository,
    ReportRequestRepository,
    UnitRepository,
)
from services.plans.domain.plans import PlanRefused
from services.plans.domain.units import Unit, reporting_line
from shared.auth import Role
from shared.errors import Missing
from shared.events import Assignee, DifficultyRaised, ReportKind, ReportRequested
from shared.security import audit, authorize, current_principal
from shared.uow import UnitOfWork
from shared.vntime import format_date, format_instant, last_instant_before


@dataclass(frozen=True)
class RequestReport:
    requesting_unit: str
    kind: ReportKind
    topic: str
    units: tuple[str, ...]
    period_start: date
    period_end: date
    due_before: date
    content_areas: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()
    plan_id: str | None = None


@dataclass(frozen=True)
class RaiseDifficulty:
    plan_id: str
    unit_code: str
    description: str
    content_area: str | None = None


def may_request_from(requester: Unit, unit: Unit, registry: dict[str, Unit]) -> bool:
    """A unit asks for reports from its own subtree, or from units whose reports reach it."""
    return unit.code != requester.code and (
        unit.is_within(requester.code) or requester.code in reporting_line(unit, registry)
    )


async def request_report(command: RequestReport, uow: UnitOfWork) -> str:
    if command.kind not in (ReportKind.THEMATIC, ReportKind.AD_HOC):
        raise PlanRefused("a request is for a thematic or an ad-hoc report", field="kind")
    if command.period_end < command.period_start:
        raise PlanRefused("the data period ends before it starts", field="period_end")
    if command.due_before <= command.period_start:
        raise PlanRefused("the deadline must fall after the period starts", field="due_before")
    if not command.units:
        raise PlanRefused("a request names at least one unit", field="units")
    _check_deadline_ahead(command.due_before, uow.clock.now())
    registry = await UnitRepository(uow.session).all()
    requester = registry.get(command.requesting_unit)
    if requester is None or not requester.active:
        raise PlanRefused(f"unknown unit {command.requesting_unit}", field="requesting_unit")
    authorize(
        Role.PLANNER,
        Role.REVIEWER,
        Role.ADMINISTRATOR,
        unit=requester.code,
        doing="request reports",
        unit_path=requester.path,
    )
    units = [_requestable(code, requester, registry) for code in dict.fromkeys(command.units)]
    if command.plan_id and await PlanRepository(uow.session).get(command.plan_id) is None:
        raise PlanRefused(f"no plan {command.plan_id}", field="plan_id")
    request_id = str(uuid.uuid4())
    await ReportRequestRepository(uow.session).add(
        id=request_id,
        requesting_unit=requester.code,
        kind=command.kind.value,
        topic=command.topic,
        units=[u.code for u in units],
        content_areas=list(command.content_areas),
        indicators=list(command.indicators),
        period_start=command.period_start,
        period_end=command.period_end,
        due_before=command.due_before,
        plan_id=command.plan_id,
        created_at=uow.clock.now(),
    )
    uow.publish(
        ReportRequested(
            unit_path=requester.path,
            request_id=request_id,
            kind=command.kind,
            topic=command.topic,
            requesting_unit=requester.code,
            units=[
                Assignee(code=u.code, unit_path=u.path, kind=u.kind, name=u.name) for u in units
            ],
            content_areas=list(command.content_areas),
            indicators=list(command.indicators),
            period_start=command.period_start,
            period_end=command.period_end,
            due_at=last_instant_before(command.due_before),
            plan_id=command.plan_id,
        )
    )
    audit(uow, "report.requested", request_id)
    await uow.commit()
    return request_id


def _check_deadline_ahead(due_before: date, now: datetime) -> None:
    """A request issued today cannot be due already: its units would at once be told it is
    overdue and urged."""
    due_at = last_instant_before(due_before)
    if due_at <= now:
        raise PlanRefused(
            f"the deadline (before {due_before:%d/%m/%Y}, last on-time instant "
            f"{format_instant(due_at)} ICT) has passed: a request issued on "
            f"{format_date(now)} must be due after it",
            field="due_before",
        )


def _requestable(code: str, requester: Unit, registry: dict[str, Unit]) -> Unit:
    unit = registry.get(code)
    if unit is None or not unit.active:
        raise PlanRefused(f"unknown unit {code}", field="units")
    if not may_request_from(requester, unit, registry):
        raise PlanRefused(
            f"unit {code} is neither under {requester.code} nor reports to it", field="units"
        )
    return unit


async def raise_difficulty(command: RaiseDifficulty, uow: UnitOfWork) -> str:
    plan = await PlanRepository(uow.session).get(command.plan_id)
    if plan is None:
        raise Missing(f"no plan {command.plan_id}")
    unit = await UnitRepository(uow.session).get(command.unit_code)
    if unit is None:
        raise PlanRefused(f"unknown unit {command.unit_code}", field="unit_code")
    current_principal().require_unit(unit.code, "raise difficulties", unit.path)
    areas = {area.code for area in plan.content_areas}
    if command.content_area is not None and command.content_area not in areas:
        raise PlanRefused(
            f"plan {plan.doc_number} has no content area {command.content_area}",
            field="content_area",
        )
    difficulty_id = str(uuid.uuid4())
    now = uow.clock.now()
    await DifficultyRepository(uow.session).add(
        id=difficulty_id,
        plan_id=plan.id,
        unit_code=unit.code,
        content_area=command.content_area,
        description=command.description,
        raised_at=now,
    )
    uow.publish(
        DifficultyRaised(
            unit_path=unit.path,
            difficulty_id=difficulty_id,
            plan_id=plan.id,
            unit_code=unit.code,
            content_area=command.content_area,
            description=command.description,
            raised_at=now,
        )
    )
    audit(uow, "difficulty.raised", difficulty_id)
    await uow.commit()
    return difficulty_id


async def answer_difficulty(
    difficulty_id: str, answered_by: str, answer: str, uow: UnitOfWork
) -> None:
    repository = DifficultyRepository(uow.session)
    difficulty = await repository.get(difficulty_id)
    if difficulty is None:
        raise Missing(f"no difficulty {difficulty_id}")
    answering = await UnitRepository(uow.session).get(answered_by)
    if answering is None:
        raise PlanRefused(f"unknown unit {answered_by}", field="answered_by")
    authorize(
        Role.REVIEWER,
        Role.PLANNER,
        Role.ADMINISTRATOR,
        unit=answered_by,
        doing="answer difficulties",
        unit_path=answering.path,
    )
    await repository.answer(
        difficulty_id, answer=answer, answered_by=answered_by, answered_at=uow.clock.now()
    )
    audit(uow, "difficulty.answered", difficulty_id)
    await uow.commit()
