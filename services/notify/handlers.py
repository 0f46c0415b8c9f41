"""Handlers of the notify service: keep contacts, turn events into deliveries, deliver them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from services.notify.adapters.db import ContactRepository, DeliveryRepository
from services.notify.adapters.mail import SmtpMailer, build_email
from services.notify.adapters.templates import render
from services.notify.domain.model import (
    REPORT_KIND_LABELS,
    Contact,
    Delivery,
    DeliveryStatus,
    Message,
    retry_delay,
)
from shared.bus.envelope import Envelope, UndeliverableEvent
from shared.context import bind_correlation_id
from shared.events import (
    Channel,
    NotificationDelivered,
    NotificationFailed,
    ReportSubmitted,
    UnitRegistered,
)
from shared.uow import UnitOfWork, UnitOfWorkFactory
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


def _wall_clock() -> datetime:
    """Leases and retry times are operational, not deadlines: they run on real time."""
    return datetime.now(UTC)


async def deliver_due(
    uow_factory: UnitOfWorkFactory,
    mailer: SmtpMailer,
    *,
    mail_from: str,
    max_attempts: int,
    lease: timedelta,
    limit: int = 20,
) -> int:
    """Attempt every delivery that is due; return how many were attempted."""
    async with uow_factory() as uow:
        due = await DeliveryRepository(uow.session).due(_wall_clock(), limit)
    for key in due:
        await _attempt(
            uow_factory, mailer, key, mail_from=mail_from, max_attempts=max_attempts, lease=lease
        )
    return len(due)


async def _attempt(
    uow_factory: UnitOfWorkFactory,
    mailer: SmtpMailer,
    key: str,
    *,
    mail_from: str,
    max_attempts: int,
    lease: timedelta,
) -> None:
    async with uow_factory() as uow:
        repository = DeliveryRepository(uow.session)
        now = _wall_clock()
        if not await repository.claim(key, now + lease, now):
            return  # another worker holds it
        delivery = await repository.get(key)
        await uow.commit()
    assert delivery is not None
    bind_correlation_id(delivery.correlation_id or key)
    email = build_email(
        key=key,
        mail_from=mail_from,
        to=delivery.recipient,
        subject=delivery.subject,
        text=delivery.text,
        html=delivery.html,
    )
    try:
        await mailer.send(email)
    except Exception as exc:
        await _record_failure(uow_factory, delivery, repr(exc)[:2000], max_attempts)
        return
    # The one window SMTP cannot close: a crash between the server's acceptance above and
    # this commit resends the message once the lease runs out, with the same Message-ID.
    await _record_success(uow_factory, delivery)


async def _record_success(uow_factory: UnitOfWorkFactory, delivery: Delivery) -> None:
    attempts = delivery.attempts + 1
    async with uow_factory() as uow:
        await DeliveryRepository(uow.session).update(
            delivery.key,
            status=DeliveryStatus.SENT.value,
            attempts=attempts,
            delivered_at=_wall_clock(),
            leased_until=None,
            last_error=None,
        )
        uow.publish(
            NotificationDelivered(
                unit_path=delivery.unit_path,
                delivery_key=delivery.key,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                channel=delivery.channel,
                recipient=delivery.recipient,
                attempts=attempts,
                delivered_at=uow.clock.now(),
            )
        )
        await uow.commit()
    log.info("notification delivered", key=delivery.key, attempts=attempts)


async def _record_failure(
    uow_factory: UnitOfWorkFactory, delivery: Delivery, error: str, max_attempts: int
) -> None:
    attempts = delivery.attempts + 1
    async with uow_factory() as uow:
        repository = DeliveryRepository(uow.session)
        if attempts >= max_attempts:
            await repository.update(
                delivery.key,
                status=DeliveryStatus.FAILED.value,
                attempts=attempts,
                last_error=error,
                leased_until=None,
            )
            uow.publish(
                NotificationFailed(
                    unit_path=delivery.unit_path,
                    delivery_key=delivery.key,
                    event_id=delivery.event_id,
                    event_type=delivery.event_type,
                    channel=delivery.channel,
                    recipient=delivery.recipient,
                    attempts=attempts,
                    last_error=error,
                    failed_at=uow.clock.now(),
                )
            )
        else:
            await repository.update(
                delivery.key,
                status=DeliveryStatus.PENDING.value,
                attempts=attempts,
                last_error=error,
                leased_until=None,
                next_attempt_at=_wall_clock() + retry_delay(attempts),
            )
        await uow.commit()
    log.warning("notification attempt failed", key=delivery.key, attempts=attempts, error=error)
