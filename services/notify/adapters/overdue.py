"""Reports still missing after their last urging (``overdue_reports``): what the receiving
unit's daily digest lists once the urging has ended.

An entry is made by the final ``DeadlineMissed`` and withdrawn at once by whatever ends the
obligation's lateness: the report submitted, the unit removed from the plan (waived) or
dissolved, the plan closed, or the deadline moved by an amendment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.adapters.db import overdue_reports
from shared.events import (
    DeadlineMissed,
    Event,
    PlanAmended,
    PlanClosed,
    ReportKind,
    ReportSubmitted,
    UnitUpdated,
)


@dataclass(frozen=True)
class Overdue:
    obligation_id: str
    unit_code: str
    receiving_unit: str
    report_kind: ReportKind
    due_at: datetime
    plan_doc_number: str
    urgings: int
    since: datetime


class OverdueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def track(self, event: Event, now: datetime) -> None:
        """Keep the list in step with one event."""
        table = overdue_reports.c
        if isinstance(event, DeadlineMissed) and event.final:
            await self._add(event, now)
        elif isinstance(event, ReportSubmitted):
            await self._remove(table.obligation_id == event.obligation.obligation_id)
        elif isinstance(event, PlanClosed):
            await self._remove(table.plan_id == event.plan_id)
        elif isinstance(event, PlanAmended):
            keys = [change.key for change in event.schedule_changes]
            if keys:
                await self._remove(table.plan_id == event.plan_id, table.schedule_key.in_(keys))
            if event.removed_assignees:
                await self._remove(
                    table.plan_id == event.plan_id, table.unit_code.in_(event.removed_assignees)
                )
        elif isinstance(event, UnitUpdated) and not event.active:
            await self._remove(table.unit_code == event.code)

    async def _add(self, event: DeadlineMissed, now: datetime) -> None:
        ref = event.obligation
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        await self.session.execute(
            dialect.insert(overdue_reports)
            .values(
                obligation_id=ref.obligation_id,
                plan_id=ref.plan_id,
                schedule_key=ref.schedule_key,
                unit_code=ref.unit_code,
                receiving_unit=ref.receiving_unit,
                report_kind=ref.report_kind.value,
                due_at=ref.due_at,
                plan_doc_number=ref.plan_doc_number,
                urgings=event.step,
                since=now,
            )
            .on_conflict_do_nothing(index_elements=["obligation_id"])
        )

    async def _remove(self, *where: sa.ColumnElement[bool]) -> None:
        await self.session.execute(overdue_reports.delete().where(*where))

    async def receiving_units(self) -> list[str]:
        query = sa.select(overdue_reports.c.receiving_unit).distinct()
        return sorted((await self.session.scalars(query)).all())

    async def received_by(self, receiving_units: Iterable[str]) -> list[Overdue]:
        table = overdue_reports.c
        query = (
            sa.select(overdue_reports)
            .where(table.receiving_unit.in_(list(receiving_units)))
            .order_by(table.due_at, table.unit_code)
        )
        return [
            Overdue(
                obligation_id=row.obligation_id,
                unit_code=row.unit_code,
                receiving_unit=row.receiving_unit,
                report_kind=ReportKind(row.report_kind),
                due_at=row.due_at,
                plan_doc_number=row.plan_doc_number,
                urgings=row.urgings,
                since=row.since,
            )
            for row in await self.session.execute(query)
        ]
