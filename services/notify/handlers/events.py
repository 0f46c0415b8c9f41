"""Handlers that keep contacts and plans, and turn events into deliveries (who gets what).

For every event: the rules (:mod:`services.notify.domain.rules`) name the e-mail recipients,
then the matching subscriptions add theirs (e-mail, digest or webhook). Each message becomes
a delivery row keyed by event × recipient × channel, in the consumer's transaction: the
effect is recorded before the ack, and a redelivered event finds its rows already there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from services.notify.adapters.contacts import ContactRepository
from services.notify.adapters.deliveries import DeliveryRepository
from services.notify.adapters.known_plans import KnownPlan, PlanRepository
from services.notify.adapters.overdue import OverdueRepository
from services.notify.adapters.templates import Facts, Links, event_context, render
from services.notify.domain.model import Contact, Message, Subscription
from services.notify.domain.rules import (
    REQUIRED_ROLES,
    SUBSCRIBER_TEMPLATES,
    Recipient,
    RuleBook,
    Target,
    mentioned_units,
    resolve,
    role_codes,
)
from services.notify.handlers import subscriptions
from services.notify.handlers.delivery import NEW_DELIVERIES
from shared.bus.envelope import Envelope, UndeliverableEvent
from shared.events import (
    Channel,
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

__all__ = ["ContactUnknown", "Links", "NotifyConfig", "on_event"]

log = structlog.get_logger(__name__)


SUBSCRIBER = "subscriber"
"""The audience of a subscriber's e-mail, addressed to the subscribed unit."""


class ContactUnknown(Exception):
    """The unit's contacts have not arrived yet; retried, since unit events may lag."""


@dataclass(frozen=True)
class NotifyConfig:
    rules: RuleBook
    links: Links
    contacts_key: str = ""
    """Opens the e-mail addresses units' events carry sealed (shared.personal_data)."""


async def on_event(
    event: Event, envelope: Envelope, uow: UnitOfWork, *, config: NotifyConfig
) -> None:
    """Any consumed event: remember what later events need, then record its deliveries."""
    plan, assignees = await _remember(event, uow, config.contacts_key)
    await uow.repository(OverdueRepository).track(event, uow.clock.now())
    rules = config.rules.for_event(event)
    matching = await subscriptions.matching(uow, envelope.type, event.unit_path)
    if not rules and not matching:
        return
    targets = {t.key: t for rule in rules for t in rule.to}
    contacts = await _contacts(uow, event, targets, assignees, matching)
    facts = Facts(
        envelope=envelope,
        links=config.links,
        names={code: c.name for code, c in contacts.items()},
        plan_doc_number=plan.doc_number if plan else "",
        plan_title=plan.title if plan else "",
    )
    by_target = await _contacts_by_target(uow, event, targets, assignees, contacts)
    recipients = resolve(rules, by_target)
    recipients += _subscriber_recipients(envelope.type, matching, contacts)
    messages = _emails(event, facts, recipients, matching)
    messages += [subscriptions.webhook_message(event, envelope, s) for s in matching if _hook(s)]
    await _record(messages, event, uow)
    await uow.repository(OverdueRepository).remember_mail(event, messages)


# --- what notify remembers ------------------------------------------------------------


