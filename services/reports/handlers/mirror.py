"""Reports of units another instance owns, mirrored read-only from the bus.

A district running its own reports service takes its communes' reports and its own; the
province's instance sees its ReportSubmitted, ReportAccepted and ReportReturned events and
keeps a copy, so that Home Affairs' consolidation includes the district. Events of
obligations this instance owns are its own, coming back: they change nothing."""

from __future__ import annotations

from services.reports.adapters.repositories import ObligationRepository, ReportRepository
from services.reports.domain.model import ObligationStatus, Report, ReportStatus
from shared.bus.envelope import Envelope
from shared.events import ReportAccepted, ReportReturned, ReportSubmitted
from shared.uow import UnitOfWork


async def on_report_submitted(event: ReportSubmitted, _envelope: Envelope, uow: UnitOfWork) -> None:
    obligations = ObligationRepository(uow.session)
    obligation = await obligations.get(event.obligation.obligation_id)
    if obligation is None or obligation.owned:
        return
    reports = ReportRepository(uow.session)
    if await reports.get(event.report_id) is None:
        await reports.add(
            Report(
                id=event.report_id,
                obligation_id=obligation.id,
                version=event.version,
                receipt_number=event.receipt_number,
                submitted_at=event.submitted_at,
                on_time=event.on_time,
                submitted_by=event.submitted_by,
                narrative=dict(event.narrative),
                indicators=dict(event.indicators),
            )
        )
    obligation.status = ObligationStatus.SUBMITTED
    await obligations.save(obligation)


async def on_report_reviewed(
    event: ReportAccepted | ReportReturned, _envelope: Envelope, uow: UnitOfWork
) -> None:
    obligations = ObligationRepository(uow.session)
    obligation = await obligations.get(event.obligation.obligation_id)
    if obligation is None or obligation.owned:
        return
    reports = ReportRepository(uow.session)
    report = await reports.get(event.report_id)
    if report is None:
        return  # its submission was never mirrored (before this instance existed)
    accepted = isinstance(event, ReportAccepted)
    report.status = ReportStatus.ACCEPTED if accepted else ReportStatus.RETURNED
    obligation.status = ObligationStatus.ACCEPTED if accepted else ObligationStatus.RETURNED
    reason = None if isinstance(event, ReportAccepted) else event.reason
    await reports.save_review(
        report, reviewer=event.reviewed_by_unit, at=event.reviewed_at, reason=reason
    )
    await obligations.save(obligation)
