"""What they get: the rendered e-mail messages of an event."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from services.notify.adapters.templates import Facts, event_context, render
from services.notify.domain.model import Contact, Message, Subscription
from services.notify.domain.rules import (
    Recipient,
)
from services.notify.handlers.recipients import SUBSCRIBER
from shared.bus.envelope import Envelope
from shared.events import (
    Channel,
    Event,
)

log = structlog.get_logger(__name__)


def emails(
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
            message = subscribed(message, ids.get(address), address in digest)
        messages.append(message)
    return messages


def subscribed(message: Message, subscription_id: str | None, digest: bool) -> Message:
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
    return message_about(
        event, envelope, Channel.EMAIL, recipient.address, subject=subject, text=text, html=html
    )


def message_about(
    event: Event, envelope: Envelope, channel: Channel, recipient: str, **content: Any
) -> Message:
    """A message ``event`` causes to ``recipient`` on ``channel``; ``content``: the rest of
    :class:`Message` (subject, text, html, ...)."""
    return Message(
        event_id=envelope.id,
        event_type=envelope.type,
        channel=channel,
        recipient=recipient,
        unit_path=list(event.unit_path),
        correlation_id=envelope.correlation_id,
        **content,
    )
