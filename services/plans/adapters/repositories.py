"""Repositories of the plans service: rows in, domain objects out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.plans.adapters.db import (
    difficulties,
    difficulty_answers,
    plan_history,
    plans,
    report_requests,
    sub_plans,
    units,
)
from services.plans.domain.plans import (
    AssigneeRule,
    LegalDocument,
    Plan,
    PlanStatus,
    ScheduleEntry,
    Signer,
    SubPlanRequirement,
)
from services.plans.domain.units import Unit
from shared.events import ContentArea, ReportKind
from shared.mapping import RowMapping

UNITS = RowMapping(Unit, units, read={"tags": lambda tags: tuple(tags or ())})
"""A unit is a row of ``units`` (its ``position`` and times are the row's own)."""


class UnitRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, code: str) -> Unit | None:
        row = (await self.session.execute(sa.select(units).where(units.c.code == code))).first()
        return UNITS.from_row(row) if row else None

    async def all(self) -> dict[str, Unit]:
        rows = (await self.session.execute(sa.select(units).order_by(units.c.position))).all()
        return {row.code: UNITS.from_row(row) for row in rows}

    async def add(self, unit: Unit, registered_at: datetime) -> None:
        position = await self.session.scalar(sa.select(sa.func.count()).select_from(units))
        await self.session.execute(
            units.insert().values(
                **UNITS.values(unit, position=int(position or 0), registered_at=registered_at)
            )
        )

    async def save(self, unit: Unit, updated_at: datetime) -> None:
        await self.session.execute(
            units.update()
            .where(units.c.code == unit.code)
            .values(**UNITS.values(unit, updated_at=updated_at))
        )


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _details(plan: Plan) -> dict[str, Any]:
    return {
        "signer": {"name": plan.signer.name, "position": plan.signer.position},
        "legal_basis": [
            {"number": d.number, "date": _iso(d.date), "issuer": d.issuer, "title": d.title}
            for d in plan.legal_basis
        ],
        "on_request": [kind.value for kind in plan.on_request],
        "sub_plan": {
            "required": plan.sub_plan.required,
            "due_before": _iso(plan.sub_plan.due_before),
        },
        "distribution": plan.distribution,
        "difficulties_to": plan.difficulties_to,
    }


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
            "kinds_via_parent": list(plan.assignee_rule.kinds_via_parent),
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
        "details": _details(plan),
        "parent_plan_id": plan.parent_plan_id,
        "amendments": plan.amendments,
    }


def _to_plan(row: Any) -> Plan:
    rule = row.assignee_rule
    details = row.details or {}
    sub_plan = details.get("sub_plan") or {}
    signer = details.get("signer") or {}
    return Plan(
        id=row.id,
        doc_number=row.doc_number,
        title=row.title,
        issuing_unit=row.issuing_unit,
        issued_on=row.issued_on,
        year=row.year,
        place=row.place,
        signer=Signer(name=signer.get("name", ""), position=signer.get("position", "")),
        legal_basis=[
            LegalDocument(
                number=d["number"], date=_day(d["date"]), issuer=d["issuer"], title=d["title"]
            )
            for d in details.get("legal_basis", [])
        ],
        status=PlanStatus(row.status),
        content_areas=[ContentArea.model_validate(a) for a in row.content_areas],
        assignee_rule=AssigneeRule(
            kinds=tuple(rule.get("kinds", ())),
            kinds_via_parent=tuple(rule.get("kinds_via_parent", ())),
            subtrees=tuple(rule.get("subtrees", ())),
            units=tuple(rule.get("units", ())),
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
        on_request=tuple(ReportKind(k) for k in details.get("on_request", [])),
        sub_plan=SubPlanRequirement(
            required=bool(sub_plan.get("required", False)),
            due_before=_day(sub_plan.get("due_before")),
        ),
        distribution=list(details.get("distribution", [])),
        parent_plan_id=row.parent_plan_id,
        difficulties_to=details.get("difficulties_to"),
        assignees=list(row.assignees),
        amendments=row.amendments,
    )


class PlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, plan_id: str) -> Plan | None:
        row = (await self.session.execute(sa.select(plans).where(plans.c.id == plan_id))).first()
        return _to_plan(row) if row else None

    async def find(
        self, *, year: int | None = None, issuing_unit: str | None = None, status: str | None = None
    ) -> list[Plan]:
        query = sa.select(plans).order_by(plans.c.issued_on, plans.c.doc_number)
        if year is not None:
            query = query.where(plans.c.year == year)
        if issuing_unit:
            query = query.where(plans.c.issuing_unit == issuing_unit)
        if status:
            query = query.where(plans.c.status == status)
        return [_to_plan(row) for row in (await self.session.execute(query)).all()]

    async def add(self, plan: Plan, now: datetime) -> None:
        await self.session.execute(
            plans.insert().values(id=plan.id, created_at=now, updated_at=now, **_plan_values(plan))
        )

    async def save(self, plan: Plan, now: datetime) -> None:
        await self.session.execute(
            plans.update().where(plans.c.id == plan.id).values(updated_at=now, **_plan_values(plan))
        )

    async def record(
        self, plan_id: str, *, at: datetime, actor: str, action: str, details: dict[str, Any]
    ) -> None:
        """Append to the plan's history: who did what, when."""
        await self.session.execute(
            plan_history.insert().values(
                plan_id=plan_id, at=at, actor=actor, action=action, details=details
            )
        )

    async def history(self, plan_id: str) -> list[dict[str, Any]]:
        rows = (
            await self.session.execute(
                sa.select(plan_history)
                .where(plan_history.c.plan_id == plan_id)
                .order_by(plan_history.c.id)
            )
        ).all()
        return [
            {"at": r.at, "actor": r.actor, "action": r.action, "details": r.details} for r in rows
        ]


class SubPlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def registered(self, parent_plan_id: str) -> list[dict[str, Any]]:
        rows = (
            await self.session.execute(
                sa.select(sub_plans)
                .where(sub_plans.c.parent_plan_id == parent_plan_id)
                .order_by(sub_plans.c.registered_at)
            )
        ).all()
        return [dict(row._mapping) for row in rows]

    async def exists(self, parent_plan_id: str, unit_code: str) -> bool:
        found = await self.session.scalar(
            sa.select(sa.func.count())
            .select_from(sub_plans)
            .where(sub_plans.c.parent_plan_id == parent_plan_id, sub_plans.c.unit_code == unit_code)
        )
        return bool(found)

    async def add(self, **values: Any) -> None:
        await self.session.execute(sub_plans.insert().values(**values))


class ReportRequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, **values: Any) -> None:
        await self.session.execute(report_requests.insert().values(**values))

    async def find(self, requesting_unit: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(report_requests).order_by(report_requests.c.created_at)
        if requesting_unit:
            query = query.where(report_requests.c.requesting_unit == requesting_unit)
        return [dict(row._mapping) for row in (await self.session.execute(query)).all()]


class DifficultyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, **values: Any) -> None:
        await self.session.execute(difficulties.insert().values(**values))

    async def get(self, difficulty_id: str, *, lock: bool = False) -> dict[str, Any] | None:
        """The difficulty with its answers. ``lock``: its row is held (PostgreSQL) so two
        answers at once are numbered one after the other."""
        query = sa.select(difficulties).where(difficulties.c.id == difficulty_id)
        row = (await self.session.execute(query.with_for_update() if lock else query)).first()
        if row is None:
            return None
        return {**row._mapping, "answers": (await self._answers([difficulty_id]))[difficulty_id]}

    async def add_answer(self, difficulty_id: str, **values: Any) -> int:
        """Append an answer to the thread; returns its number (1, 2, …). The latest is
        also kept on the difficulty's row, as before answers were a thread."""
        number = 1 + int(
            await self.session.scalar(
                sa.select(sa.func.count())
                .select_from(difficulty_answers)
                .where(difficulty_answers.c.difficulty_id == difficulty_id)
            )
            or 0
        )
        await self.session.execute(
            difficulty_answers.insert().values(difficulty_id=difficulty_id, number=number, **values)
        )
        await self.session.execute(
            difficulties.update().where(difficulties.c.id == difficulty_id).values(**values)
        )
        return number

    async def find(self, plan_id: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(difficulties).order_by(difficulties.c.raised_at)
        if plan_id:
            query = query.where(difficulties.c.plan_id == plan_id)
        rows = [dict(row._mapping) for row in (await self.session.execute(query)).all()]
        answers = await self._answers([row["id"] for row in rows])
        return [{**row, "answers": answers[row["id"]]} for row in rows]

    async def _answers(self, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        if not ids:
            return found
        query = (
            sa.select(difficulty_answers)
            .where(difficulty_answers.c.difficulty_id.in_(ids))
            .order_by(difficulty_answers.c.difficulty_id, difficulty_answers.c.number)
        )
        for row in (await self.session.execute(query)).all():
            found[row.difficulty_id].append(
                {
                    "number": row.number,
                    "answer": row.answer,
                    "answered_by": row.answered_by,
                    "answered_at": row.answered_at,
                }
            )
        return found
