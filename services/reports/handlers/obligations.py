"""Handlers that keep obligations in step with plans, requests and the unit registry."""

from __future__ import annotations

import structlog

from services.reports.adapters.repositories import (
    DeadlineStepRepository,
    ObligationRepository,
    UnitDirectory,
)
from services.reports.domain.deadlines import ClockRules, first_step_at
from services.reports.domain.model import (
    Obligation,
    Ownership,
    PlanHeading,
    obligations_for,
    obligations_for_plan,
    obligations_for_request,
)
from shared.bus.envelope import Envelope
from shared.events import (
    PlanAmended,
    PlanIssued,
    ReportRequested,
    UnitRegistered,
    UnitUpdated,
)
from shared.uow import UnitOfWork

log = structlog.get_logger(__name__)


async def _open(
    repository: ObligationRepository,
    found: list[Obligation],
    uow: UnitOfWork,
    ownership: Ownership,
    rules: ClockRules,
) -> int:
    opened = 0
    for obligation in found:
        obligation.owned = ownership.owns(obligation.unit_path)
        obligation.next_step_at = first_step_at(obligation.due_at, rules)
        opened += await repository.add_if_missing(obligation, uow.clock.now())
    return opened


async def on_plan_issued(
    event: PlanIssued,
    _envelope: Envelope,
    uow: UnitOfWork,
    *,
    ownership: Ownership,
    rules: ClockRules,
) -> None:
    found = obligations_for_plan(event)
    opened = await _open(ObligationRepository(uow.session), found, uow, ownership, rules)
    log.info("obligations opened", plan_id=event.plan_id, opened=opened)


async def on_report_requested(
    event: ReportRequested,
    _envelope: Envelope,
    uow: UnitOfWork,
    *,
    ownership: Ownership,
    rules: ClockRules,
) -> None:
    repository = ObligationRepository(uow.session)
    plan_areas = (
        await repository.content_areas_of_plan(event.plan_id)
        if event.plan_id and not event.content_areas
        else None
    )
    found = obligations_for_request(event, plan_areas)
    opened = await _open(repository, found, uow, ownership, rules)
    log.info("obligations opened for a request", request_id=event.request_id, opened=opened)


async def on_plan_amended(
    event: PlanAmended,
    _envelope: Envelope,
    uow: UnitOfWork,
    *,
    ownership: Ownership,
    rules: ClockRules,
) -> None:
    """Deadlines move, added assignees get obligations, removed ones are waived; reports
    already submitted stay as they are."""
    repository = ObligationRepository(uow.session)
    steps = DeadlineStepRepository(uow.session)
    for change in event.schedule_changes:
        for obligation in await repository.find(plan_id=event.plan_id, schedule_key=change.key):
            obligation.due_at = change.new_due_at
            # Steps already taken toward the old deadline say nothing about the new one:
            # the new schedule starts from its first step (the catch-up rules decide).
            obligation.next_step_at = first_step_at(obligation.due_at, rules)
            await repository.save(obligation)
            await steps.delete_all(obligation.id)
    heading = PlanHeading(
        event.plan_id,
        event.doc_number,
        event.title,
        await repository.content_areas_of_plan(event.plan_id),
    )
    for obligation in obligations_for(heading, event.schedule, event.added_assignees):
        existing = await repository.get(obligation.id)
        if existing is None:
            await _open(repository, [obligation], uow, ownership, rules)
        elif existing.reopen():  # reconsidered at the clock's next pass
            existing.due_at = obligation.due_at
            await repository.save(existing)
    reason = f"removed from plan {event.doc_number} by amendment {event.amendment}"
    for code in event.removed_assignees:
        for obligation in await repository.find(plan_id=event.plan_id, unit_code=code):
            if obligation.waive(f"{reason}: {event.reason}" if event.reason else reason):
                await repository.save(obligation)
    log.info("plan amendment applied", plan_id=event.plan_id, amendment=event.amendment)


async def on_unit_registered(event: UnitRegistered, _envelope: Envelope, uow: UnitOfWork) -> None:
    await UnitDirectory(uow.session).save(event, uow.clock.now())


async def on_unit_updated(event: UnitUpdated, _envelope: Envelope, uow: UnitOfWork) -> None:
    """Keep the unit's copy; a dissolved unit owes nothing more, what it submitted is kept."""
    await UnitDirectory(uow.session).save(event, uow.clock.now())
    if event.active:
        return
    repository = ObligationRepository(uow.session)
    on = f" on {event.dissolved_on:%d/%m/%Y}" if event.dissolved_on else ""
    for obligation in await repository.find(unit_code=event.code):
        if obligation.waive(f"unit dissolved{on}"):
            await repository.save(obligation)
