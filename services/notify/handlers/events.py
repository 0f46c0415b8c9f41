"""Handlers that keep contacts and turn events into deliveries (who gets what)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog

from services.notify.adapters.db import ContactRepository, DeliveryRepository
from services.notify.adapters.templates import render
from services.notify.domain.model import (
    REPORT_KIND_LABELS,
    Contact,
    Message,
)
from shared.bus.envelope import Envelope, UndeliverableEvent
from shared.events import (
    Channel,
    ReportSubmitted,
    UnitRegistered,
)
from shared.uow import UnitOfWork
from shared.vntime import format_date, format_instant

log = structlog.get_logger(__name__)


class ContactUnknown(Exception):
    """The unit's contacts have not arrived yet; retried, since unit events may lag."""


@dataclass(frozen=True)
class Links:
    reports_url: str

    def report(self, report_id: str) -> str:
        return f"{self.reports_url.rstrip('/')}/reports/{report_id}"


async def on_unit_registered(event: UnitRegistered, _envelope: Envelope, uow: UnitOfWork) -> None:
    """UnitRegistered and UnitUpdated both carry the unit's full state."""
    contact = Contact(
        unit_code=event.code,
        name=event.name,
        unit_path=list(event.unit_path),
        focal_email=event.contacts.focal_email,
        head_email=event.contacts.head_email,
        webhook_url=event.contacts.webhook_url,
    )
    await ContactRepository(uow.session).save(contact, uow.clock.now())


def receipt_message(
    event: ReportSubmitted, envelope: Envelope, contact: Contact, links: Links
) -> Message:
    obligation = event.obligation
    if not contact.focal_email:
        raise UndeliverableEvent(f"unit {contact.unit_code} has no focal e-mail for a receipt")
    context = {
        "unit_name": contact.name,
        "kind_label": REPORT_KIND_LABELS[obligation.report_kind],
        "plan_doc_number": obligation.plan_doc_number,
        "plan_title": obligation.plan_title,
        "period_start": format_date(obligation.period_start),
        "period_end": format_date(obligation.period_end),
        "due_before": format_date(obligation.due_at + timedelta(microseconds=1)),
        "submitted_at": format_instant(event.submitted_at),
        "receipt_number": event.receipt_number,
        "version": event.version,
        "on_time": event.on_time,
        "link": links.report(event.report_id),
    }
    subject, text, html = render("report_submitted", context)
    return Message(
        event_id=envelope.id,
        event_type=envelope.type,
        channel=Channel.EMAIL,
        recipient=contact.focal_email,
        unit_path=list(event.unit_path),
        correlation_id=envelope.correlation_id,
        subject=subject,
        text=text,
        html=html,
    )


async def on_report_submitted(
    event: ReportSubmitted, envelope: Envelope, uow: UnitOfWork, *, links: Links
) -> None:
    contact = await ContactRepository(uow.session).get(event.obligation.unit_code)
    if contact is None:
        raise ContactUnknown(f"no contacts known yet for unit {event.obligation.unit_code}")
    message = receipt_message(event, envelope, contact, links)
    await DeliveryRepository(uow.session).add_if_missing(
        message, event.obligation.unit_code, uow.clock.now()
    )
