"""Repositories of the reports service: rows in, domain objects out."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports.adapters.db import obligations, receipt_counters, reports, units
from services.reports.domain.model import Obligation, ObligationStatus, Report, ReportStatus
from shared.events import ReportKind, UnitRegistered

_KNOWN_SEQUENCES: set[tuple[str, str]] = set()
"""Receipt-number sequences known to exist (PostgreSQL), by database URL and name."""


def _to_obligation(row: Any) -> Obligation:
    return Obligation(
        id=row.id,
        plan_id=row.plan_id,
        schedule_key=row.schedule_key,
        report_kind=ReportKind(row.report_kind),
        unit_code=row.unit_code,
        unit_path=list(row.unit_path),
        receiving_unit=row.receiving_unit,
        period_start=row.period_start,
        period_end=row.period_end,
        due_at=row.due_at,
        plan_doc_number=row.plan_doc_number,
        plan_title=row.plan_title,
        status=ObligationStatus(row.status),
        waived_reason=row.waived_reason,
        request_id=row.request_id,
        owned=row.owned,
    )


def _to_report(row: Any) -> Report:
    return Report(
        id=row.id,
        obligation_id=row.obligation_id,
        version=row.version,
        receipt_number=row.receipt_number,
        submitted_at=row.submitted_at,
        on_time=row.on_time,
        submitted_by=row.submitted_by,
        narrative=dict(row.narrative),
        indicators=dict(row.indicators),
        status=ReportStatus(row.status),
    )


class ObligationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, obligation_id: str) -> Obligation | None:
        row = (
            await self.session.execute(
                sa.select(obligations).where(obligations.c.id == obligation_id)
            )
        ).first()
        return _to_obligation(row) if row else None

    async def get_with_last_version(self, obligation_id: str) -> tuple[Obligation, int] | None:
        """The obligation and the version of its latest report (0 if none), in one query:
        what a submission needs to read."""
        last_version = (
            sa.select(sa.func.coalesce(sa.func.max(reports.c.version), 0))
            .where(reports.c.obligation_id == obligations.c.id)
            .scalar_subquery()
        )
        row = (
            await self.session.execute(
                sa.select(obligations, last_version.label("last_version")).where(
                    obligations.c.id == obligation_id
                )
            )
        ).first()
        return (_to_obligation(row), int(row.last_version)) if row else None

    async def add_if_missing(self, obligation: Obligation, opened_at: datetime) -> bool:
        if await self.get(obligation.id) is not None:
            return False
        await self.session.execute(
            obligations.insert().values(
                id=obligation.id,
                plan_id=obligation.plan_id,
                schedule_key=obligation.schedule_key,
                report_kind=obligation.report_kind.value,
                unit_code=obligation.unit_code,
                unit_path=obligation.unit_path,
                receiving_unit=obligation.receiving_unit,
                period_start=obligation.period_start,
                period_end=obligation.period_end,
                due_at=obligation.due_at,
                plan_doc_number=obligation.plan_doc_number,
                plan_title=obligation.plan_title,
                status=obligation.status.value,
                opened_at=opened_at,
                waived_reason=obligation.waived_reason,
                request_id=obligation.request_id,
                owned=obligation.owned,
            )
        )
        return True

    async def save(self, obligation: Obligation) -> None:
        """Save what changes over an obligation's life: status, waiver, deadline."""
        await self.session.execute(
            obligations.update()
            .where(obligations.c.id == obligation.id)
            .values(
                status=obligation.status.value,
                waived_reason=obligation.waived_reason,
                due_at=obligation.due_at,
            )
        )

    async def find(
        self,
        *,
        unit_code: str | None = None,
        status: str | None = None,
        plan_id: str | None = None,
        schedule_key: str | None = None,
    ) -> list[Obligation]:
        query = sa.select(obligations).order_by(obligations.c.due_at, obligations.c.unit_code)
        if schedule_key:
            query = query.where(obligations.c.schedule_key == schedule_key)
        if unit_code:
            query = query.where(obligations.c.unit_code == unit_code)
        if status:
            query = query.where(obligations.c.status == status)
        if plan_id:
            query = query.where(obligations.c.plan_id == plan_id)
        return [_to_obligation(row) for row in (await self.session.execute(query)).all()]


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, report_id: str) -> Report | None:
        row = (
            await self.session.execute(sa.select(reports).where(reports.c.id == report_id))
        ).first()
        return _to_report(row) if row else None

    async def by_idempotency_key(self, key: str) -> Report | None:
        row = (
            await self.session.execute(sa.select(reports).where(reports.c.idempotency_key == key))
        ).first()
        return _to_report(row) if row else None

    async def versions(self, obligation_id: str) -> list[Report]:
        rows = (
            await self.session.execute(
                sa.select(reports)
                .where(reports.c.obligation_id == obligation_id)
                .order_by(reports.c.version)
            )
        ).all()
        return [_to_report(row) for row in rows]

    async def save_review(
        self, report: Report, *, reviewer: str, at: datetime, reason: str | None = None
    ) -> None:
        await self.session.execute(
            reports.update()
            .where(reports.c.id == report.id)
            .values(
                status=report.status.value,
                reviewed_by_unit=reviewer,
                reviewed_at=at,
                review_reason=reason,
            )
        )

    async def next_receipt_number(self, year: int, prefix: str = "BC") -> str:
        """<prefix>-<year>-<6 digits>. Each instance has its own prefix, so receipts stay
        unique across instances.

        On PostgreSQL the number comes from a sequence per year: concurrent submissions do
        not queue for one counter row until each commits (a hot row that capped intake at
        one transaction at a time). A submission that fails after taking its number leaves
        a gap. On SQLite every write transaction holds the one database lock anyway, so the
        counter row costs no concurrency there and numbers have no gaps."""
        if self.session.get_bind().dialect.name == "postgresql":
            number = await self._next_from_sequence(year)
        else:
            number = await self._next_from_counter(year)
        return f"{prefix}-{year}-{number:06d}"

    async def _next_from_counter(self, year: int) -> int:
        updated = await self.session.execute(
            receipt_counters.update()
            .where(receipt_counters.c.year == year)
            .values(last_number=receipt_counters.c.last_number + 1)
            .returning(receipt_counters.c.last_number)
        )
        number = updated.scalar()
        if number is None:
            await self.session.execute(receipt_counters.insert().values(year=year, last_number=1))
            number = 1
        return int(number)

    async def _next_from_sequence(self, year: int) -> int:
        name = f"receipt_numbers_{year:04d}"
        await self._ensure_sequence(name, year)
        number = await self.session.scalar(sa.select(sa.func.nextval(name)))
        assert number is not None
        return int(number)

    async def _ensure_sequence(self, name: str, year: int) -> None:
        """Create the year's sequence with its first submission, after the numbers that the
        year's counter row gave before sequences were used. A concurrent creator may win:
        its sequence is then used. Remembered once the creating transaction committed, so
        this costs one query per year and process."""
        known = (self.session.get_bind().engine.url.render_as_string(), name)
        if known in _KNOWN_SEQUENCES:
            return
        if await self.session.scalar(sa.select(sa.func.to_regclass(name))) is None:
            counted = await self.session.scalar(
                sa.select(receipt_counters.c.last_number).where(receipt_counters.c.year == year)
            )
            start = int(counted or 0) + 1
            with contextlib.suppress(DBAPIError):
                async with self.session.begin_nested():
                    await self.session.execute(
                        sa.text(f"CREATE SEQUENCE IF NOT EXISTS {name} START WITH {start}")
                    )
        sa.event.listen(
            self.session.sync_session,
            "after_commit",
            lambda _session: _KNOWN_SEQUENCES.add(known),
            once=True,
        )

    async def add(self, report: Report, idempotency_key: str | None) -> None:
        await self.session.execute(
            reports.insert().values(
                id=report.id,
                obligation_id=report.obligation_id,
                version=report.version,
                receipt_number=report.receipt_number,
                idempotency_key=idempotency_key,
                submitted_at=report.submitted_at,
                on_time=report.on_time,
                submitted_by=report.submitted_by,
                narrative=report.narrative,
                indicators=report.indicators,
                status=report.status.value,
            )
        )


class UnitDirectory:
    """The reports service's copy of the unit registry, kept from UnitRegistered/Updated."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def save(self, event: UnitRegistered, now: datetime) -> None:
        values = {
            "name": event.name,
            "kind": event.kind,
            "path": list(event.unit_path),
            "parent_code": event.parent_code,
            "reports_to_code": event.reports_to_code,
            "head_email": event.contacts.head_email,
            "active": event.active,
            "updated_at": now,
        }
        updated = await self.session.execute(
            units.update().where(units.c.code == event.code).values(**values)
        )
        if not getattr(updated, "rowcount", 0):
            await self.session.execute(units.insert().values(code=event.code, **values))

    async def get(self, code: str) -> dict[str, Any] | None:
        row = (await self.session.execute(sa.select(units).where(units.c.code == code))).first()
        return dict(row._mapping) if row else None

    async def all(self) -> dict[str, dict[str, Any]]:
        rows = (await self.session.execute(sa.select(units))).all()
        return {row.code: dict(row._mapping) for row in rows}
