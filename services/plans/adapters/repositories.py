"""Repositories of the plans service: rows in, domain objects out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

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
    DEFAULT_CONFERENCE_KINDS,
    Plan,
    StaffConferenceRequirement,
)
from services.plans.domain.requests import Difficulty, ReportRequest, SubPlan
from services.plans.domain.units import Unit
from shared.db import matching
from shared.mapping import RowMapping
from shared.uow import Repository, seen

UNITS = RowMapping(Unit, units, read={"tags": lambda tags: tuple(tags or ())})
"""A unit is a row of ``units`` (its ``position`` and times are the row's own)."""


class UnitRepository(Repository):
    async def get(self, code: str) -> Unit | None:
        row = (await self.session.execute(sa.select(units).where(units.c.code == code))).first()
        return UNITS.from_row(row) if row else None

    async def all(self) -> dict[str, Unit]:
        rows = (await self.session.execute(sa.select(units).order_by(units.c.position))).all()
        return {row.code: UNITS.from_row(row) for row in rows}

    async def add(self, unit: Unit, registered_at: datetime) -> None:
        seen(self.session, unit)
        position = await self.session.scalar(sa.select(sa.func.count()).select_from(units))
        await self.session.execute(
            units.insert().values(
                **UNITS.values(unit, position=int(position or 0), registered_at=registered_at)
            )
        )

    async def save(self, unit: Unit, updated_at: datetime) -> None:
        seen(self.session, unit)
        await self.session.execute(
            units.update()
            .where(units.c.code == unit.code)
            .values(**UNITS.values(unit, updated_at=updated_at))
        )


PLANS = RowMapping(
    Plan,
    plans,
    packed={
        "details": (
            "signer",
            "legal_basis",
            "on_request",
            "sub_plan",
            "distribution",
            "difficulties_to",
            "staff_conference",
        )
    },
    read={"staff_conference": lambda stored: _staff_conference(stored or {})},
)
"""A plan is a row of ``plans``; what it has beyond the listing's columns is one JSON
object, ``details``."""


def _staff_conference(stored: dict[str, Any]) -> StaffConferenceRequirement:
    """Plans stored before staff conferences were asked for require none."""
    due_before = stored.get("due_before")
    return StaffConferenceRequirement(
        required=bool(stored.get("required", False)),
        due_before=date.fromisoformat(due_before) if due_before else None,
        unit_kinds=tuple(stored.get("unit_kinds") or DEFAULT_CONFERENCE_KINDS),
    )


class PlanRepository(Repository):
    async def get(self, plan_id: str) -> Plan | None:
        row = (await self.session.execute(sa.select(plans).where(plans.c.id == plan_id))).first()
        return PLANS.from_row(row) if row else None

    async def find(
        self, *, year: int | None = None, issuing_unit: str | None = None, status: str | None = None
    ) -> list[Plan]:
        query = sa.select(plans).order_by(plans.c.issued_on, plans.c.doc_number)
        query = matching(query, plans, year=year, issuing_unit=issuing_unit, status=status)
        return [PLANS.from_row(row) for row in (await self.session.execute(query)).all()]

    async def add(self, plan: Plan, now: datetime) -> None:
        await self.session.execute(
            plans.insert().values(**PLANS.values(plan, created_at=now, updated_at=now))
        )

    async def save(self, plan: Plan, now: datetime) -> None:
        await self.session.execute(
            plans.update().where(plans.c.id == plan.id).values(**PLANS.values(plan, updated_at=now))
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
        shown = plan_history.c["at", "actor", "action", "details"]
        query = sa.select(*shown).where(plan_history.c.plan_id == plan_id)
        rows = (await self.session.execute(query.order_by(plan_history.c.id))).all()
        return [dict(r._mapping) for r in rows]


SUB_PLANS = RowMapping(SubPlan, sub_plans)
REQUESTS = RowMapping(ReportRequest, report_requests)
DIFFICULTIES = RowMapping(Difficulty, difficulties)
"""A difficulty's latest answer is on its row too (see :meth:`DifficultyRepository.add_answer`)."""


class SubPlanRepository(Repository):
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

    async def add(self, sub_plan: SubPlan, registered_at: datetime) -> None:
        values = SUB_PLANS.values(sub_plan, registered_at=registered_at)
        await self.session.execute(sub_plans.insert().values(**values))


class ReportRequestRepository(Repository):
    async def add(self, request: ReportRequest, created_at: datetime) -> None:
        values = REQUESTS.values(request, created_at=created_at)
        await self.session.execute(report_requests.insert().values(**values))

    async def find(self, requesting_unit: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(report_requests).order_by(report_requests.c.created_at)
        query = matching(query, report_requests, requesting_unit=requesting_unit)
        return [dict(row._mapping) for row in (await self.session.execute(query)).all()]


class DifficultyRepository(Repository):
    async def add(self, difficulty: Difficulty) -> None:
        await self.session.execute(difficulties.insert().values(**DIFFICULTIES.values(difficulty)))

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
        query = matching(query, difficulties, plan_id=plan_id)
        rows = [dict(row._mapping) for row in (await self.session.execute(query)).all()]
        answers = await self._answers([row["id"] for row in rows])
        return [{**row, "answers": answers[row["id"]]} for row in rows]

    async def _answers(self, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        if not ids:
            return found
        answer = difficulty_answers.c
        query = (
            sa.select(*answer["difficulty_id", "number", "answer", "answered_by", "answered_at"])
            .where(answer.difficulty_id.in_(ids))
            .order_by(answer.difficulty_id, answer.number)
        )
        for row in (await self.session.execute(query)).all():
            found[row.difficulty_id].append(
                {k: v for k, v in row._mapping.items() if k != "difficulty_id"}
            )
        return found
