"""Recommendations after supervision and their history: rows in, domain objects out."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports.adapters.db import recommendation_history, recommendations
from services.reports.domain.recommendations import (
    Entry,
    EntryKind,
    Recommendation,
    RecommendationStatus,
)

_STATE = ("status", "answered_at", "answered_on_time", "closed_at")


def _entry(row: Any) -> Entry:
    return Entry(row.number, EntryKind(row.kind), row.text, row.at, row.by_unit, row.completed)


def _recommendation(row: Any, history: list[Entry]) -> Recommendation:
    return Recommendation(
        id=row.id,
        source_organisation=row.source_organisation,
        topic=row.topic,
        content=row.content,
        addressed_unit=row.addressed_unit,
        addressed_path=list(row.addressed_path),
        registered_by_unit=row.registered_by_unit,
        received_on=row.received_on,
        registered_at=row.registered_at,
        answer_due_at=row.answer_due_at,
        status=RecommendationStatus(row.status),
        answered_at=row.answered_at,
        answered_on_time=row.answered_on_time,
        closed_at=row.closed_at,
        history=history,
    )


class RecommendationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, recommendation: Recommendation) -> None:
        r = recommendation
        await self.session.execute(
            recommendations.insert().values(
                id=r.id,
                source_organisation=r.source_organisation,
                topic=r.topic,
                content=r.content,
                addressed_unit=r.addressed_unit,
                addressed_path=list(r.addressed_path),
                registered_by_unit=r.registered_by_unit,
                received_on=r.received_on,
                registered_at=r.registered_at,
                answer_due_at=r.answer_due_at,
                **{name: getattr(r, name) for name in _STATE},
            )
        )

    async def get(self, recommendation_id: str, *, lock: bool = False) -> Recommendation | None:
        query = sa.select(recommendations).where(recommendations.c.id == recommendation_id)
        row = (await self.session.execute(query.with_for_update() if lock else query)).first()
        if row is None:
            return None
        history = await self.session.execute(
            sa.select(recommendation_history)
            .where(recommendation_history.c.recommendation_id == recommendation_id)
            .order_by(recommendation_history.c.number)
        )
        return _recommendation(row, [_entry(h) for h in history])

    async def save(self, recommendation: Recommendation, new: Entry) -> None:
        """Store the state and the one new history entry (entries are never rewritten)."""
        r = recommendation
        await self.session.execute(
            recommendations.update()
            .where(recommendations.c.id == r.id)
            .values(status=r.status.value, **{name: getattr(r, name) for name in _STATE[1:]})
        )
        await self.session.execute(
            recommendation_history.insert().values(
                recommendation_id=r.id,
                number=new.number,
                kind=new.kind.value,
                text=new.text,
                at=new.at,
                by_unit=new.by_unit,
                completed=new.completed,
            )
        )

    async def addressed_to(
        self, unit_codes: Collection[str], received_from: date, received_to: date
    ) -> list[Recommendation]:
        """Those addressed to ``unit_codes`` and received within the dates (both included),
        without their history (the counts need only their state)."""
        rows = await self.session.execute(
            sa.select(recommendations)
            .where(
                recommendations.c.addressed_unit.in_(list(unit_codes)),
                recommendations.c.received_on >= received_from,
                recommendations.c.received_on <= received_to,
            )
            .order_by(recommendations.c.received_on, recommendations.c.id)
        )
        return [_recommendation(row, []) for row in rows]

    async def of_units(
        self, unit_codes: Collection[str] | None, status: str | None
    ) -> list[Recommendation]:
        """Newest received first, without their history; ``unit_codes`` None: every unit.
        (Recommendations are counted in thousands a year, not millions: read scopes, which
        are paths, are applied by the caller.)"""
        query = sa.select(recommendations)
        if unit_codes is not None:
            query = query.where(recommendations.c.addressed_unit.in_(list(unit_codes)))
        if status is not None:
            query = query.where(recommendations.c.status == status)
        query = query.order_by(recommendations.c.received_on.desc(), recommendations.c.id)
        return [_recommendation(row, []) for row in await self.session.execute(query)]
