"""Handlers for staff conferences: open the obligations a plan implies, record a conference,
attach its minutes, and say where each unit stands."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import structlog

from services.reports.adapters.conferences import ConferenceRepository
from services.reports.adapters.repositories import ObligationRepository
from services.reports.adapters.storage import AttachmentStore
from services.reports.domain.conference_counts import ConferenceSummary, summarise_conferences
from services.reports.domain.conferences import (
    CONFERENCE_KEY,
    Conference,
    ConferencePlan,
    ConferenceRefused,
    ConferenceState,
    Minutes,
    conference_obligations,
    record_conference,
    state_of,
)
from services.reports.domain.model import Obligation, Ownership, obligation_id
from services.reports.handlers.acting import act_for_unit
from services.reports.handlers.intake import Attach, AttachmentRules, check_attachment, keep
from shared.auth import Principal
from shared.errors import Missing
from shared.events import Assignee, PlanAmended, PlanIssued
from shared.security import audit
from shared.uow import UnitOfWork

log = structlog.get_logger(__name__)


def obligations_of_plan_event(
    event: PlanIssued | PlanAmended,
    assignees: list[Assignee],
    content_areas: tuple[str, ...] | None,
) -> list[Obligation]:
    """The conference obligations a plan event opens for ``assignees`` (none when the plan
    asks for no conference)."""
    if event.staff_conference is None:
        return []
    plan = ConferencePlan(
        event.plan_id, event.doc_number, event.title, event.staff_conference, content_areas
    )
    return conference_obligations(plan, assignees)


@dataclass(frozen=True)
class RecordConference:
    plan_id: str
    unit_code: str
    held_on: date
    participants: int | None = None


async def record(
    command: RecordConference,
    uow: UnitOfWork,
    *,
    caller: Principal,
    ownership: Ownership = Ownership(),
) -> Conference:
    """The unit that held its conference records it; its obligation is met."""
    found = await uow.repository(ObligationRepository).get(
        obligation_id(command.plan_id, CONFERENCE_KEY, command.unit_code)
    )
    if found is None:
        raise Missing(
            f"plan {command.plan_id} asks no staff conference of unit {command.unit_code} "
            "(or this reports service does not know the plan)"
        )
    act_for_unit(caller, found.unit_code, found.unit_path, "record staff conferences")
    if not found.owned or not ownership.owns(found.unit_path):
        raise ConferenceRefused(
            f"unit {found.unit_code} is served by another instance (its district's)",
            field="unit_code",
        )
    conference = record_conference(
        found,
        conference_id=str(uuid.uuid4()),
        held_on=command.held_on,
        participants=command.participants,
        at=uow.clock.now(),
        by_unit=found.unit_code if caller.unit_code == "*" else caller.unit_code,
    )
    await uow.repository(ConferenceRepository).add(conference)
    await uow.repository(ObligationRepository).save(found)
    audit(uow, caller, "conference.recorded", conference.id)
    await uow.commit()
    log.info("staff conference recorded", conference_id=conference.id, unit=found.unit_code)
    return conference


async def _readable(conference_id: str, uow: UnitOfWork, caller: Principal) -> Conference:
    found = await uow.repository(ConferenceRepository).get(conference_id)
    if found is None:
        raise Missing(f"no conference {conference_id}")
    caller.require_read(found.unit_path, found.receiving_unit, "this conference")
    return found


async def conference(conference_id: str, uow: UnitOfWork, *, caller: Principal) -> Conference:
    return await _readable(conference_id, uow, caller)


async def attach_minutes(
    command: Attach,
    rules: AttachmentRules,
    store: AttachmentStore,
    uow: UnitOfWork,
    *,
    caller: Principal,
) -> Minutes:
    """The minutes of a recorded conference (``command.report_id``: the conference id), in
    the reports' attachment store and under the same rules (types, size, signatures)."""
    name = check_attachment(command, rules)
    found = await uow.repository(ConferenceRepository).get(command.report_id)
    if found is None:
        raise Missing(f"no conference {command.report_id}")
    act_for_unit(caller, found.unit_code, found.unit_path, "attach conference minutes")
    minutes = Minutes(str(uuid.uuid4()), **keep(command, name, store), attached_at=uow.clock.now())
    found.attach_minutes(minutes)
    await uow.repository(ConferenceRepository).add_minutes(found.id, minutes)
    audit(uow, caller, "conference.minutes_attached", f"{found.id} {name}")
    await uow.commit()
    return minutes


async def minutes_file(
    conference_id: str,
    minutes_id: str,
    store: AttachmentStore,
    uow: UnitOfWork,
    *,
    caller: Principal,
) -> tuple[Minutes, bytes]:
    found = await _readable(conference_id, uow, caller)
    for minutes in found.minutes:
        if minutes.id == minutes_id:
            return minutes, store.read(minutes.stored_as)
    raise Missing(f"conference {conference_id} has no minutes {minutes_id}")


@dataclass(frozen=True)
class ConferenceFilter:
    """Which units' conferences a listing asks for (None: any)."""

    plan_id: str | None = None
    unit_code: str | None = None
    receiving_unit: str | None = None


async def _with_conferences(owed: list[Obligation], uow: UnitOfWork) -> list[ConferenceState]:
    """Where each unit stands: its obligation with the conference recorded for it, if any."""
    held = await uow.repository(ConferenceRepository).find(obligation_ids=[o.id for o in owed])
    by_obligation = {c.obligation_id: c for c in held}
    now = uow.clock.now()
    return [state_of(o, by_obligation.get(o.id), now) for o in owed]


async def states(
    where: ConferenceFilter, uow: UnitOfWork, *, caller: Principal
) -> list[ConferenceState]:
    """Every conference obligation the caller may read (its subtree's, and those followed
    up by its unit), with the conference recorded for it, if any."""
    owed = await uow.repository(ObligationRepository).find(
        plan_id=where.plan_id,
        unit_code=where.unit_code,
        schedule_key=CONFERENCE_KEY,
        receiving_unit=where.receiving_unit,
    )
    owed = [o for o in owed if caller.may_read(o.unit_path, addressed_to=o.receiving_unit)]
    return await _with_conferences(owed, uow)


async def followed_up_by(
    plan_id: str, receiving_unit: str, uow: UnitOfWork, names: Mapping[str, str]
) -> ConferenceSummary:
    """The plan's staff conferences that ``receiving_unit`` follows up, counted for its
    consolidation (:mod:`services.reports.domain.conference_counts`)."""
    owed = await uow.repository(ObligationRepository).find(
        plan_id=plan_id, schedule_key=CONFERENCE_KEY, receiving_unit=receiving_unit
    )
    if not owed:
        return ConferenceSummary()
    unknown = {o.unit_code for o in owed} - set(names)
    if unknown:
        names = {**names, **await uow.repository(ConferenceRepository).unit_names(unknown)}
    return summarise_conferences(await _with_conferences(owed, uow), names)
