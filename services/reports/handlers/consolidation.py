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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog

from services.reports.adapters.consolidations import ConsolidationRepository, ConsolidationSource
from services.reports.adapters.inspections import InspectionRepository
from services.reports.adapters.recommendations import RecommendationRepository
from services.reports.adapters.repositories import UnitDirectory
from services.reports.domain.conferences import CONFERENCE_KEY
from services.reports.domain.consolidation import (
    Consolidation,
    ConsolidationKey,
    PublishedConsolidation,
    UnitFacts,
    consolidate,
)
from services.reports.domain.model import Obligation
from services.reports.handlers import conferences as conference_handlers
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
class PublishConsolidation:
    key: ConsolidationKey
    published_by: str
    scope: str | None = None
    """The unit whose subtree this instance owns; None: the whole registry."""


async def _obligations(key: ConsolidationKey, source: ConsolidationSource) -> list[Obligation]:
    """The obligations to consolidate, or a 404 saying which part of the key is unknown."""
    if key.schedule_key == CONFERENCE_KEY:
        raise Missing(
            "staff conferences are not reports: every consolidation of the plan counts them "
            "(conferences), and GET /conferences lists them"
        )
    of_entry = await source.obligations(key.plan_id, key.schedule_key)
    if not of_entry:
        if not await source.plan_known(key.plan_id):
            raise Missing(f"no plan {key.plan_id} is known to this reports service")
        raise Missing(f"plan {key.plan_id} has no report {key.schedule_key!r}")
    mine = [o for o in of_entry if o.receiving_unit == key.receiving_unit]
    if not mine:
        raise Missing(
            f"no unit reports to {key.receiving_unit} for {key.schedule_key!r} of plan "
            f"{key.plan_id}"
        )
    return mine


async def _receiver_and_units(
    receiving_unit: str, owed: Sequence[Obligation], source: ConsolidationSource
) -> dict[str, UnitFacts]:
    """The units a consolidation names: the receiver, the units on its path and on every
    reporting unit's path (districts), and those above the receiver (document heading)."""
    found = await source.units([receiving_unit])
    receiver = found.get(receiving_unit)
    if receiver is None:
        raise Missing(f"unit {receiving_unit} is not known to this reports service")
    codes = {*receiver.path, receiver.parent_code or "", receiver.reports_to_code or ""}
    for obligation in owed:
        codes.update(obligation.unit_path)
    return await source.units(codes - {""})


async def current(key: ConsolidationKey, uow: UnitOfWork) -> Consolidation:
    """The consolidation as the database stands now."""
    source = uow.repository(ConsolidationSource)
    found = await _obligations(key, source)
    all_units = await _receiver_and_units(key.receiving_unit, found, source)
    submissions = await source.submissions(key)
    recommendations = await uow.repository(RecommendationRepository).addressed_to(
        {o.unit_code for o in found},
        min(o.period_start for o in found),
        max(o.period_end for o in found),
    )
    inspections = await uow.repository(InspectionRepository).planned_for(
        {o.unit_code for o in found},
        min(o.period_start for o in found),
        max(o.period_end for o in found),
    )
    conferences = await conference_handlers.followed_up_by(
        key.plan_id, key.receiving_unit, uow, {code: u.name for code, u in all_units.items()}
    )
    return consolidate(
        receiving_unit=key.receiving_unit,
        obligations=found,
        submissions=submissions,
        units=all_units,
        as_of=uow.clock.now(),
        recommendations=recommendations,
        inspections=inspections,
        conferences=conferences,
    )


# --- publishing -----------------------------------------------------------------------------


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
    versions = uow.repository(ConsolidationRepository)
    latest = await versions.latest(command.key)
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
    await versions.add(published)
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


async def published_versions(
    key: ConsolidationKey, uow: UnitOfWork
) -> list[PublishedConsolidation]:
    """Every published version for the key, oldest first."""
    return await uow.repository(ConsolidationRepository).versions(key)


async def published_version(consolidation_id: str, uow: UnitOfWork) -> PublishedConsolidation:
    found = await uow.repository(ConsolidationRepository).get(consolidation_id)
    if found is None:
        raise Missing(f"no published consolidation {consolidation_id}")
    return found


async def may_read_live(key: ConsolidationKey, uow: UnitOfWork, *, caller: Principal) -> None:
    """The live consolidation (every unit's narratives and figures) is the receiving unit's:
    its own tokens and those above it read it. Published versions are the public results."""
    unit = await uow.repository(UnitDirectory).get(key.receiving_unit)
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
