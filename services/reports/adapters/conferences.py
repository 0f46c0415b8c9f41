"""Staff conferences and their minutes: rows in, domain objects out."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports.adapters.db import conference_minutes, conferences, units
from services.reports.domain.conferences import Conference, Minutes
from shared.uow import seen

_COLUMNS = (
    "id",
    "obligation_id",
    "plan_id",
    "unit_code",
    "receiving_unit",
    "held_on",
    "participants",
    "on_time",
    "recorded_at",
    "recorded_by_unit",
)
_MINUTES = ("id", "filename", "content_type", "size", "sha256", "stored_as", "attached_at")


def _conference(row: Any, minutes: list[Minutes]) -> Conference:
    return Conference(
        **{name: getattr(row, name) for name in _COLUMNS},
        unit_path=list(row.unit_path),
        minutes=minutes,
    )


def _minutes(row: Any) -> Minutes:
    return Minutes(**{name: getattr(row, name) for name in _MINUTES})


class ConferenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, conference: Conference) -> None:
        seen(self.session, conference)
        await self.session.execute(
            conferences.insert().values(
                **{name: getattr(conference, name) for name in _COLUMNS},
                unit_path=list(conference.unit_path),
            )
        )

    async def add_minutes(self, conference_id: str, minutes: Minutes) -> None:
        await self.session.execute(
            conference_minutes.insert().values(
                conference_id=conference_id,
                **{name: getattr(minutes, name) for name in _MINUTES},
            )
        )

    async def get(self, conference_id: str) -> Conference | None:
        row = (
            await self.session.execute(
                sa.select(conferences).where(conferences.c.id == conference_id)
            )
        ).first()
        if row is None:
            return None
        return seen(self.session, (await self._with_minutes([row]))[0])

    async def find(
        self,
        *,
        plan_id: str | None = None,
        unit_codes: Collection[str] | None = None,
        obligation_ids: Collection[str] | None = None,
    ) -> list[Conference]:
        """With their minutes, in the order they were held."""
        query = sa.select(conferences).order_by(conferences.c.held_on, conferences.c.unit_code)
        if plan_id is not None:
            query = query.where(conferences.c.plan_id == plan_id)
        if unit_codes is not None:
            query = query.where(conferences.c.unit_code.in_(list(unit_codes)))
        if obligation_ids is not None:
            query = query.where(conferences.c.obligation_id.in_(list(obligation_ids)))
        return await self._with_minutes((await self.session.execute(query)).all())

    async def unit_names(self, codes: Collection[str]) -> dict[str, str]:
        """Names of the units of the read model (a nation's units fit in one IN list only in
        chunks: the callers ask for the units owing conferences to one receiving unit)."""
        query = sa.select(units.c.code, units.c.name).where(units.c.code.in_(list(codes)))
        return {row.code: row.name for row in await self.session.execute(query)}

    async def _with_minutes(self, rows: Collection[Any]) -> list[Conference]:
        ids = [row.id for row in rows]
        by_conference: dict[str, list[Minutes]] = {}
        if ids:
            found = await self.session.execute(
                sa.select(conference_minutes)
                .where(conference_minutes.c.conference_id.in_(ids))
                .order_by(conference_minutes.c.attached_at, conference_minutes.c.id)
            )
            for row in found:
                by_conference.setdefault(row.conference_id, []).append(_minutes(row))
        return [_conference(row, by_conference.get(row.id, [])) for row in rows]
