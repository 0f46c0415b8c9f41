"""Handlers that deliver: claim due deliveries, send each, record each outcome exactly once.

Each attempt is three steps, never one transaction held across the network:

1. **claim**: one short transaction sets due deliveries to ``sending`` with a lease; the
   worker claims a batch at once (as many as its free slots allow);
2. **send**: SMTP or webhook, outside any transaction;
3. **record**: a transaction sets ``sent`` (or ``pending`` for a retry, or ``failed``) and
   writes ``NotificationDelivered`` / ``NotificationFailed`` to the outbox with it; the
   outcomes of attempts that end together share one transaction (:class:`Writer`).

A crash after the claim leaves the delivery in ``sending``; when the lease runs out another
attempt takes it over. The one window that cannot be closed: a crash after the receiver
accepted (SMTP ``250``, HTTP ``2xx``) and before step 3 commits sends the message once more,
with the same ``Message-ID`` / ``X-QCDC-Delivery`` (the delivery key), so the receiver can
recognise it. The window is the time between the receiver's answer and one local commit;
:class:`Writer` keeps it short when many attempts run at once (see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import structlog

from services.notify.adapters.deliveries import DeliveryRepository
from services.notify.adapters.mail import Envelope, compose
from services.notify.adapters.subscriptions import SubscriptionRepository
from services.notify.adapters.webhook import PermanentFailure, RetryableFailure
from services.notify.domain.model import (
    Delivery,
    DeliveryStatus,
    SignatureScheme,
    retry_delay,
)
from shared.auth import Principal
from shared.context import bind_correlation_id, current_correlation_id
from shared.errors import Conflict, Missing
from shared.events import Channel, NotificationDelivered, NotificationFailed
from shared.personal_data import recipient_reference
from shared.security import audit
from shared.uow import UnitOfWork, UnitOfWorkFactory, abandon, settle

log = structlog.get_logger(__name__)

ERROR_LIMIT = 2000
T = TypeVar("T")


class Mailer(Protocol):
    async def send(self, message: Envelope, *, wait: float | None = None) -> None:
        """Send; raise :class:`~services.notify.adapters.mail.RelayBusy` if no session to
        the relay is free within ``wait`` seconds."""


class Webhooks(Protocol):
    timeout: float

    async def send(
        self,
        *,
        url: str,
        body: str,
        secret: str,
        delivery_key: str,
        scheme: SignatureScheme = SignatureScheme.STANDARD,
    ) -> None: ...


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


RELAY = "smtp relay"
"""The destination of every e-mail: all mail goes to the one configured SMTP relay, so its
concurrency is limited there, not per mail domain. (Not a host name: no webhook host can
be called so.)"""


@dataclass(frozen=True)
class Due:
    """A due delivery, as the worker's limits see it: webhooks count per host."""

    key: str
    destination: str


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds the lease of, with what sending it needs."""

    delivery: Delivery
    secret: str | None
    """The webhook subscription's signing secret, read with the claim."""
    claimed_at: datetime
    scheme: SignatureScheme = SignatureScheme.STANDARD
    """How the subscription's deliveries are signed, read with the secret."""

    @property
    def key(self) -> str:
        return self.delivery.key

    @property
    def destination(self) -> str:
        return _destination(self.delivery.channel, self.delivery.destination)


def _destination(channel: str, destination: str) -> str:
    return destination if channel == Channel.WEBHOOK.value else RELAY


class Doorbell:
    """Wakes this process's delivery workers when new deliveries have been committed, so a
    message goes out at once rather than at the worker's next poll. Only a hint: workers
    still poll, for retries coming due, expired leases and other processes' deliveries."""

    def __init__(self) -> None:
        self._listeners: set[Callable[[], None]] = set()

    def ring(self) -> None:
        for listener in list(self._listeners):
            listener()

    @contextlib.contextmanager
    def listening(self, listener: Callable[[], None]) -> Iterator[None]:
        self._listeners.add(listener)
        try:
            yield
        finally:
            self._listeners.discard(listener)


NEW_DELIVERIES = Doorbell()


