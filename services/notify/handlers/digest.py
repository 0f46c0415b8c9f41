"""The daily digest: a subscriber's held messages, assembled into one e-mail per day.

A digest subscription's messages are stored ``held`` (the sender never takes them). From
``digest_hour`` (ICT) on, each recipient with held messages gets one digest for the day: a
normal pending delivery whose key is derived from the recipient and the date, so however
often the job runs, on however many replicas, there is one digest per recipient per day.
The held messages are marked ``sent`` with ``digested_in`` = the digest's key, in the same
transaction. Messages held after that day's digest wait for the next one.

The digest of a receiving unit's focal person also lists the reports still missing after
their last urging (:mod:`services.notify.adapters.overdue`): every day, until each is
submitted, waived, its plan closed or its deadline moved. That list alone makes a digest.
"""

from __future__ import annotations

from datetime import date, datetime

import structlog

from services.notify.adapters.contacts import ContactRepository
from services.notify.adapters.deliveries import DeliveryRepository
from services.notify.adapters.overdue import OverdueRepository
from services.notify.adapters.subscriptions import SubscriptionRepository
from services.notify.adapters.templates import digest_context, overdue_context, render
from services.notify.domain.model import (
    DIGEST_EVENT_TYPE,
    Contact,
    Delivery,
    Message,
    delivery_key,
    digest_event_id,
)
from shared.clock import Clock
from shared.events import Channel
from shared.uow import UnitOfWork, UnitOfWorkFactory
from shared.vntime import ICT, format_date

log = structlog.get_logger(__name__)


def digest_day(now: datetime, hour: int) -> date | None:
    """The day whose digest is due at ``now``: today (ICT) from ``hour`` on, else none."""
    local = now.astimezone(ICT)
    return local.date() if local.hour >= hour else None


async def assemble_digests(uow_factory: UnitOfWorkFactory, clock: Clock, *, hour: int) -> list[str]:
    """Assemble the digests due now; returns their delivery keys."""
    now = clock.now()
    day = digest_day(now, hour)
    if day is None:
        return []
    async with uow_factory() as uow:
        recipients = await uow.repository(DeliveryRepository).held_recipients(now)
        recipients += list(await _overdue_receivers(uow))
    made = []
    for recipient in dict.fromkeys(r.lower() for r in recipients):
        async with uow_factory() as uow:
            key = await _assemble(uow, recipient, day, now)
            if key:
                await uow.commit()
                made.append(key)
                log.info("digest assembled", key=key, day=day.isoformat())
    return made


async def _overdue_receivers(uow: UnitOfWork) -> dict[str, Contact]:
    """Focal addresses of the receiving units with reports overdue after their urging, to
    the contact (the addressee of their digest)."""
    codes = await uow.repository(OverdueRepository).receiving_units()
    found = await uow.repository(ContactRepository).get_many(codes)
    return {c.focal_email.lower(): c for c in found.values() if c.focal_email}


async def _assemble(uow: UnitOfWork, recipient: str, day: date, now: datetime) -> str | None:
    repository = uow.repository(DeliveryRepository)
    key = delivery_key(digest_event_id(day), recipient, Channel.EMAIL)
    if await repository.get(key) is not None:
        return None  # today's digest went out; what was held since waits for tomorrow's
    held = await repository.held_for(recipient, now)
    receivers = {
        c.unit_code: c
        for address, c in (await _overdue_receivers(uow)).items()
        if address == recipient.lower()
    }
    overdue = await uow.repository(OverdueRepository).received_by(receivers)
    if not held and not overdue:
        return None
    if held:
        unit_code, unit_path, name = await _addressee(uow, held[0])
        address = held[0].recipient
    else:
        contact = next(iter(receivers.values()))
        unit_code, unit_path, name = contact.unit_code, contact.unit_path, contact.name
        address = contact.focal_email or recipient
    names = await uow.repository(ContactRepository).get_many({o.unit_code for o in overdue})
    items = [(d.event_type, d.subject, d.created_at) for d in held]
    context = {
        **digest_context(format_date(day), name, items),
        **overdue_context(overdue, {code: c.name for code, c in names.items()}),
        "person": "focal",
    }
    subject, text, html = render("digest", context)
    message = Message(
        event_id=digest_event_id(day),
        event_type=DIGEST_EVENT_TYPE,
        channel=Channel.EMAIL,
        recipient=address,
        unit_path=unit_path,
        correlation_id=f"{digest_event_id(day)}-{key[:12]}",
        subject=subject,
        text=text,
        html=html,
    )
    await repository.add_if_missing(message, unit_code, now)
    await repository.mark_digested([d.key for d in held], key)
    return key


async def _addressee(uow: UnitOfWork, first: Delivery) -> tuple[str, list[str], str]:
    """The subscribed unit the digest is addressed to: code, path and name."""
    subscription = None
    if first.subscription_id:
        subscription = await uow.repository(SubscriptionRepository).get(first.subscription_id)
    unit_code = subscription.unit_code if subscription else first.unit_code
    contact = await uow.repository(ContactRepository).get(unit_code)
    if contact is None:
        return unit_code, [unit_code], unit_code
    return unit_code, contact.unit_path, contact.name
