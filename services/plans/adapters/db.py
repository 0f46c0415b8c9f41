"""Tables and repositories of the plans service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.plans.domain.plans import AssigneeRule, Plan, PlanStatus, ScheduleEntry
from services.plans.domain.units import Unit
from shared.db import UTCDateTime, messaging_tables
from shared.events import Contacts, ContentArea, ReportKind

metadata = sa.MetaData()
messaging = messaging_tables(metadata)

units = sa.Table(
    "units",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("parent_code", sa.String(32), sa.ForeignKey("units.code"), nullable=True),
    sa.Column("reports_to_code", sa.String(32), sa.ForeignKey("units.code"), nullable=True),
    sa.Column("path", sa.JSON, nullable=False),
    sa.Column("contacts", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("position", sa.Integer, nullable=False, autoincrement=False),
    sa.Column("registered_at", UTCDateTime, nullable=False),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("doc_number", sa.String(64), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("issuing_unit", sa.String(32), sa.ForeignKey("units.code"), nullable=False),
    sa.Column("issued_on", sa.Date, nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("place", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("content_areas", sa.JSON, nullable=False),
    sa.Column("assignee_rule", sa.JSON, nullable=False),
    sa.Column("schedule", sa.JSON, nullable=False),
    sa.Column("assignees", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


def _to_unit(row: Any) -> Unit:
    return Unit(
        code=row.code,
        name=row.name,
        kind=row.kind,
        path=list(row.path),
        parent_code=row.parent_code,
        reports_to_code=row.reports_to_code,
        contacts=Contacts.model_validate(row.contacts),
        active=row.active,
    )


class UnitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, code: str) -> Unit | None:
        row = (await self.session.execute(sa.select(units).where(units.c.code == code))).first()
        return _to_unit(row) if row else None

    async def all(self) -> dict[str, Unit]:
        rows = (await self.session.execute(sa.select(units).order_by(units.c.position))).all()
        return {row.code: _to_unit(row) for row in rows}

    async def add(self, unit: Unit, registered_at: datetime) -> None:
        position = await self.session.scalar(sa.select(sa.func.count()).select_from(units))
        await self.session.execute(
            units.insert().values(
                code=unit.code,
                name=unit.name,
                kind=unit.kind,
                parent_code=unit.parent_code,
                reports_to_code=unit.reports_to_code,
                path=unit.path,
                contacts=unit.contacts.model_dump(),
                active=unit.active,
                position=int(position or 0),
                registered_at=registered_at,
            )
        )


def _plan_values(plan: Plan) -> dict[str, Any]:
    return {
        "doc_number": plan.doc_number,
        "title": plan.title,
        "issuing_unit": plan.issuing_unit,
        "issued_on": plan.issued_on,
        "year": plan.year,
        "place": plan.place,
        "status": plan.status.value,
        "content_areas": [area.model_dump() for area in plan.content_areas],
        "assignee_rule": {
            "kinds": list(plan.assignee_rule.kinds),
            "subtrees": list(plan.assignee_rule.subtrees),
            "units": list(plan.assignee_rule.units),
        },
        "schedule": [
            {
                "key": e.key,
                "kind": e.kind.value,
                "title": e.title,
                "period_start": e.period_start.isoformat(),
                "period_end": e.period_end.isoformat(),
                "due_before": e.due_before.isoformat(),
                "receiving_unit": e.receiving_unit,
            }
            for e in plan.schedule
        ],
        "assignees": plan.assignees,
    }


def _to_plan(row: Any) -> Plan:
    rule = row.assignee_rule
    return Plan(
        id=row.id,
        doc_number=row.doc_number,
        title=row.title,
        issuing_unit=row.issuing_unit,
        issued_on=row.issued_on,
        year=row.year,
        place=row.place,
        status=PlanStatus(row.status),
        content_areas=[ContentArea.model_validate(a) for a in row.content_areas],
        assignee_rule=AssigneeRule(
            kinds=tuple(rule["kinds"]), subtrees=tuple(rule["subtrees"]), units=tuple(rule["units"])
        ),
        schedule=[
            ScheduleEntry(
                key=e["key"],
                kind=ReportKind(e["kind"]),
                title=e["title"],
                period_start=date.fromisoformat(e["period_start"]),
                period_end=date.fromisoformat(e["period_end"]),
                due_before=date.fromisoformat(e["due_before"]),
                receiving_unit=e["receiving_unit"],
            )
            for e in row.schedule
        ],
        assignees=list(row.assignees),
    )


class PlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, plan_id: str) -> Plan | None:
        row = (await self.session.execute(sa.select(plans).where(plans.c.id == plan_id))).first()
        return _to_plan(row) if row else None

    async def add(self, plan: Plan, now: datetime) -> None:
        await self.session.execute(
            plans.insert().values(id=plan.id, created_at=now, updated_at=now, **_plan_values(plan))
        )

    async def save(self, plan: Plan, now: datetime) -> None:
        await self.session.execute(
            plans.update().where(plans.c.id == plan.id).values(updated_at=now, **_plan_values(plan))
        )