@dataclass(frozen=True)
class Queued:
    """A step waiting for the next batch of :class:`Writer`: a function of the transaction,
    or a delivery sent, recorded with the batch's others in one statement."""

    step: Callable[[UnitOfWork], Awaitable[Any]] | None
    future: asyncio.Future[Any]
    correlation_id: str
    sent: Delivery | None = None


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
    """Group commit of the worker's database work (claims and records).

    Every attempt is claimed and recorded. With many attempts in flight those writes would
    queue one by one for the database's write lock (SQLite has a single one, and the
    service one connection), and a record waiting in that queue is the SMTP window growing.
    Instead a write joins a queue, and one transaction at a time runs everything queued so
    far, the deliveries sent in one statement: a record waits at most for the transaction
    in progress, then commits with its own.
    """

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self.uow_factory = uow_factory
        self._queue: list[Queued] = []
        self._lock = asyncio.Lock()

    async def write(self, step: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        result: T = await self._enqueue(step, None)
        return result

    async def record_sent(self, delivery: Delivery) -> None:
        """Record that the receiver accepted ``delivery`` (see :func:`_record_sent`)."""
        await self._enqueue(None, delivery)

    async def _enqueue(
        self, step: Callable[[UnitOfWork], Awaitable[Any]] | None, sent: Delivery | None
    ) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(Queued(step, future, current_correlation_id(), sent))
        async with self._lock:
            if not future.done():  # else an earlier batch took this step along
                batch, self._queue = self._queue, []
                await self._commit(batch)
        return await future

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
            abandon((item.future for item in batch), "delivery write abandoned")

    async def _run_alone(self, item: Queued) -> None:
        await settle(item.future, self._run([item]))

    async def _run(self, batch: list[Queued]) -> list[Any]:
        async with self.uow_factory() as uow:
            results = []
            for item in batch:
                bind_correlation_id(item.correlation_id)  # events carry their delivery's id
                results.append(await item.step(uow) if item.step is not None else None)
            sent = [(item.sent, item.correlation_id) for item in batch if item.sent is not None]
            if sent:
                await _record_sent(uow, sent)
            await uow.commit()
        return results


# --- picking and claiming ---------------------------------------------------------------


async def claim_due(
    writer: Writer,
    policy: DeliveryPolicy,
    senders: Senders,
    *,
    limit: int,
    skip_destinations: Collection[str] = (),
    skip_keys: Collection[str] = (),
    choose: Callable[[list[Due]], Sequence[Due]] = list,
) -> list[Claimed]:
    """Claim due deliveries, the longest due first, in one transaction, and return them
    ready to send.

    ``limit`` rows are looked at, leaving out destinations already at their concurrency
    limit (so they cannot fill the batch and starve the others) and deliveries this worker
    is already attempting; ``choose`` picks those to claim (the worker's limits)."""

    async def step(uow: UnitOfWork) -> list[Claimed]:
        now = _wall_clock()
        rows = await uow.repository(DeliveryRepository).due(
            now, limit, relay=RELAY, skip_destinations=skip_destinations, skip_keys=skip_keys
        )
        chosen = choose([Due(row.key, _destination(row.channel, row.destination)) for row in rows])
        if not chosen:
            return []
        claimed = await uow.repository(DeliveryRepository).claim_many(
            [item.key for item in chosen],
            now,
            lease=now + policy.lease,
            webhook_lease=now + _lease(policy, senders, Channel.WEBHOOK),
        )
        secrets = await _secrets(uow, claimed)
        order = {item.key: n for n, item in enumerate(chosen)}
        claimed.sort(key=lambda d: order[d.key])
        return [_claimed(d, secrets.get(d.subscription_id or ""), now) for d in claimed]

    return await writer.write(step)


def _lease(policy: DeliveryPolicy, senders: Senders, channel: Channel) -> timedelta:
    """A webhook attempt may take its whole timeout: the lease must outlast it, or another
    worker would take over a request still in flight."""
    if channel is Channel.WEBHOOK:
        return max(policy.lease, timedelta(seconds=senders.webhooks.timeout + 5))
    return policy.lease


def _claimed(
    delivery: Delivery, signing: tuple[str, SignatureScheme] | None, now: datetime
) -> Claimed:
    if signing is None:
        return Claimed(delivery, None, now)
    return Claimed(delivery, signing[0], now, signing[1])


async def _secrets(
    uow: UnitOfWork, claimed: Sequence[Delivery]
) -> dict[str, tuple[str, SignatureScheme]]:
    """The webhook subscriptions' HMAC secrets and signature schemes, read with the claim
    so a rotated secret (or a move to the standard scheme) applies to the next attempt."""
    ids = {
        d.subscription_id
        for d in claimed
        if d.channel is Channel.WEBHOOK and d.subscription_id is not None
    }
    return await uow.repository(SubscriptionRepository).signing(ids) if ids else {}


# --- one attempt -------------------------------------------------------------------------


async def attempt(writer: Writer, senders: Senders, policy: DeliveryPolicy, item: Claimed) -> str:
    """Send → record, for one claimed delivery; returns its status after this attempt:
    ``sent``, ``retry`` (another attempt is due later) or ``failed``."""
    delivery = item.delivery
    bind_correlation_id(delivery.correlation_id or delivery.key)
    outcome = await _send(senders, policy, item)
    if outcome is None:
        await writer.record_sent(delivery)
        log.info("notification delivered", key=delivery.key, attempts=delivery.attempts + 1)
        return "sent"
    final = await writer.write(lambda uow: _record_failure(uow, delivery, outcome, policy))
    log.warning(
        "notification attempt failed",
        key=delivery.key,
        attempts=delivery.attempts + 1,
        final=final,
        error=outcome.error,
    )
    return "failed" if final else "retry"


async def _send(senders: Senders, policy: DeliveryPolicy, item: Claimed) -> Outcome | None:
    """Send once; None when the receiver accepted it, else how it failed."""
    delivery = item.delivery
    try:
        if delivery.channel is Channel.WEBHOOK:
            await _send_webhook(senders.webhooks, delivery, item.secret, item.scheme)
        else:
            # E-mails are claimed ahead of the relay's sessions; one still waiting for a
            # session when half its lease is gone is not sent, so that no send can outlive
            # the lease (another worker would then take the delivery over and send it too).
            waited = (_wall_clock() - item.claimed_at).total_seconds()
            wait = policy.lease.total_seconds() / 2 - waited
            await senders.mailer.send(_email(delivery, policy.mail_from), wait=wait)
    except PermanentFailure as exc:
        return Outcome(str(exc)[:ERROR_LIMIT], permanent=True)
    except RetryableFailure as exc:
        return Outcome(str(exc)[:ERROR_LIMIT], retry_after=exc.retry_after)
    except Exception as exc:  # SMTP and anything unforeseen: worth another attempt
        return Outcome(repr(exc)[:ERROR_LIMIT])
    return None


def _email(delivery: Delivery, mail_from: str) -> Envelope:
    return compose(
        key=delivery.key,
        mail_from=mail_from,
        to=delivery.recipient,
        subject=delivery.subject,
        text=delivery.text,
        html=delivery.html,
    )


async def _send_webhook(
    webhooks: Webhooks, delivery: Delivery, secret: str | None, scheme: SignatureScheme
) -> None:
    if delivery.subscription_id is None:
        raise PermanentFailure("webhook delivery has no subscription, so no signing secret")
    if not secret:
        raise PermanentFailure(
            f"subscription {delivery.subscription_id} is gone or has no signing secret"
        )
    if delivery.payload is None:
        raise PermanentFailure("webhook delivery has no payload")
    await webhooks.send(
        url=delivery.recipient,
        body=delivery.payload,
        secret=secret,
        delivery_key=delivery.key,
        scheme=scheme,
    )


# --- recording ---------------------------------------------------------------------------


async def _record_sent(uow: UnitOfWork, sent: Sequence[tuple[Delivery, str]]) -> None:
    """Deliveries the receivers accepted, each with its correlation id: ``sent`` in one
    statement, and a NotificationDelivered each."""
    await uow.repository(DeliveryRepository).mark_sent(
        [(delivery.key, delivery.attempts + 1) for delivery, _ in sent], _wall_clock()
    )
    for delivery, correlation_id in sent:
        bind_correlation_id(correlation_id)
        uow.publish(
            NotificationDelivered(
                **_outcome_of(delivery),
                attempts=delivery.attempts + 1,
                delivered_at=uow.clock.now(),
            )
        )


def _outcome_of(delivery: Delivery) -> dict[str, Any]:
    """What NotificationDelivered and NotificationFailed both say of the delivery: which
    event it was for and who received it (a reference, never the address)."""
    return {
        "unit_path": delivery.unit_path,
        "delivery_key": delivery.key,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "channel": delivery.channel,
        "recipient": recipient_reference(
            delivery.channel, delivery.unit_code, delivery.subscription_id
        ),
    }


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
    await uow.repository(DeliveryRepository).update(
        delivery.key,
        status=DeliveryStatus.PENDING.value,
        attempts=attempts,
        last_error=outcome.error,
        leased_until=None,
        next_attempt_at=_wall_clock() + delay,
    )
    return False


async def _fail(uow: UnitOfWork, delivery: Delivery, attempts: int, error: str) -> None:
    await uow.repository(DeliveryRepository).update(
        delivery.key,
        status=DeliveryStatus.FAILED.value,
        attempts=attempts,
        last_error=error,
        leased_until=None,
    )
    uow.publish(
        NotificationFailed(
            **_outcome_of(delivery),
            attempts=attempts,
            last_error=error,
            failed_at=uow.clock.now(),
        )
    )


async def redeliver(key: str, uow: UnitOfWork, *, caller: Principal) -> Delivery:
    """Put a failed delivery back in the queue, due now, with a fresh budget of attempts
    (the unit's own tokens, or an administrator above it); all attempts stay counted."""
    repository = uow.repository(DeliveryRepository)
    found = await repository.get(key)
    if found is None:
        raise Missing(f"no delivery {key}")
    caller.require_unit(found.unit_code, "redeliver notifications", found.unit_path)
    # Retry times run on the wall clock, like the sender's (not QCDC_CLOCK).
    if not await repository.redeliver(key, datetime.now(UTC)):
        raise Conflict(f"delivery {key} is {found.status.value}; only a failed one")
    audit(uow, caller, "notification.redelivered", key)
    delivered = await repository.get(key)
    await uow.commit()
    assert delivered is not None
    return delivered
