"""Handlers that deliver: claim a due delivery, send it, record the outcome exactly once.

Each attempt is three steps, never one transaction held across the network:

1. **claim**: one short transaction sets the delivery to ``sending`` with a lease;
2. **send**: SMTP or webhook, outside any transaction;
3. **record**: one transaction sets ``sent`` (or ``pending`` for a retry, or ``failed``) and
   writes ``NotificationDelivered`` / ``NotificationFailed`` to the outbox with it.

A crash after the claim leaves the delivery in ``sending``; when the lease runs out another
attempt takes it over. The one window that cannot be closed: a crash after the receiver
accepted (SMTP ``250``, HTTP ``2xx``) and before step 3 commits sends the message once more,
with the same ``Message-ID`` / ``X-QCDC-Delivery`` (the delivery key), so the receiver can
recognise it. The window is the time between the receiver's answer and one local commit;
:class:`Writer` keeps it short when many attempts run at once (see there).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
import structlog

from services.notify.adapters.db import DeliveryRepository, deliveries, subscriptions
from services.notify.adapters.mail import build_email
from services.notify.adapters.webhook import PermanentFailure, RetryableFailure
from services.notify.domain.model import Delivery, DeliveryStatus, retry_delay
from shared.context import bind_correlation_id, current_correlation_id
from shared.errors import Conflict, Missing
from shared.events import Channel, NotificationDelivered, NotificationFailed
from shared.security import audit, current_principal
from shared.uow import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)

ERROR_LIMIT = 2000
T = TypeVar("T")


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class Webhooks(Protocol):
    timeout: float

    async def send(self, *, url: str, body: str, secret: str, delivery_key: str) -> None: ...


@dataclass(frozen=True)
class Senders:
    mailer: Mailer
    webhooks: Webhooks


@dataclass(frozen=True)
class DeliveryPolicy:
    mail_from: str
    max_attempts: int
    """E-mail attempts before NotificationFailed."""
    webhook_max_attempts: int
    lease: timedelta

    def attempts_for(self, channel: Channel) -> int:
        return self.webhook_max_attempts if channel is Channel.WEBHOOK else self.max_attempts


@dataclass(frozen=True)
class Due:
    key: str
    destination: str


@dataclass(frozen=True)
class Queued:
    """A step waiting for the next batch of :class:`Writer`."""

    step: Callable[[UnitOfWork], Awaitable[Any]]
    future: asyncio.Future[Any]
    correlation_id: str


@dataclass(frozen=True)
class Outcome:
    """How an attempt failed: ``permanent`` fails at once; ``retry_after`` is the receiver's."""

    error: str
    permanent: bool = False
    retry_after: timedelta | None = None