async def _remember(
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
        return await _amend(plans, event, uow)
    plan_id = _plan_id(event)
    if plan_id is None or _names_its_plan(event):
        return None, []
    return await plans.get(plan_id), []


def _names_its_plan(event: Event) -> bool:
    """The event's obligation carries the plan's number and title: the messages show those,
    and there is nothing to look up."""
    obligation = getattr(event, "obligation", None)
    return bool(obligation and obligation.plan_doc_number and obligation.plan_title)


async def _amend(
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


def _plan_id(event: Event) -> str | None:
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


# --- who: contacts of the rules' targets and of the subscribers -------------------------


async def _contacts(
    uow: UnitOfWork,
    event: Event,
    targets: Mapping[str, Target],
    assignees: Sequence[str],
    matching: Sequence[Subscription],
) -> dict[str, Contact]:
    """Every contact the messages need, in one query; missing required ones are retried."""
    wanted = {key: role_codes(t.role, event, assignees) for key, t in targets.items()}
    codes = [c for found in wanted.values() for c in found]
    codes += mentioned_units(event) + _assignee_codes(event) + [s.unit_code for s in matching]
    contacts = await uow.repository(ContactRepository).get_many(codes)
    for key, found in wanted.items():
        missing = [c for c in found if c not in contacts]
        if missing and targets[key].role in REQUIRED_ROLES:
            raise ContactUnknown(f"no contacts known yet for unit {', '.join(missing)}")
    return contacts


def _assignee_codes(event: Event) -> list[str]:
    """Units whose names a plan or request message lists."""
    if isinstance(event, PlanIssued):
        return [a.code for a in event.assignees]
    if isinstance(event, PlanAmended):
        return [a.code for a in event.added_assignees]
    if isinstance(event, ReportRequested):
        return [a.code for a in event.units]
    return []


async def _contacts_by_target(
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


def _subscriber_recipients(
    event_type: str, matching: Sequence[Subscription], contacts: Mapping[str, Contact]
) -> list[Recipient]:
    template = SUBSCRIBER_TEMPLATES.get(event_type)
    if template is None:
        return []
    return [
        Recipient(
            s.address,
            contacts.get(s.unit_code) or _stub(s.unit_code),
            template,
            SUBSCRIBER,
            "focal",
        )
        for s in matching
        if s.channel is Channel.EMAIL
    ]


def _stub(unit_code: str) -> Contact:
    return Contact(unit_code, unit_code, [unit_code], None, None)


def _hook(subscription: Subscription) -> bool:
    return subscription.channel is Channel.WEBHOOK


# --- what: the rendered messages ---------------------------------------------------------


def _emails(
    event: Event, facts: Facts, recipients: Sequence[Recipient], matching: Sequence[Subscription]
) -> list[Message]:
    if not recipients:
        return []
    base = event_context(event, facts)
    digest = {s.address.lower() for s in matching if s.channel is Channel.EMAIL and s.digest}
    ids = {s.address.lower(): s.id for s in matching if s.channel is Channel.EMAIL}
    messages = []
    for recipient in recipients:
        message = email_message(event, facts.envelope, recipient, base)
        if recipient.digest:
            message = dataclasses.replace(message, digest=True)
        if recipient.audience == SUBSCRIBER:
            address = recipient.address.lower()
            message = _subscribed(message, ids.get(address), address in digest)
        messages.append(message)
    return messages


def _subscribed(message: Message, subscription_id: str | None, digest: bool) -> Message:
    return dataclasses.replace(message, subscription_id=subscription_id, digest=digest)


def addressee(contact: Contact, audience: str, person: str) -> dict[str, Any]:
    """The per-recipient part of a template's context."""
    return {
        "recipient_name": contact.name,
        "recipient_code": contact.unit_code,
        "audience": audience,
        "person": person,
    }


def email_message(
    event: Event, envelope: Envelope, recipient: Recipient, base: Mapping[str, Any]
) -> Message:
    context = {**base, **addressee(recipient.contact, recipient.audience, recipient.person)}
    subject, text, html = render(recipient.template, context)
    return Message(
        event_id=envelope.id,
        event_type=envelope.type,
        channel=Channel.EMAIL,
        recipient=recipient.address,
        unit_path=list(event.unit_path),
        correlation_id=envelope.correlation_id,
        subject=subject,
        text=text,
        html=html,
    )


async def _record(messages: Sequence[Message], event: Event, uow: UnitOfWork) -> None:
    """One delivery per key: the first message for an address wins (a rule before a
    subscription), and a redelivered event finds its deliveries already recorded."""
    first: dict[str, Message] = {}
    for message in messages:
        first.setdefault(message.key, message)
    await uow.repository(DeliveryRepository).add_all_missing(
        list(first.values()), event.unit_path[-1], uow.clock.now()
    )
    if any(not m.digest for m in first.values()):
        _wake_worker_after_commit(uow)


def _wake_worker_after_commit(uow: UnitOfWork) -> None:
    """Once this transaction commits, the delivery worker can send at once (it would find
    the deliveries at its next poll anyway)."""
    uow.after_commit(NEW_DELIVERIES.ring)
