"""Handlers for consolidations: compute one live from the database, publish a version, read
published versions back.

A live consolidation reflects every report in the database when it is asked for, so one
refreshed after more reports arrived shows them. Publishing stores the consolidation as it
stands, as a new version (1, 2, … per plan, schedule key and receiving unit; earlier
versions are kept unchanged) and emits ``ConsolidationPublished`` through the outbox, in
the same transaction. Publishing again when nothing but the time of computing changed
(the same figures, units, statuses and narratives as the latest version) is not a new
version: the latest one is the answer, and nothing is emitted. The domain rules are in
:mod:`services.reports.domain.consolidation`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports.adapters.db import consolidations, obligations, reports, units
from services.reports.adapters.recommendations import RecommendationRepository
from services.reports.adapters.repositories import ObligationRepository, UnitDirectory
from services.reports.domain.consolidation import (
    Consolidation,
    SubmissionFacts,
    UnitFacts,
    consolidate,
)
from services.reports.domain.model import Obligation
from shared.auth import Principal, Role
from shared.errors import Missing, Refused
from shared.events import ConsolidationPublished
from shared.security import audit, authorize
from shared.uow import UnitOfWork, UnitOfWorkFactory, twice

log = structlog.get_logger(__name__)


class OutOfScope(Refused):
    """This instance may not speak for that receiving unit."""

    status_code = 403


@dataclass(frozen=True)
class ConsolidationKey:
    plan_id: str
    schedule_key: str
    receiving_unit: str


@dataclass(frozen=True)
class PublishConsolidation:
    key: ConsolidationKey
    published_by: str
    scope: str | None = None
    """The unit whose subtree this instance owns; None: the whole registry."""


@dataclass(frozen=True)
class PublishedConsolidation:
    id: str
    key: ConsolidationKey
    version: int
    published_at: datetime
    published_by: str
    consolidation: Consolidation
    created: bool = True
    """False when publishing found the latest version already says the same."""


# --- reading the database -------------------------------------------------------------------


async def _obligations(key: ConsolidationKey, session: AsyncSession) -> list[Obligation]:
    """The obligations to consolidate, or a 404 saying which part of the key is unknown."""
    of_entry = await ObligationRepository(session).find(
        plan_id=key.plan_id, schedule_key=key.schedule_key
    )
    if not of_entry:
        known = sa.select(obligations.c.id).where(obligations.c.plan_id == key.plan_id).limit(1)
        if await session.scalar(known) is None:
            raise Missing(f"no plan {key.plan_id} is known to this reports service")
        raise Missing(f"plan {key.plan_id} has no report {key.schedule_key!r}")
    mine = [o for o in of_entry if o.receiving_unit == key.receiving_unit]
    if not mine:
        raise Missing(
            f"no unit reports to {key.receiving_unit} for {key.schedule_key!r} of plan "
            f"{key.plan_id}"
        )
    return mine


async def _submissions(key: ConsolidationKey, session: AsyncSession) -> list[SubmissionFacts]:
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
    return [
        SubmissionFacts(
            obligation_id=row.obligation_id,
            report_id=row.id,
            version=row.version,
            receipt_number=row.receipt_number,
            submitted_at=row.submitted_at,
            on_time=row.on_time,
            status=row.status,
            narrative=row.narrative or {},
            indicators=row.indicators or {},
        )
        for row in (await session.execute(query)).all()
    ]


def _facts(row: Any) -> UnitFacts:
    return UnitFacts(
        code=row.code,
        name=row.name,
        kind=row.kind,
        path=tuple(row.path),
        parent_code=row.parent_code,
        reports_to_code=row.reports_to_code,
    )


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


async def _units(codes: Iterable[str], session: AsyncSession) -> dict[str, UnitFacts]:
    wanted = sorted(set(codes))
    found: dict[str, UnitFacts] = {}
    for start in range(0, len(wanted), UNITS_PER_QUERY):
        chunk = wanted[start : start + UNITS_PER_QUERY]
        query = sa.select(*_UNIT_COLUMNS).where(units.c.code.in_(chunk))
        rows = (await session.execute(query)).all()
        found.update((row.code, _facts(row)) for row in rows)
    return found


async def _receiver_and_units(
    receiving_unit: str, owed: Sequence[Obligation], session: AsyncSession
) -> dict[str, UnitFacts]:
    """The units a consolidation names: the receiver, the units on its path and on every
    reporting unit's path (districts), and those above the receiver (document heading)."""
    found = await _units([receiving_unit], session)
    receiver = found.get(receiving_unit)
    if receiver is None:
        raise Missing(f"unit {receiving_unit} is not known to this reports service")
    codes = {*receiver.path, receiver.parent_code or "", receiver.reports_to_code or ""}
    for obligation in owed:
        codes.update(obligation.unit_path)
    return await _units(codes - {""}, session)


