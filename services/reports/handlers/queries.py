"""What the API reads: obligations and reports, as far as the caller may read them."""

from __future__ import annotations

from dataclasses import dataclass

from services.reports.adapters.repositories import (
    DeadlineChange,
    DeadlineStepRepository,
    ObligationRepository,
    ReportRepository,
)
from services.reports.domain.model import Obligation, ObligationStatus, Report
from shared.auth import Principal
from shared.errors import Missing
from shared.uow import UnitOfWork


def may_read(caller: Principal, obligation: Obligation, what: str) -> None:
    """A unit reads its subtree's obligations and reports, and those addressed to it."""
    caller.require_read(obligation.unit_path, obligation.receiving_unit, what)


async def report(report_id: str, uow: UnitOfWork, *, caller: Principal) -> Report:
    found = await uow.repository(ReportRepository).get(report_id)
    if found is None:
        raise Missing(f"no report {report_id}")
    obligation = await uow.repository(ObligationRepository).get(found.obligation_id)
    assert obligation is not None  # a report always belongs to an obligation
    may_read(caller, obligation, f"report {report_id}")
    return found


async def versions(obligation_id: str, uow: UnitOfWork, *, caller: Principal) -> list[Report]:
    """Every version submitted for an obligation, oldest first."""
    obligation = await uow.repository(ObligationRepository).get(obligation_id)
    if obligation is None:
        raise Missing(f"no obligation {obligation_id}")
    may_read(caller, obligation, f"the reports of obligation {obligation_id}")
    return await uow.repository(ReportRepository).versions(obligation_id)


@dataclass(frozen=True)
class ObligationFilter:
    unit_code: str | None = None
    status: ObligationStatus | None = None
    plan_id: str | None = None
    schedule_key: str | None = None
    receiving_unit: str | None = None


async def obligations(
    where: ObligationFilter, uow: UnitOfWork, *, caller: Principal
) -> list[Obligation]:
    """Only what the caller may read: its subtree's, and those addressed to its unit."""
    found = await uow.repository(ObligationRepository).find(
        unit_code=where.unit_code,
        status=where.status,
        plan_id=where.plan_id,
        schedule_key=where.schedule_key,
        receiving_unit=where.receiving_unit,
    )
    return [o for o in found if caller.may_read(o.unit_path, addressed_to=o.receiving_unit)]


async def obligation(
    obligation_id: str, uow: UnitOfWork, *, caller: Principal
) -> tuple[Obligation, list[DeadlineChange]]:
    """An obligation and every move of its deadline."""
    found = await uow.repository(ObligationRepository).get(obligation_id)
    if found is None:
        raise Missing(f"no obligation {obligation_id}")
    may_read(caller, found, f"obligation {obligation_id}")
    return found, await uow.repository(DeadlineStepRepository).changes(obligation_id)
