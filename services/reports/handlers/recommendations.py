"""Handlers for recommendations after supervision: register, answer, report implementation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import structlog

from services.reports.adapters.recommendations import RecommendationRepository
from services.reports.adapters.repositories import ObligationRepository, UnitDirectory
from services.reports.domain.deadlines import ClockRules
from services.reports.domain.model import Obligation, Ownership
from services.reports.domain.recommendations import (
    Entry,
    Recommendation,
    RecommendationRefused,
    RecommendationStatus,
    answer_due_at,
)
from services.reports.handlers.acting import act_for_unit
from services.reports.handlers.follow_up import commit_step, open_on_the_clock
from shared.auth import Principal, Role
from shared.errors import Missing
from shared.security import audit
from shared.uow import UnitOfWork
from shared.vntime import ict_date

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RegisterRecommendation:
    source_organisation: str
    topic: str
    content: str
    addressed_unit: str
    received_on: date


@dataclass(frozen=True)
class AnswerRecommendation:
    recommendation_id: str
    answer: str


@dataclass(frozen=True)
class ReportImplementation:
    recommendation_id: str
    content: str
    completed: bool = False


def _may_register(caller: Principal, unit: str, path: list[str]) -> None:
    """The addressed unit registers what it received; a Fatherland Front user registers
    what it recommended to a unit of its subtree."""
    if caller.role is Role.FRONT:
        caller.require_subtree(path, "register recommendations")
        return
    act_for_unit(caller, unit, path, "register recommendations")


async def register_recommendation(
    command: RegisterRecommendation,
    uow: UnitOfWork,
    *,
    caller: Principal,
    answer_days: int,
    rules: ClockRules,
    ownership: Ownership = Ownership(),
) -> Recommendation:
    """Register a recommendation and open its answer obligation, due ``answer_days`` after
    the day it was received; the deadline clock reminds and urges like any obligation."""
    unit = await uow.repository(UnitDirectory).get(command.addressed_unit)
    if unit is None:
        raise RecommendationRefused(
            f"unit {command.addressed_unit} is not known to this reports service",
            field="addressed_unit",
        )
    path = list(unit["path"])
    _may_register(caller, command.addressed_unit, path)
    if not ownership.owns(path):
        raise RecommendationRefused(
            f"unit {command.addressed_unit} is served by another instance (its district's)",
            field="addressed_unit",
        )
    now = uow.clock.now()
    if command.received_on > ict_date(now):
        raise RecommendationRefused("received_on is in the future", field="received_on")
    recommendation = Recommendation(
        id=str(uuid.uuid4()),
        source_organisation=command.source_organisation,
        topic=command.topic,
        content=command.content,
        addressed_unit=command.addressed_unit,
        addressed_path=path,
        registered_by_unit=command.addressed_unit if caller.unit_code == "*" else caller.unit_code,
        received_on=command.received_on,
        registered_at=now,
        answer_due_at=answer_due_at(command.received_on, answer_days),
    )
    await uow.repository(RecommendationRepository).add(recommendation)
    await open_on_the_clock(uow, recommendation.answer_obligation(), rules, now)
    recommendation.registered()
    audit(uow, caller, "recommendation.registered", recommendation.id)
    await uow.commit()
    log.info("recommendation registered", recommendation_id=recommendation.id)
    return recommendation


async def _addressed(
    recommendation_id: str, uow: UnitOfWork, caller: Principal, doing: str
) -> tuple[Recommendation, Obligation]:
    found = await uow.repository(RecommendationRepository).get(recommendation_id, lock=True)
    if found is None:
        raise Missing(f"no recommendation {recommendation_id}")
    act_for_unit(caller, found.addressed_unit, found.addressed_path, doing)
    obligation = await uow.repository(ObligationRepository).get(found.obligation_id)
    assert obligation is not None  # written with the recommendation, in one transaction
    return found, obligation


async def _store(
    recommendation: Recommendation,
    entry: Entry,
    obligation: Obligation,
    uow: UnitOfWork,
    caller: Principal,
    action: str,
) -> None:
    await uow.repository(RecommendationRepository).save(recommendation, entry)
    await commit_step(uow, caller, obligation, action, recommendation.id)


async def answer_recommendation(
    command: AnswerRecommendation, uow: UnitOfWork, *, caller: Principal
) -> Entry:
    """The addressed unit's written answer: it closes the answer obligation."""
    recommendation, obligation = await _addressed(
        command.recommendation_id, uow, caller, "answer recommendations"
    )
    entry = recommendation.answer(
        command.answer, at=uow.clock.now(), by_unit=caller.unit_code, obligation=obligation
    )
    await _store(recommendation, entry, obligation, uow, caller, "recommendation.answered")
    log.info("recommendation answered", recommendation_id=recommendation.id)
    return entry


async def report_implementation(
    command: ReportImplementation, uow: UnitOfWork, *, caller: Principal
) -> Entry:
    """An implementation report of the addressed unit; ``completed`` closes it."""
    recommendation, obligation = await _addressed(
        command.recommendation_id, uow, caller, "report on recommendations"
    )
    entry = recommendation.report_implementation(
        command.content,
        at=uow.clock.now(),
        by_unit=caller.unit_code,
        completed=command.completed,
    )
    await _store(recommendation, entry, obligation, uow, caller, "recommendation.implementation")
    return entry


async def recommendation(
    recommendation_id: str, uow: UnitOfWork, *, caller: Principal
) -> Recommendation:
    """A recommendation with its history, for who may read it: the addressed unit's
    subtree, and the unit that registered it."""
    found = await uow.repository(RecommendationRepository).get(recommendation_id)
    if found is None:
        raise Missing(f"no recommendation {recommendation_id}")
    caller.require_read(found.addressed_path, found.registered_by_unit, "this recommendation")
    return found


@dataclass(frozen=True)
class RecommendationFilter:
    """Which recommendations a listing asks for (None: any)."""

    addressed_unit: str | None = None
    status: RecommendationStatus | None = None


async def recommendations_of(
    where: RecommendationFilter, uow: UnitOfWork, *, caller: Principal, limit: int = 500
) -> list[Recommendation]:
    """The recommendations the caller may read: addressed to a unit of its subtree, or
    registered by its own unit; one addressed unit's when given."""
    codes = None if where.addressed_unit is None else [where.addressed_unit]
    status = where.status.value if where.status else None
    found = await uow.repository(RecommendationRepository).of_units(codes, status)
    readable = [r for r in found if caller.may_read(r.addressed_path, r.registered_by_unit)]
    return readable[:limit]
