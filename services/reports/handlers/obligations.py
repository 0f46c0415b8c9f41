"""Handlers that keep obligations in step with plans, requests and the unit registry."""

from __future__ import annotations

from datetime import datetime

import structlog

from services.reports.adapters.repositories import (
    DeadlineChange,
    DeadlineStepRepository,
    ObligationRepository,
    ReportRepository,
    StepRow,
    UnitDirectory,
)
from services.reports.domain.deadlines import (
    SKIPPED,
    ClockRules,
    first_step_at,
    next_step_after,
    steps_until,
)
from services.reports.domain.model import (
    Obligation,
    Ownership,
    PlanHeading,
    obligations_for,
    obligations_for_plan,
    obligations_for_request,
)
from services.reports.handlers import conferences
from shared.bus.envelope import Envelope
from shared.events import (
    PlanAmended,
    PlanClosed,
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
    areas = tuple(area.code for area in event.content_areas) or None
    found += conferences.obligations_of_plan_event(event, event.assignees, areas)
    opened = await _open(uow.repository(ObligationRepository), found, uow, ownership, rules)
    log.info("obligations opened", plan_id=event.plan_id, opened=opened)


async def on_report_requested(
    event: ReportRequested,
    _envelope: Envelope,
    uow: UnitOfWork,
    *,
    ownership: Ownership,
    rules: ClockRules,
) -> None:
    repository = uow.repository(ObligationRepository)
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
    envelope: Envelope,
    uow: UnitOfWork,
    *,
    ownership: Ownership,
    rules: ClockRules,
) -> None:
    """Deadlines move, added assignees get obligations, removed ones are waived; reports
    already submitted are judged again against the moved deadline (history kept)."""
    repository = uow.repository(ObligationRepository)
    for change in event.schedule_changes:
        for obligation in await repository.find(plan_id=event.plan_id, schedule_key=change.key):
            cause = f"amendment {event.amendment} of plan {event.doc_number}".strip()
            await _move_deadline(uow, obligation, change.new_due_at, envelope, cause, rules)
    heading = PlanHeading(
        event.plan_id,
        event.doc_number,
        event.title,
        await repository.content_areas_of_plan(event.plan_id),
    )
    added = obligations_for(heading, event.schedule, event.added_assignees)
    added += conferences.obligations_of_plan_event(
        event, event.added_assignees, heading.content_areas
    )
    for obligation in added:
        # The amendment's mail tells an added unit what it owes: its steps start after it.
        existing = await repository.get(obligation.id)
        if existing is None:
            await _open(repository, [obligation], uow, ownership, rules)
            await _start_after(uow, obligation, envelope.time, rules)
        elif existing.reopen():
            existing.due_at = obligation.due_at
            await _start_after(uow, existing, envelope.time, rules)
    reason = f"removed from plan {event.doc_number} by amendment {event.amendment}"
    for code in event.removed_assignees:
        for obligation in await repository.find(plan_id=event.plan_id, unit_code=code):
            if obligation.waive(f"{reason}: {event.reason}" if event.reason else reason):
                await repository.save(obligation)
    log.info("plan amendment applied", plan_id=event.plan_id, amendment=event.amendment)


async def _move_deadline(
    uow: UnitOfWork,
    obligation: Obligation,
    due_at: datetime,
    envelope: Envelope,
    cause: str,
    rules: ClockRules,
) -> None:
    """Move one obligation's deadline: judge its reports again, keep the history, and
    restart its deadline steps on the new schedule.

    Steps taken toward the old deadline say nothing about the new one, so they go. Steps
    of the new schedule already planned when the amendment was made are recorded as
    skipped: the amendment's own message states the new deadline, and one message per
    unit is what it gets (not a reminder, an overdue notice and an urging per
    obligation). The clock takes the obligation up again at its next step."""
    old_due_at = obligation.due_at
    reports = uow.repository(ReportRepository)
    changed = obligation.move_deadline(due_at, await reports.versions(obligation.id))
    await reports.reclassify(changed)
    steps = uow.repository(DeadlineStepRepository)
    await steps.record_change(
        DeadlineChange(
            obligation_id=obligation.id,
            event_id=envelope.id,
            changed_at=envelope.time,
            old_due_at=old_due_at,
            new_due_at=due_at,
            cause=cause,
            reclassified=[
                {
                    "report_id": r.id,
                    "receipt_number": r.receipt_number,
                    "on_time_before": not r.on_time,
                    "on_time": r.on_time,
                }
                for r in changed
            ],
        )
    )
    await _start_after(uow, obligation, envelope.time, rules)
    if changed:
        log.info(
            "reports judged again against a moved deadline",
            obligation_id=obligation.id,
            reports=[r.id for r in changed],
        )


async def _start_after(
    uow: UnitOfWork, obligation: Obligation, announced_at: datetime, rules: ClockRules
) -> None:
    """Restart an obligation's deadline steps after ``announced_at``, when a message told
    the unit its deadline (an amendment): the steps recorded so far go, those of its
    schedule planned up to then are recorded as skipped, and the clock takes it up at
    the next one."""
    steps = uow.repository(DeadlineStepRepository)
    await steps.delete_all(obligation.id)
    if obligation.owned:
        now = uow.clock.now()
        announced = steps_until(obligation.due_at, announced_at, rules)
        await steps.record(
            [StepRow(obligation.id, s.name, s.planned_for, now, SKIPPED) for s in announced]
        )
    obligation.next_step_at = next_step_after(obligation.due_at, announced_at, rules)
    await uow.repository(ObligationRepository).save(obligation)


async def on_plan_closed(event: PlanClosed, _envelope: Envelope, uow: UnitOfWork) -> None:
    """A closed plan urges nobody: its obligations leave the deadline clock at once. What
    each unit owed and sent stays as it was (a unit that never reported is still
    missing in the consolidation)."""
    repository = uow.repository(ObligationRepository)
    closed = 0
    for obligation in await repository.find(plan_id=event.plan_id):
        if not obligation.plan_closed:
            obligation.plan_closed = True
            await repository.save(obligation)
            closed += 1
    log.info("plan closed; obligations off the clock", plan_id=event.plan_id, obligations=closed)


async def on_unit_registered(event: UnitRegistered, _envelope: Envelope, uow: UnitOfWork) -> None:
    await uow.repository(UnitDirectory).save(event, uow.clock.now())


async def on_unit_updated(event: UnitUpdated, _envelope: Envelope, uow: UnitOfWork) -> None:
    """Keep the unit's copy; a dissolved unit owes nothing more, what it submitted is kept."""
    await uow.repository(UnitDirectory).save(event, uow.clock.now())
    if event.active:
        return
    repository = uow.repository(ObligationRepository)
    on = f" on {event.dissolved_on:%d/%m/%Y}" if event.dissolved_on else ""
    for obligation in await repository.find(unit_code=event.code):
        if obligation.waive(f"unit dissolved{on}"):
            await repository.save(obligation)
