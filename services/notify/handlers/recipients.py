"""Who gets an event's messages: the contacts of the rules' targets and of the subscribers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from services.notify.adapters.contacts import ContactRepository
from services.notify.domain.model import Contact, Subscription
from services.notify.domain.rules import (
    REQUIRED_ROLES,
    SUBSCRIBER_TEMPLATES,
    Recipient,
    Target,
    mentioned_units,
    role_codes,
)
from shared.events import (
    Channel,
    Event,
    PlanAmended,
    PlanIssued,
    ReportRequested,
)
from shared.uow import UnitOfWork

log = structlog.get_logger(__name__)


SUBSCRIBER = "subscriber"
"""The audience of a subscriber's e-mail, addressed to the subscribed unit."""


class ContactUnknown(Exception):
    """The unit's contacts have not arrived yet; retried, since unit events may lag."""


async def contacts_for(
    uow: UnitOfWork,
    event: Event,
    targets: Mapping[str, Target],
    assignees: Sequence[str],
    matching: Sequence[Subscription],
) -> dict[str, Contact]:
    """Every contact the messages need, in one query; missing required ones are retried."""
    wanted = {key: role_codes(t.role, event, assignees) for key, t in targets.items()}
    codes = [c for found in wanted.values() for c in found]
    codes += mentioned_units(event) + assignee_codes(event) + [s.unit_code for s in matching]
    contacts = await uow.repository(ContactRepository).get_many(codes)
    for key, found in wanted.items():
        missing = [c for c in found if c not in contacts]
        if missing and targets[key].role in REQUIRED_ROLES:
            raise ContactUnknown(f"no contacts known yet for unit {', '.join(missing)}")
    return contacts


def assignee_codes(event: Event) -> list[str]:
    """Units whose names a plan or request message lists."""
    if isinstance(event, PlanIssued):
        return [a.code for a in event.assignees]
    if isinstance(event, PlanAmended):
        return [a.code for a in event.added_assignees]
    if isinstance(event, ReportRequested):
        return [a.code for a in event.units]
    return []


async def contacts_by_target(
    uow: UnitOfWork,
    event: Event,
    targets: Mapping[str, Target],
    assignees: Sequence[str],
    contacts: Mapping[str, Contact],
) -> dict[str, list[Contact]]:
    result: dict[str, list[Contact]] = {}
    for key, target in targets.items():
        if target.tag is not None:
            result[key] = await uow.repository(ContactRepository).with_tag(target.tag)
            if not result[key]:
                log.warning("no unit carries the tag; rule skipped", tag=target.tag)
        else:
            codes = role_codes(target.role, event, assignees)
            result[key] = [contacts[c] for c in codes if c in contacts]
    return result


def subscriber_recipients(
    event_type: str, matching: Sequence[Subscription], contacts: Mapping[str, Contact]
) -> list[Recipient]:
    template = SUBSCRIBER_TEMPLATES.get(event_type)
    if template is None:
        return []
    return [
        Recipient(
            s.address,
            contacts.get(s.unit_code) or stub_contact(s.unit_code),
            template,
            SUBSCRIBER,
            "focal",
        )
        for s in matching
        if s.channel is Channel.EMAIL
    ]


def stub_contact(unit_code: str) -> Contact:
    return Contact(unit_code, unit_code, [unit_code], None, None)


def is_webhook(subscription: Subscription) -> bool:
    return subscription.channel is Channel.WEBHOOK