async def current(key: ConsolidationKey, uow: UnitOfWork) -> Consolidation:
    """The consolidation as the database stands now."""
    found = await _obligations(key, uow.session)
    all_units = await _receiver_and_units(key.receiving_unit, found, uow.session)
    submissions = await _submissions(key, uow.session)
    recommendations = await RecommendationRepository(uow.session).addressed_to(
        {o.unit_code for o in found},
        min(o.period_start for o in found),
        max(o.period_end for o in found),
    )
    return consolidate(
        receiving_unit=key.receiving_unit,
        obligations=found,
        submissions=submissions,
        units=all_units,
        as_of=uow.clock.now(),
        recommendations=recommendations,
    )


# --- publishing -----------------------------------------------------------------------------


async def _latest(key: ConsolidationKey, session: AsyncSession) -> PublishedConsolidation | None:
    query = (
        sa.select(consolidations)
        .where(
            consolidations.c.plan_id == key.plan_id,
            consolidations.c.schedule_key == key.schedule_key,
            consolidations.c.receiving_unit == key.receiving_unit,
        )
        .order_by(consolidations.c.version.desc())
        .limit(1)
    )
    row = (await session.execute(query)).first()
    return _published(row) if row is not None else None


def _content(consolidation: Consolidation) -> dict[str, Any]:
    """What a version says: everything but the instant it was computed at."""
    return consolidation.model_dump(mode="json", exclude={"as_of"})


def _check_scope(consolidation: Consolidation, scope: str | None) -> None:
    """A district's instance publishes for the district and the units under it, never for
    the province (a consolidation is published in the receiving unit's name)."""
    if scope and scope not in consolidation.receiving_unit.path:
        raise OutOfScope(
            f"this instance speaks for {scope} and the units under it, not for "
            f"{consolidation.receiving_unit.code}",
            field="receiving_unit",
        )


def _event(published: PublishedConsolidation) -> ConsolidationPublished:
    c = published.consolidation
    return ConsolidationPublished(
        unit_path=c.receiving_unit.path,
        consolidation_id=published.id,
        version=published.version,
        plan_id=published.key.plan_id,
        schedule_key=published.key.schedule_key,
        receiving_unit=published.key.receiving_unit,
        period_start=c.heading.period_start,
        period_end=c.heading.period_end,
        expected=c.counts.expected,
        received=c.counts.received,
        on_time=c.counts.on_time,
        late=c.counts.late,
        missing=c.counts.missing,
        returned=c.counts.returned,
        published_at=published.published_at,
    )


