"""Handlers for review: the receiving unit accepts a report or returns it with a reason.

Multi-level by data: a commune's reports go to its district (the receiving unit of the
district's sub-plan), the district's own report goes to Home Affairs."""

from __future__ import annotations

from dataclasses import dataclass

from services.reports.adapters.repositories import ObligationRepository, ReportRepository
from services.reports.domain.model import Obligation, Report
from shared.auth import Principal, Role
from shared.errors import Missing
from shared.security import audit, authorize
from shared.uow import UnitOfWork


@dataclass(frozen=True)
class Review:
    report_id: str
    reviewer_unit: str
    accept: bool
    reason: str = ""


async def review_report(
    command: Review, uow: UnitOfWork, *, caller: Principal
) -> tuple[Obligation, Report]:
    reports = uow.repository(ReportRepository)
    report = await reports.get(command.report_id)
    if report is None:
        raise Missing(f"no report {command.report_id}")
    obligations = uow.repository(ObligationRepository)
    obligation = await obligations.get(report.obligation_id)
    assert obligation is not None  # a report always belongs to an obligation
    authorize(
        caller,
        Role.REVIEWER,
        Role.ADMINISTRATOR,
        unit=obligation.receiving_unit,
        doing=f"review reports of unit {obligation.unit_code}",
    )
    latest = len(await reports.versions(obligation.id))
    now = uow.clock.now()
    if command.accept:
        obligation.accept(report, reviewer=command.reviewer_unit, latest_version=latest, at=now)
    else:
        obligation.return_for_revision(
            report,
            reviewer=command.reviewer_unit,
            latest_version=latest,
            reason=command.reason,
            at=now,
        )
    await reports.save_review(
        report, reviewer=command.reviewer_unit, at=now, reason=command.reason or None
    )
    await obligations.save(obligation)
    audit(uow, caller, "report.accepted" if command.accept else "report.returned", report.id)
    await uow.commit()
    return obligation, report
