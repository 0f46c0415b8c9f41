"""Handlers of the reports service: one per command or event. Entrypoints call only these."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from services.reports.adapters.db import ObligationRepository, ReportRepository
from services.reports.domain.model import (
    Obligation,
    PlanHeading,
    Report,
    ReportRefused,
    obligations_for,
    obligations_for_plan,
    obligations_for_request,
)
from shared.bus.envelope import Envelope
from shared.errors import Missing
from shared.events import PlanAmended, PlanIssued, ReportRequested, UnitUpdated
from shared.uow import UnitOfWork
from shared.vntime import ict_date

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SubmitReport:
    obligation_id: str
    unit_code: str
    idempotency_key: str | None = None
    submitted_by: str | None = None
    narrative: dict[str, str] = field(default_factory=dict)
    indicators: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    report: Report
    replayed: bool
    """True when this is the earlier answer to a retried submission with the same key."""


async def _open(repository: ObligationRepository, found: list[Obligation], uow: UnitOfWork) -> int:
    opened = 0
    for obligation in found:
        opened += await repository.add_if_missing(obligation, uow.clock.now())
    return opened


async def on_plan_issued(event: PlanIssued, _envelope: Envelope, uow: UnitOfWork) -> None:
    opened = await _open(ObligationRepository(uow.session), obligations_for_plan(event), uow)
    log.info("obligations opened", plan_id=event.plan_id, opened=opened)


async def on_report_requested(event: ReportRequested, _envelope: Envelope, uow: UnitOfWork) -> None:
    found = obligations_for_request(event)
    opened = await _open(ObligationRepository(uow.session), found, uow)
    log.info("obligations opened for a request", request_id=event.request_id, opened=opened)


async def on_plan_amended(event: PlanAmended, _envelope: Envelope, uow: UnitOfWork) -> None:
    """Deadlines move, added assignees get obligations, removed ones are waived; reports
    already submitted stay as they are."""
    repository = ObligationRepository(uow.session)
    for change in event.schedule_changes:
        for obligation in await repository.find(plan_id=event.plan_id, schedule_key=change.key):
            obligation.due_at = change.new_due_at
            await repository.save(obligation)
    heading = PlanHeading(event.plan_id, event.doc_number, event.title)
    for obligation in obligations_for(heading, event.schedule, event.added_assignees):
        existing = await repository.get(obligation.id)
        if existing is None:
            await repository.add_if_missing(obligation, uow.clock.now())
        elif existing.reopen():
            existing.due_at = obligation.due_at
            await repository.save(existing)
    reason = f"removed from plan {event.doc_number} by amendment {event.amendment}"
    for code in event.removed_assignees:
        for obligation in await repository.find(plan_id=event.plan_id, unit_code=code):
            if obligation.waive(f"{reason}: {event.reason}" if event.reason else reason):
                await repository.save(obligation)
    log.info("plan amendment applied", plan_id=event.plan_id, amendment=event.amendment)


async def on_unit_updated(event: UnitUpdated, _envelope: Envelope, uow: UnitOfWork) -> None:
    """A dissolved unit owes nothing more; what it submitted is kept."""
    if event.active:
        return
    repository = ObligationRepository(uow.session)
    on = f" on {event.dissolved_on:%d/%m/%Y}" if event.dissolved_on else ""
    for obligation in await repository.find(unit_code=event.code):
        if obligation.waive(f"unit dissolved{on}"):
            await repository.save(obligation)


async def submit_report(command: SubmitReport, uow: UnitOfWork) -> Submission:
    reports = ReportRepository(uow.session)
    if command.idempotency_key:
        earlier = await reports.by_idempotency_key(command.idempotency_key)
        if earlier is not None:
            if earlier.obligation_id != command.obligation_id:
                raise ReportRefused(
                    "this Idempotency-Key was already used for another obligation",
                    field="idempotency_key",
                )
            return Submission(earlier, replayed=True)
    obligations = ObligationRepository(uow.session)
    obligation = await obligations.get(command.obligation_id)
    if obligation is None:
        raise Missing(f"no obligation {command.obligation_id}")
    if obligation.unit_code != command.unit_code:
        raise ReportRefused(
            f"obligation {obligation.id} belongs to unit {obligation.unit_code}, "
            f"not {command.unit_code}",
            field="unit_code",
        )
    now = uow.clock.now()
    report = obligation.submit(
        report_id=str(uuid.uuid4()),
        receipt_number=await reports.next_receipt_number(ict_date(now).year),
        version=await reports.next_version(obligation.id),
        submitted_at=now,
        submitted_by=command.submitted_by,
    )
    report.narrative = dict(command.narrative)
    report.indicators = dict(command.indicators)
    await reports.add(report, command.idempotency_key)
    await obligations.save(obligation)
    uow.publish(*obligation.events)
    await uow.commit()
    log.info(
        "report submitted",
        report_id=report.id,
        receipt=report.receipt_number,
        on_time=report.on_time,
    )
    return Submission(report, replayed=False)