async def publish(
    command: PublishConsolidation, uow: UnitOfWork, *, caller: Principal
) -> PublishedConsolidation:
    """Store the consolidation as it stands as the next version, and announce it. Two
    publications racing for one version number: the unique constraint refuses the second
    (IntegrityError), and the caller retries."""
    consolidation = await current(command.key, uow)
    _check_scope(consolidation, command.scope)
    authorize(
        caller,
        Role.REVIEWER,
        Role.ADMINISTRATOR,
        unit=command.key.receiving_unit,
        doing="publish consolidations",
    )
    latest = await _latest(command.key, uow.session)
    if latest is not None and _content(latest.consolidation) == _content(consolidation):
        log.info("consolidation unchanged", consolidation_id=latest.id, version=latest.version)
        return replace(latest, created=False)
    published = PublishedConsolidation(
        id=str(uuid.uuid4()),
        key=command.key,
        version=latest.version + 1 if latest is not None else 1,
        published_at=consolidation.as_of,
        published_by=command.published_by,
        consolidation=consolidation,
    )
    await uow.session.execute(
        consolidations.insert().values(
            id=published.id,
            plan_id=command.key.plan_id,
            schedule_key=command.key.schedule_key,
            receiving_unit=command.key.receiving_unit,
            version=published.version,
            published_at=published.published_at,
            published_by=published.published_by,
            content=consolidation.to_json(),
        )
    )
    uow.publish(_event(published))
    audit(
        uow,
        caller,
        "consolidation.published",
        f"{command.key.plan_id} {command.key.receiving_unit}",
    )
    await uow.commit()
    log.info(
        "consolidation published",
        consolidation_id=published.id,
        version=published.version,
        receiving_unit=command.key.receiving_unit,
        expected=consolidation.counts.expected,
        received=consolidation.counts.received,
    )
    return published


# --- published versions ---------------------------------------------------------------------


def _published(row: Any) -> PublishedConsolidation:
    return PublishedConsolidation(
        id=row.id,
        key=ConsolidationKey(row.plan_id, row.schedule_key, row.receiving_unit),
        version=row.version,
        published_at=row.published_at,
        published_by=row.published_by,
        consolidation=Consolidation.model_validate(row.content),
    )


async def published_versions(
    key: ConsolidationKey, uow: UnitOfWork
) -> list[PublishedConsolidation]:
    """Every published version for the key, oldest first."""
    query = (
        sa.select(consolidations)
        .where(
            consolidations.c.plan_id == key.plan_id,
            consolidations.c.schedule_key == key.schedule_key,
            consolidations.c.receiving_unit == key.receiving_unit,
        )
        .order_by(consolidations.c.version)
    )
    return [_published(row) for row in (await uow.session.execute(query)).all()]


async def published_version(consolidation_id: str, uow: UnitOfWork) -> PublishedConsolidation:
    query = sa.select(consolidations).where(consolidations.c.id == consolidation_id)
    row = (await uow.session.execute(query)).first()
    if row is None:
        raise Missing(f"no published consolidation {consolidation_id}")
    return _published(row)


async def may_read_live(key: ConsolidationKey, uow: UnitOfWork, *, caller: Principal) -> None:
    """The live consolidation (every unit's narratives and figures) is the receiving unit's:
    its own tokens and those above it read it. Published versions are the public results."""
    unit = await UnitDirectory(uow.session).get(key.receiving_unit)
    path = list(unit["path"]) if unit else [key.receiving_unit]
    caller.require_read(path, key.receiving_unit, f"the consolidation of {key.receiving_unit}")


async def read_current(
    key: ConsolidationKey, uows: UnitOfWorkFactory, *, caller: Principal
) -> Consolidation:
    """The live consolidation, if the caller may read it, in a unit of work of its own
    (closed before the caller renders a document of it)."""
    async with uows() as uow:
        await may_read_live(key, uow, caller=caller)
        return await current(key, uow)


async def publish_once(
    command: PublishConsolidation, uows: UnitOfWorkFactory, *, caller: Principal
) -> PublishedConsolidation:
    """Publish; when another publication took this version number first, the next one."""

    async def step(uow: UnitOfWork) -> PublishedConsolidation:
        return await publish(command, uow, caller=caller)

    return await twice(uows, step)
