"""What notify remembers of other services' events: units' contacts, plans and their assignees."""

from __future__ import annotations

import structlog

from services.notify.adapters.contacts import ContactRepository
from services.notify.adapters.known_plans import KnownPlan, PlanRepository
from services.notify.domain.model import Contact
from shared.bus.envelope import UndeliverableEvent
from shared.events import (
    DifficultyAnswered,
    DifficultyRaised,
    Event,
    PlanAmended,
    PlanIssued,
    ReportRequested,
    UnitRegistered,
)
from shared.personal_data import ContactsUnreadable, unseal
from shared.uow import UnitOfWork

log = structlog.get_logger(__name__)


async def remember(
    event: Event, uow: UnitOfWork, contacts_key: str
) -> tuple[KnownPlan | None, list[str]]:
    """Contacts from unit events; plans and their assignees from plan events, since
    PlanAmended carries only changes. Returns the event's plan and its assignees."""
    plans = uow.repository(PlanRepository)
    now = uow.clock.now()
    if isinstance(event, UnitRegistered):
        await uow.repository(ContactRepository).save(contact_of(event, contacts_key), now)
        return None, []
    if isinstance(event, PlanIssued):
        plan = KnownPlan(event.plan_id, event.doc_number, event.title, event.issuing_unit)
        await plans.save(plan, now)
        await plans.change_assignees(event.plan_id, add=[a.code for a in event.assignees])
        return plan, await plans.assignees(event.plan_id)
    if isinstance(event, PlanAmended):
        return await amend_plan(plans, event, uow)
    plan_id = plan_id_of(event)
    if plan_id is None or names_its_plan(event):
        return None, []
    return await plans.get(plan_id), []


def names_its_plan(event: Event) -> bool:
    """The event's obligation carries the plan's number and title: the messages show those,
    and there is nothing to look up."""
    obligation = getattr(event, "obligation", None)
    return bool(obligation and obligation.plan_doc_number and obligation.plan_title)


async def amend_plan(
    plans: PlanRepository, event: PlanAmended, uow: UnitOfWork
) -> tuple[KnownPlan | None, list[str]]:
    known = await plans.get(event.plan_id)
    if known is not None and (event.doc_number or event.title):
        known = KnownPlan(
            known.plan_id,
            event.doc_number or known.doc_number,
            event.title or known.title,
            known.issuing_unit,
        )
        await plans.save(known, uow.clock.now())
    await plans.change_assignees(
        event.plan_id,
        add=[a.code for a in event.added_assignees],
        remove=event.removed_assignees,
    )
    return known, await plans.assignees(event.plan_id)


def plan_id_of(event: Event) -> str | None:
    if isinstance(event, DifficultyRaised | DifficultyAnswered | ReportRequested):
        return event.plan_id
    obligation = getattr(event, "obligation", None)
    return getattr(obligation, "plan_id", None)


def contact_of(event: UnitRegistered, contacts_key: str = "") -> Contact:
    """UnitRegistered and UnitUpdated both carry the unit's full state; its e-mail
    addresses sealed, which only notify (and plans) can open. Contacts this key cannot open
    dead-letter the event: the operator sees it, rather than mail silently stopping."""
    try:
        contacts = unseal(event.contacts, contacts_key)
    except ContactsUnreadable as exc:
        raise UndeliverableEvent(f"unit {event.code}: {exc}") from exc
    return Contact(
        unit_code=event.code,
        name=event.name,
        unit_path=list(event.unit_path),
        focal_email=contacts.focal_email,
        head_email=contacts.head_email,
        webhook_url=contacts.webhook_url,
        kind=event.kind,
        tags=tuple(event.tags),
        parent_code=event.parent_code,
        reports_to_code=event.reports_to_code,
    )
