"""Recommendations after supervision and their history: rows in, domain objects out."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any

import sqlalchemy as sa

from services.reports.adapters.db import recommendation_history, recommendations
from services.reports.adapters.session_repository import SessionRepository
from services.reports.domain.recommendations import (
    Entry,
    Recommendation,
)
from shared.mapping import RowMapping
from shared.uow import seen

_STATE = ("status", "answered_at", "answered_on_time", "closed_at")


RECOMMENDATIONS = RowMapping(Recommendation, recommendations, given=("history",))
ENTRIES = RowMapping(Entry, recommendation_history)


def _recommendation(row: Any, history: list[Entry]) -> Recommendation:
    return RECOMMENDATIONS.from_row(row, history=history)


class RecommendationRepository(SessionRepository):
    async def add(self, recommendation: Recommendation) -> None:
        seen(self.session, recommendation)
        await self._insert(RECOMMENDATIONS, recommendation)

    async def get(self, recommendation_id: str, *, lock: bool = False) -> Recommendation | None:
        row = await self._row_by_id(recommendations, recommendation_id, lock=lock)
        if row is None:
            return None
        history = await self.session.execute(
            sa.select(recommendation_history)
            .where(recommendation_history.c.recommendation_id == recommendation_id)
            .order_by(recommendation_history.c.number)
        )
        return seen(self.session, _recommendation(row, [ENTRIES.from_row(h) for h in history]))

    async def save(self, recommendation: Recommendation, new: Entry) -> None:
        """Store the state and the one new history entry (entries are never rewritten)."""
        r = recommendation
        await self.session.execute(
            recommendations.update()
            .where(recommendations.c.id == r.id)
            .values(**RECOMMENDATIONS.changes(r, *_STATE))
        )
        await self._insert(ENTRIES, new, recommendation_id=r.id)

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
