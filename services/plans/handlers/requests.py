"""Handlers for report requests (thematic, ad hoc) and difficulties raised against a plan."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from services.plans.adapters.repositories import (
    DifficultyRepository,
    PlanRepository,
    ReportRequestRepository,
    UnitRepository,
)
from services.plans.domain.plans import (
    Plan,
    PlanRefused,
    check_period_before_deadline,
    difficulty_receiver,
)
from services.plans.domain.requests import Difficulty, ReportRequest
from services.plans.domain.units import Unit, reporting_line
from shared.auth import Forbidden, Principal, Role
from shared.errors import Missing
from shared.events import (
    Assignee,
    DifficultyAnswered,
    DifficultyRaised,
    ReportKind,
    ReportRequested,
)
from shared.indicators import BY_CODE as INDICATORS
from shared.indicators import unknown_codes
from shared.mapping import shown
from shared.security import audit, authorize
from shared.uow import UnitOfWork
from shared.vntime import format_date, format_instant, last_instant_before

RequestReport = ReportRequest
"""The command: the request as asked, before it has an id."""

RaiseDifficulty = Difficulty
"""The command: the difficulty as raised, before it has an id and a receiver."""


def may_request_from(requester: Unit, unit: Unit, registry: dict[str, Unit]) -> bool:
    """A unit asks for reports from its own subtree, or from units whose reports reach it."""
    return unit.code != requester.code and (
        unit.is_within(requester.code) or requester.code in reporting_line(unit, registry)
    )


async def request_report(command: RequestReport, uow: UnitOfWork, *, caller: Principal) -> str:
    if command.kind not in (ReportKind.THEMATIC, ReportKind.AD_HOC):
        raise PlanRefused("a request is for a thematic or an ad-hoc report", field="kind")
    if command.period_end < command.period_start:
        raise PlanRefused("the data period ends before it starts", field="period_end")
    if command.due_before <= command.period_start:
        raise PlanRefused("the deadline must fall after the period starts", field="due_before")
    check_period_before_deadline(command.period_end, command.due_before, "period_end")
    unknown = unknown_codes(command.indicators)
    if unknown:
        index = command.indicators.index(unknown[0])
        raise PlanRefused(
            f"unknown indicator {unknown[0]!r}: the catalogue has " + ", ".join(sorted(INDICATORS)),
            field=f"indicators.{index}",
        )
    if not command.units:
        raise PlanRefused("a request names at least one unit", field="units")
    _check_deadline_ahead(command.due_before, uow.clock.now())
    registry = await uow.repository(UnitRepository).all()
    requester = registry.get(command.requesting_unit)
    if requester is None or not requester.active:
        raise PlanRefused(f"unknown unit {command.requesting_unit}", field="requesting_unit")
    authorize(
        caller,
        Role.PLANNER,
        Role.REVIEWER,
        Role.ADMINISTRATOR,
        unit=requester.code,
        doing="request reports",
        unit_path=requester.path,
    )
    units = [_requestable(code, requester, registry) for code in dict.fromkeys(command.units)]
    plan = await uow.repository(PlanRepository).get(command.plan_id) if command.plan_id else None
    if command.plan_id and plan is None:
        raise PlanRefused(f"no plan {command.plan_id}", field="plan_id")
    if plan is not None:
        _check_areas_of(plan, command.content_areas, "content_areas")
    request = replace(command, id=str(uuid.uuid4()), units=tuple(unit.code for unit in units))
    await uow.repository(ReportRequestRepository).add(request, created_at=uow.clock.now())
    assignees = [Assignee(code=u.code, unit_path=u.path, kind=u.kind, name=u.name) for u in units]
    uow.publish(
        shown(
            ReportRequested,
            request,
            unit_path=requester.path,
            request_id=request.id,
            units=assignees,
            due_at=last_instant_before(request.due_before),
        )
    )
    audit(uow, caller, "report.requested", request.id)
    await uow.commit()
    return request.id


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


def _check_areas_of(plan: Plan, codes: Sequence[str], where: str) -> None:
    known = [area.code for area in plan.content_areas]
    for index, code in enumerate(codes):
        if code not in known:
            raise PlanRefused(
                f"plan {plan.doc_number} has no content area {code!r}; it has "
                + (", ".join(known) or "none"),
                field=where if where == "content_area" else f"{where}.{index}",
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


async def raise_difficulty(command: RaiseDifficulty, uow: UnitOfWork, *, caller: Principal) -> str:
    plan = await uow.repository(PlanRepository).get(command.plan_id)
    if plan is None:
        raise Missing(f"no plan {command.plan_id}")
    unit = await uow.repository(UnitRepository).get(command.unit_code)
    if unit is None:
        raise PlanRefused(f"unknown unit {command.unit_code}", field="unit_code")
    caller.require_unit(unit.code, "raise difficulties", unit.path)
    if command.content_area is not None:
        _check_areas_of(plan, (command.content_area,), "content_area")
    receiver = difficulty_receiver(plan, await uow.repository(UnitRepository).all())
    difficulty = replace(
        command, id=str(uuid.uuid4()), raised_at=uow.clock.now(), raised_to=receiver.code
    )
    await uow.repository(DifficultyRepository).add(difficulty)
    uow.publish(
        shown(DifficultyRaised, difficulty, unit_path=unit.path, difficulty_id=difficulty.id)
    )
    audit(uow, caller, "difficulty.raised", difficulty.id)
    await uow.commit()
    return difficulty.id


@dataclass(frozen=True)
class AnswerDifficulty:
    difficulty_id: str
    answered_by: str
    answer: str


async def answer_difficulty(
    command: AnswerDifficulty, uow: UnitOfWork, *, caller: Principal
) -> int:
    """Add an answer to the difficulty's thread (every answer is kept): only the unit it
    was raised to answers, through a reviewer or an administrator of that very unit. The
    raiser hears of it through ``DifficultyAnswered``. Returns the answer's number."""
    repository = uow.repository(DifficultyRepository)
    difficulty = await repository.get(command.difficulty_id, lock=True)
    if difficulty is None:
        raise Missing(f"no difficulty {command.difficulty_id}")
    plan = await uow.repository(PlanRepository).get(difficulty["plan_id"])
    assert plan is not None  # a foreign key
    registry = await uow.repository(UnitRepository).all()
    raised_to = difficulty["raised_to"] or difficulty_receiver(plan, registry).code
    # "There": the answering unit itself, not a unit above it (unit_path left out).
    authorize(
        caller,
        Role.REVIEWER,
        Role.ADMINISTRATOR,
        unit=raised_to,
        doing="answer difficulties raised to it",
    )
    if command.answered_by != raised_to:
        raise Forbidden(
            f"the difficulty was raised to unit {raised_to}; "
            f"unit {command.answered_by} may not answer it"
        )
    now = uow.clock.now()
    number = await repository.add_answer(
        command.difficulty_id,
        answer=command.answer,
        answered_by=raised_to,
        answered_at=now,
    )
    raiser = registry[difficulty["unit_code"]]
    uow.publish(
        DifficultyAnswered(
            unit_path=raiser.path,
            difficulty_id=command.difficulty_id,
            plan_id=plan.id,
            unit_code=raiser.code,
            content_area=difficulty["content_area"],
            raised_to=raised_to,
            answer_number=number,
            answer=command.answer,
            answered_by_unit=raised_to,
            answered_at=now,
        )
    )
    audit(uow, caller, "difficulty.answered", f"{command.difficulty_id} #{number}")
    await uow.commit()
    return number
