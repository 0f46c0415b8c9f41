"""Handlers that keep contacts and plans, and turn events into deliveries (who gets what).

For every event: the rules (:mod:`services.notify.domain.rules`) name the e-mail recipients,
then the matching subscriptions add theirs (e-mail, digest or webhook). Each message becomes
a delivery row keyed by event × recipient × channel, in the consumer's transaction: the
effect is recorded before the ack, and a redelivered event finds its rows already there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from services.notify.adapters.deliveries import DeliveryRepository
from services.notify.adapters.overdue import OverdueRepository
from services.notify.adapters.templates import Facts, Links
from services.notify.domain.model import Message
from services.notify.domain.rules import (
    RuleBook,
    resolve,
)
from services.notify.handlers import subscriptions
from services.notify.handlers.delivery import NEW_DELIVERIES
from services.notify.handlers.messages import emails
from services.notify.handlers.plans_and_contacts import remember
from services.notify.handlers.recipients import (
    ContactUnknown,
    contacts_by_target,
    contacts_for,
    is_webhook,
    subscriber_recipients,
)
from shared.bus.envelope import Envelope
from shared.events import (
    Event,
)
from shared.uow import UnitOfWork

__all__ = ["ContactUnknown", "Links", "NotifyConfig", "on_event"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class NotifyConfig:
    rules: RuleBook
    links: Links
    contacts_key: str = ""
    """Opens the e-mail addresses units' events carry sealed (shared.personal_data)."""
    subscribed: subscriptions.ActiveSubscriptions = field(
        default_factory=subscriptions.ActiveSubscriptions
    )
    """This consumer's cache of the active subscriptions."""


async def on_event(
    event: Event, envelope: Envelope, uow: UnitOfWork, *, config: NotifyConfig
) -> None:
    """Any consumed event: remember what later events need, then record its deliveries."""
    plan, assignees = await remember(event, uow, config.contacts_key)
    await uow.repository(OverdueRepository).track(event, uow.clock.now())
    rules = config.rules.for_event(event)
    matching = await config.subscribed.matching(uow, envelope.type, event.unit_path)
    if not rules and not matching:
        return
    targets = {t.key: t for rule in rules for t in rule.to}
    contacts = await contacts_for(uow, event, targets, assignees, matching)
    facts = Facts(
        envelope=envelope,
        links=config.links,
        names={code: c.name for code, c in contacts.items()},
        plan_doc_number=plan.doc_number if plan else "",
        plan_title=plan.title if plan else "",
    )
    by_target = await contacts_by_target(uow, event, targets, assignees, contacts)
    recipients = resolve(rules, by_target)
    recipients += subscriber_recipients(envelope.type, matching, contacts)
    messages = emails(event, facts, recipients, matching)
    messages += [
        subscriptions.webhook_message(event, envelope, s) for s in matching if is_webhook(s)
    ]
    await _record(messages, event, uow)
    await uow.repository(OverdueRepository).remember_mail(event, messages)


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
