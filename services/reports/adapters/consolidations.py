"""Where consolidations come from and where published versions are kept: the SQL of
:mod:`services.reports.handlers.consolidation`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports.adapters.db import consolidations, obligations, reports, units
from services.reports.adapters.repositories import ObligationRepository
from services.reports.domain.consolidation import (
    Consolidation,
    ConsolidationKey,
    PublishedConsolidation,
    SubmissionFacts,
    UnitFacts,
)
from services.reports.domain.model import Obligation
from shared.mapping import RowMapping

UNIT_FACTS = RowMapping(UnitFacts, units)
SUBMISSIONS = RowMapping(
    SubmissionFacts,
    reports,
    renamed={"id": "report_id"},
    read={"narrative": lambda value: value or {}, "indicators": lambda value: value or {}},
)
"""A version of a report, as a consolidation counts it (a row of ``reports``' columns)."""
PUBLISHED = RowMapping(
    PublishedConsolidation,
    consolidations,
    renamed={"content": "consolidation"},
    read={"consolidation": Consolidation.model_validate},
    given=("key",),
    written={
        "plan_id": lambda p: p.key.plan_id,
        "schedule_key": lambda p: p.key.schedule_key,
        "receiving_unit": lambda p: p.key.receiving_unit,
        "content": lambda p: p.consolidation.to_json(),
    },
)
"""A published version: its key is three columns, its consolidation the JSON content."""


_UNIT_COLUMNS = (
    units.c.code,
    units.c.name,
    units.c.kind,
    units.c.path,
    units.c.parent_code,
    units.c.reports_to_code,
)
"""What :class:`UnitFacts` holds (contacts and timestamps are not read)."""
UNITS_PER_QUERY = 5000
"""Codes per ``IN`` list: SQLite and asyncpg take at most 32,767 bound parameters."""


class ConsolidationSource:
    """What a live consolidation is computed from: obligations, reports, units."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def obligations(self, plan_id: str, schedule_key: str) -> list[Obligation]:
        """The obligations of a plan's entry, whoever receives them."""
        return await ObligationRepository(self.session).find(
            plan_id=plan_id, schedule_key=schedule_key
        )

    async def plan_known(self, plan_id: str) -> bool:
        known = sa.select(obligations.c.id).where(obligations.c.plan_id == plan_id).limit(1)
        return await self.session.scalar(known) is not None

    async def submissions(self, key: ConsolidationKey) -> list[SubmissionFacts]:
        """Every version of every report owed to the receiving unit for this plan entry (a
        join rather than a list of obligation ids: one bound parameter per unit would run into
        the database's limit for a nation's communes)."""
        r = reports.c
        query = (
            sa.select(
                r.obligation_id,
                r.id,
                r.version,
                r.receipt_number,
                r.submitted_at,
                r.on_time,
                r.status,
                r.narrative,
                r.indicators,
            )
            .join(obligations, obligations.c.id == r.obligation_id)
            .where(
                obligations.c.plan_id == key.plan_id,
                obligations.c.schedule_key == key.schedule_key,
                obligations.c.receiving_unit == key.receiving_unit,
            )
        )
        return [SUBMISSIONS.from_mapping(row) for row in await self.session.execute(query)]

    async def units(self, codes: Iterable[str]) -> dict[str, UnitFacts]:
        """The units named, as a consolidation knows them (no contacts)."""
        wanted = sorted(set(codes))
        found: dict[str, UnitFacts] = {}
        for start in range(0, len(wanted), UNITS_PER_QUERY):
            chunk = wanted[start : start + UNITS_PER_QUERY]
            query = sa.select(*_UNIT_COLUMNS).where(units.c.code.in_(chunk))
            rows = (await self.session.execute(query)).all()
            found.update((row.code, UNIT_FACTS.from_mapping(row)) for row in rows)
        return found


class ConsolidationRepository:
    """Published versions: 1, 2, … per key, kept unchanged."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _of(self, key: ConsolidationKey) -> sa.Select[Any]:
        return sa.select(consolidations).where(
            consolidations.c.plan_id == key.plan_id,
            consolidations.c.schedule_key == key.schedule_key,
            consolidations.c.receiving_unit == key.receiving_unit,
        )

    async def latest(self, key: ConsolidationKey) -> PublishedConsolidation | None:
        query = self._of(key).order_by(consolidations.c.version.desc()).limit(1)
        row = (await self.session.execute(query)).first()
        return _published(row) if row is not None else None

    async def versions(self, key: ConsolidationKey) -> list[PublishedConsolidation]:
        """Every published version for the key, oldest first."""
        query = self._of(key).order_by(consolidations.c.version)
        return [_published(row) for row in (await self.session.execute(query)).all()]

    async def get(self, consolidation_id: str) -> PublishedConsolidation | None:
        query = sa.select(consolidations).where(consolidations.c.id == consolidation_id)
        row = (await self.session.execute(query)).first()
        return _published(row) if row is not None else None

    async def add(self, published: PublishedConsolidation) -> None:
        """Two publications racing for one version number: the unique constraint refuses
        the second (IntegrityError), and the caller retries."""
        await self.session.execute(consolidations.insert().values(**PUBLISHED.values(published)))


def _published(row: Any) -> PublishedConsolidation:
    key = ConsolidationKey(row.plan_id, row.schedule_key, row.receiving_unit)
    return PUBLISHED.from_row(row, key=key)
