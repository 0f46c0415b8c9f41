"""Handlers for taking reports in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from services.reports.adapters.repositories import ObligationRepository, ReportRepository
from services.reports.domain.model import (
    Report,
    ReportRefused,
)
from shared.errors import Missing
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
