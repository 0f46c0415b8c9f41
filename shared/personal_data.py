"""Personal data stays off the bus (Decree 13/2023/NĐ-CP on personal data protection).

Events are read by every service, every district instance and every integrator, and kept
for years; so no event carries a person's e-mail address, phone or name in clear. Each
event's personal data, and why, is listed in docs/events.md. Two rules make it so:

- **Unit contacts are sealed.** ``UnitRegistered``/``UnitUpdated`` keep their ``contacts``
  object, but its e-mail addresses (the unit's focal person and head) travel only inside
  ``contacts.sealed``: Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under
  ``QCDC_CONTACTS_KEY``, a key only the plans service (which registers units) and the
  notify service (which mails them) hold. ``focal_email``/``head_email`` stay in the v1
  schema and are left empty. Without a key, the addresses are not published at all.
- **Everything else is filtered before the outbox** (:func:`off_the_bus`, applied by the
  unit of work to every event it publishes), so no handler has to remember it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import structlog
from cryptography.fernet import Fernet, InvalidToken

from shared.events import (
    Contacts,
    Event,
    NotificationFailed,
    ReportSubmitted,
    UnitRegistered,
)

log = structlog.get_logger(__name__)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
"""An e-mail address anywhere in a text (what no event may carry in clear)."""
SEALED_FIELDS = ("focal_email", "head_email")


class ContactsUnreadable(ValueError):
    """Sealed contacts that this key cannot open (another key, or tampered with)."""


def new_key() -> str:
    return Fernet.generate_key().decode()


def seal(contacts: Contacts, key: str) -> Contacts:
    """The contacts as they go on the bus: the webhook (a system's, not a person's) in
    clear, the e-mail addresses sealed; nothing sealed when there are none."""
    personal = {name: getattr(contacts, name) for name in SEALED_FIELDS if getattr(contacts, name)}
    sealed = (
        Fernet(key.encode()).encrypt(json.dumps(personal).encode()).decode() if personal else None
    )
    return Contacts(webhook_url=contacts.webhook_url, sealed=sealed)


def unseal(contacts: Contacts, key: str) -> Contacts:
    """The contacts with their e-mail addresses, from a sealed event (or as they are, from
    a publisher that sent them in clear, before this rule)."""
    if not contacts.sealed:
        return contacts
    if not key:
        raise ContactsUnreadable("sealed contacts, but QCDC_CONTACTS_KEY is not set")
    try:
        personal = json.loads(Fernet(key.encode()).decrypt(contacts.sealed.encode()))
    except (InvalidToken, ValueError) as exc:
        raise ContactsUnreadable("sealed contacts this QCDC_CONTACTS_KEY cannot open") from exc
    return Contacts(webhook_url=contacts.webhook_url, sealed=contacts.sealed, **personal)


def without_addresses(text: str) -> str:
    return EMAIL.sub("<e-mail>", text)


def off_the_bus(contacts_key: str) -> Callable[[Event], Event]:
    """The filter every published event passes through (see the module's docstring)."""

    def apply(event: Event) -> Event:
        if isinstance(event, UnitRegistered) and any(
            getattr(event.contacts, name) for name in SEALED_FIELDS
        ):
            if not contacts_key:
                log.warning("QCDC_CONTACTS_KEY is not set: unit e-mail addresses stay off the bus")
                return event.model_copy(
                    update={"contacts": Contacts(webhook_url=event.contacts.webhook_url)}
                )
            return event.model_copy(update={"contacts": seal(event.contacts, contacts_key)})
        if isinstance(event, ReportSubmitted) and event.submitted_by:
            return event.model_copy(update={"submitted_by": None})
        if isinstance(event, NotificationFailed):
            return event.model_copy(update={"last_error": without_addresses(event.last_error)})
        return event

    return apply


def recipient_reference(channel: str, unit_code: str, subscription_id: str | None) -> str:
    """What NotificationDelivered/Failed say about the recipient instead of its address:
    the channel and the unit reached (or the subscription). The address itself is in the
    delivery log, for the recipient's unit and administrators."""
    if subscription_id:
        return f"{channel}:subscription:{subscription_id}"
    return f"{channel}:unit:{unit_code}"
