"""Plans as notify needs them: number, title and current assignees."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from services.notify.adapters.db import known_plans, plan_assignees
from shared.mapping import RowMapping
from shared.uow import Repository


@dataclass(frozen=True)
class KnownPlan:
    plan_id: str
    doc_number: str
    title: str
    issuing_unit: str


KNOWN_PLANS = RowMapping(KnownPlan, known_plans)


class PlanRepository(Repository):
    """Plans as notify needs them: number, title and current assignees."""

    async def get(self, plan_id: str) -> KnownPlan | None:
        row = (
            await self.session.execute(
                sa.select(known_plans).where(known_plans.c.plan_id == plan_id)
            )
        ).first()
        return KNOWN_PLANS.from_row(row) if row is not None else None

    async def save(self, plan: KnownPlan, now: datetime) -> None:
        await self.session.execute(
            known_plans.delete().where(known_plans.c.plan_id == plan.plan_id)
        )
        await self.session.execute(
            known_plans.insert().values(**KNOWN_PLANS.values(plan, updated_at=now))
        )

    async def assignees(self, plan_id: str) -> list[str]:
        query = (
            sa.select(plan_assignees.c.unit_code)
            .where(plan_assignees.c.plan_id == plan_id)
            .order_by(plan_assignees.c.unit_code)
        )
        return list((await self.session.scalars(query)).all())

    async def change_assignees(
        self, plan_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        known = set(await self.assignees(plan_id))
        if remove:
            await self.session.execute(
                plan_assignees.delete().where(
                    plan_assignees.c.plan_id == plan_id, plan_assignees.c.unit_code.in_(remove)
                )
            )
        new = [code for code in dict.fromkeys(add) if code not in known or code in remove]
        if new:
            await self.session.execute(
                plan_assignees.insert(), [{"plan_id": plan_id, "unit_code": c} for c in new]
            )