def _wall_clock() -> datetime:
    """Leases and retry times are operational, not deadlines: they run on real time."""
    return datetime.now(UTC)


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter ("equal jitter": half fixed, half random), so that
    deliveries that failed together (a receiver was down) do not all come back together."""
    delay = retry_delay(attempts)
    return delay / 2 + delay / 2 * random.random()


# --- the worker's writes ------------------------------------------------------------------


class Writer:
    """Group commit of the worker's database work (picking, claims, records).

    Every attempt writes twice. With many attempts in flight those writes would queue one
    by one for the database's write lock (SQLite has a single one), and a record waiting in
    that queue is the SMTP window growing. Instead a write joins a queue, and one
    transaction at a time runs everything queued so far: a record waits at most for the
    transaction in progress, then commits with its own.
    """

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self.uow_factory = uow_factory
        self._queue: list[Queued] = []
        self._lock = asyncio.Lock()

    async def write(self, step: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(Queued(step, future, current_correlation_id()))
        async with self._lock:
            if not future.done():  # else an earlier batch took this step along
                batch, self._queue = self._queue, []
                await self._commit(batch)
        result: T = await future
        return result

    async def _commit(self, batch: list[Queued]) -> None:
        own = current_correlation_id()
        try:
            if len(batch) == 1:
                await self._run_alone(batch[0])
                return
            try:
                results = await self._run(batch)
            except Exception:
                for item in batch:  # one bad step must not fail the others
                    await self._run_alone(item)
                return
            for item, result in zip(batch, results, strict=True):
                item.future.set_result(result)
        finally:
            bind_correlation_id(own)
            for item in batch:  # cancelled mid-batch (shutdown): nobody waits for ever
                if not item.future.done():
                    item.future.set_exception(RuntimeError("delivery write abandoned"))

    async def _run_alone(self, item: Queued) -> None:
        try:
            [result] = await self._run([item])
        except Exception as exc:
            item.future.set_exception(exc)
        else:
            item.future.set_result(result)

    async def _run(self, batch: list[Queued]) -> list[Any]:
        async with self.uow_factory() as uow:
            results = []
            for item in batch:
                bind_correlation_id(item.correlation_id)  # events carry their delivery's id
                results.append(await item.step(uow))
            await uow.commit()
        return results


# --- picking -----------------------------------------------------------------------------


async def due_deliveries(
    writer: Writer,
    *,
    limit: int,
    skip_destinations: Collection[str] = (),
    skip_keys: Collection[str] = (),
) -> list[Due]:
    """Deliveries to attempt now, oldest first, leaving out destinations that are at their
    concurrency limit (so they cannot fill the batch and starve the others) and deliveries
    this worker is already attempting."""
    now = _wall_clock()
    due_now = sa.or_(
        sa.and_(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
        ),
        sa.and_(
            deliveries.c.status == DeliveryStatus.SENDING.value,
            deliveries.c.leased_until <= now,
        ),
    )
    query = (
        sa.select(deliveries.c.key, deliveries.c.destination)
        .where(due_now)
        .order_by(deliveries.c.created_at, deliveries.c.key)
        .limit(limit)
    )
    if skip_destinations:
        query = query.where(deliveries.c.destination.not_in(list(skip_destinations)))
    if skip_keys:
        query = query.where(deliveries.c.key.not_in(list(skip_keys)))

    async def pick(uow: UnitOfWork) -> list[Due]:
        rows = (await uow.session.execute(query)).all()
        return [Due(row.key, row.destination) for row in rows]

    return await writer.write(pick)


async def deliver_due(
    uow_factory: UnitOfWorkFactory, senders: Senders, policy: DeliveryPolicy, *, limit: int = 20
) -> int:
    """Attempt every due delivery one after the other; return how many were attempted.
    (The worker runs attempts concurrently; this is for one-off runs and tests.)"""
    writer = Writer(uow_factory)
    due = await due_deliveries(writer, limit=limit)
    for item in due:
        await attempt(writer, senders, policy, item.key)
    return len(due)


# --- one attempt -------------------------------------------------------------------------


async def attempt(writer: Writer, senders: Senders, policy: DeliveryPolicy, key: str) -> None:
    """Claim → send → record, for one delivery."""
    claimed = await writer.write(lambda uow: _claim(uow, key, policy, senders))
    if claimed is None:
        return  # not due any more: sent, held, or another worker holds the lease
    delivery, secret = claimed
    bind_correlation_id(delivery.correlation_id or key)
    outcome = await _send(senders, policy, delivery, secret)
    if outcome is None:
        await writer.write(lambda uow: _record_success(uow, delivery))
        log.info("notification delivered", key=delivery.key, attempts=delivery.attempts + 1)
    else:
        final = await writer.write(lambda uow: _record_failure(uow, delivery, outcome, policy))
        log.warning(
            "notification attempt failed",
            key=delivery.key,
            attempts=delivery.attempts + 1,
            final=final,
            error=outcome.error,
        )


def _lease(policy: DeliveryPolicy, senders: Senders, channel: Channel) -> timedelta:
    """A webhook attempt may take its whole timeout: the lease must outlast it, or another
    worker would take over a request still in flight."""
    if channel is Channel.WEBHOOK:
        return max(policy.lease, timedelta(seconds=senders.webhooks.timeout + 5))
    return policy.lease


async def _claim(
    uow: UnitOfWork, key: str, policy: DeliveryPolicy, senders: Senders
) -> tuple[Delivery, str | None] | None:
    """Take the delivery for one attempt; None unless it is pending (or its lease ran out):
    sent, failed and held ones are not touched."""
    repository = DeliveryRepository(uow.session)
    now = _wall_clock()
    if not await repository.claim(key, now + policy.lease, now):
        return None
    delivery = await repository.get(key)
    assert delivery is not None
    lease = _lease(policy, senders, delivery.channel)
    if lease > policy.lease:
        await repository.update(key, leased_until=now + lease)
    return delivery, await _secret(uow, delivery)


async def _secret(uow: UnitOfWork, delivery: Delivery) -> str | None:
    """The subscription's HMAC secret, read with the claim so a rotated secret applies to
    the next attempt."""
    if delivery.channel is not Channel.WEBHOOK or delivery.subscription_id is None:
        return None
    secret = await uow.session.scalar(
        sa.select(subscriptions.c.secret).where(subscriptions.c.id == delivery.subscription_id)
    )
    return str(secret) if secret else None


async def _send(
    senders: Senders, policy: DeliveryPolicy, delivery: Delivery, secret: str | None
) -> Outcome | None:
    """Send once; None when the receiver accepted it, else how it failed."""
    try:
        if delivery.channel is Channel.WEBHOOK:
            await _send_webhook(senders.webhooks, delivery, secret)
        else:
            await senders.mailer.send(_email(delivery, policy.mail_from))
    except PermanentFailure as exc:
        return Outcome(str(exc)[:ERROR_LIMIT], permanent=True)
    except RetryableFailure as exc:
        return Outcome(str(exc)[:ERROR_LIMIT], retry_after=exc.retry_after)
    except Exception as exc:  # SMTP and anything unforeseen: worth another attempt
        return Outcome(repr(exc)[:ERROR_LIMIT])
    return None


def _email(delivery: Delivery, mail_from: str) -> EmailMessage:
    return build_email(
        key=delivery.key,
        mail_from=mail_from,
        to=delivery.recipient,
        subject=delivery.subject,
        text=delivery.text,
        html=delivery.html,
    )


async def _send_webhook(webhooks: Webhooks, delivery: Delivery, secret: str | None) -> None:
    if delivery.subscription_id is None:
        raise PermanentFailure("webhook delivery has no subscription, so no signing secret")
    if not secret:
        raise PermanentFailure(
            f"subscription {delivery.subscription_id} is gone or has no signing secret"
        )
    if delivery.payload is None:
        raise PermanentFailure("webhook delivery has no payload")
    await webhooks.send(
        url=delivery.recipient, body=delivery.payload, secret=secret, delivery_key=delivery.key
    )


# --- recording ---------------------------------------------------------------------------


async def _record_success(uow: UnitOfWork, delivery: Delivery) -> None:
    attempts = delivery.attempts + 1
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


async def _record_failure(
    uow: UnitOfWork, delivery: Delivery, outcome: Outcome, policy: DeliveryPolicy
) -> bool:
    """Record a failed attempt; True when it was the last (the delivery is now failed)."""
    attempts = delivery.attempts + 1
    this_round = delivery.attempts_this_round + 1
    final = outcome.permanent or this_round >= policy.attempts_for(delivery.channel)
    if final:
        await _fail(uow, delivery, attempts, outcome.error)
        return True
    delay = outcome.retry_after if outcome.retry_after is not None else backoff(this_round)
    await DeliveryRepository(uow.session).update(
        delivery.key,
        status=DeliveryStatus.PENDING.value,
        attempts=attempts,
        last_error=outcome.error,
        leased_until=None,
        next_attempt_at=_wall_clock() + delay,
    )
    return False


async def _fail(uow: UnitOfWork, delivery: Delivery, attempts: int, error: str) -> None:
    await DeliveryRepository(uow.session).update(
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


async def redeliver(key: str, uow: UnitOfWork) -> Delivery:
    """Put a failed delivery back in the queue, due now, with a fresh budget of attempts
    (the unit's own tokens, or an administrator above it); all attempts stay counted."""
    repository = DeliveryRepository(uow.session)
    found = await repository.get(key)
    if found is None:
        raise Missing(f"no delivery {key}")
    current_principal().require_unit(found.unit_code, "redeliver notifications", found.unit_path)
    # Retry times run on the wall clock, like the sender's (not QCDC_CLOCK).
    if not await repository.redeliver(key, datetime.now(UTC)):
        raise Conflict(f"delivery {key} is {found.status.value}; only a failed one")
    audit(uow, "notification.redelivered", key)
    delivered = await repository.get(key)
    await uow.commit()
    assert delivered is not None
    return delivered
