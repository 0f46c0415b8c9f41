"""Handlers that deliver: claim a due delivery, send it, record the outcome exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from services.notify.adapters.db import DeliveryRepository
from services.notify.adapters.mail import SmtpMailer, build_email
from services.notify.domain.model import Delivery, DeliveryStatus, retry_delay
from shared.context import bind_correlation_id
from shared.events import NotificationDelivered, NotificationFailed
from shared.uow import UnitOfWorkFactory

log = structlog.get_logger(__name__)


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
