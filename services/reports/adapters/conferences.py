"""Staff conferences and their minutes: rows in, domain objects out."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from services.reports.adapters.db import conference_minutes, conferences, units
from services.reports.adapters.session_repository import SessionRepository
from services.reports.domain.conferences import Conference, Minutes
from shared.mapping import RowMapping
from shared.uow import seen

CONFERENCES = RowMapping(Conference, conferences, given=("minutes",))
"""A conference is a row of ``conferences`` (its minutes are read beside it)."""
MINUTES = RowMapping(Minutes, conference_minutes)
"""The minutes' file is a row of ``conference_minutes``, beside its conference's id."""


class ConferenceRepository(SessionRepository):
    async def add(self, conference: Conference) -> None:
        seen(self.session, conference)
        await self._insert(CONFERENCES, conference)

    async def add_minutes(self, conference_id: str, minutes: Minutes) -> None:
        await self._insert(MINUTES, minutes, conference_id=conference_id)

    async def get(self, conference_id: str) -> Conference | None:
        row = await self._row_by_id(conferences, conference_id)
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
                by_conference.setdefault(row.conference_id, []).append(MINUTES.from_row(row))
        return [CONFERENCES.from_row(row, minutes=by_conference.get(row.id, [])) for row in rows]
