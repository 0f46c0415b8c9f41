"""The delivery worker: a background loop that sends due deliveries, concurrently.

At most ``delivery_concurrency`` attempts are in flight: e-mails (all mail goes to the one
SMTP relay, over ``smtp_connections`` persistent sessions, with a few more claimed per
session, :data:`MAIL_AHEAD`) and webhooks, at most ``destination_concurrency`` per host.
Deliveries to a destination at its limit are not even fetched, let alone claimed, so a slow
receiver keeps only its own slots busy: e-mail and other receivers keep flowing past it.
The limits are per process; replicas each have their own.

The loop claims as many due deliveries as it has free slots in one transaction, starts
them, and claims again when an attempt finishes, when the consumer has committed new
deliveries (:data:`~services.notify.handlers.delivery.NEW_DELIVERIES`), or at the next poll.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import timedelta
from typing import Protocol, TypeVar

import structlog

from services.notify.adapters.mail import SmtpConfig, SmtpMailer
from services.notify.adapters.webhook import Allowlist, WebhookSender
from services.notify.handlers import delivery as handlers
from services.notify.settings import NotifySettings
from shared.events import Channel
from shared.outage import log_failure
from shared.runtime import Runtime, drains_on_stop

log = structlog.get_logger(__name__)


class Job(Protocol):
    """What the dispatcher schedules: a delivery key and the destination it counts against."""

    @property
    def key(self) -> str: ...

    @property
    def destination(self) -> str: ...


MAIL_AHEAD = 4
"""E-mails claimed per SMTP session: while one is sent, the next few wait for the session
already claimed, so that claims and records go to the database in batches (with the
dispatcher's refill at half the limit) rather than one transaction per message. A claimed
e-mail still waiting when half its lease is gone is not sent (see the delivery handlers)."""

J = TypeVar("J", bound=Job)
Attempt = Callable[[Job], Awaitable[None]]


def mailer_from(settings: NotifySettings) -> SmtpMailer:
    return SmtpMailer(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            mail_from=settings.mail_from,
            starttls=settings.smtp_starttls,
            use_tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            connections=settings.smtp_connections,
            idle_seconds=settings.smtp_idle_seconds,
        )
    )


def webhooks_from(settings: NotifySettings) -> WebhookSender:
    return WebhookSender(
        Allowlist.parse(settings.webhook_allowlist),
        timeout=settings.webhook_timeout_seconds,
        max_connections=settings.delivery_concurrency,
    )


def policy_from(settings: NotifySettings) -> handlers.DeliveryPolicy:
    return handlers.DeliveryPolicy(
        mail_from=settings.mail_from,
        max_attempts=settings.delivery_max_attempts,
        webhook_max_attempts=settings.webhook_max_attempts,
        lease=timedelta(seconds=settings.delivery_lease_seconds),
    )


class Dispatcher:
    """Runs attempts as tasks within an overall and a per-destination limit.

    A destination that reached its limit takes no new attempts until half of them have
    finished: then it gets the other half in one claim, rather than one claim (and one
    transaction) per finished attempt. With a limit of one or two this changes nothing.
    """

    def __init__(
        self,
        attempt: Attempt,
        *,
        overall: int,
        per_destination: int,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self._attempt = attempt
        self.overall = max(1, overall)
        self.per_destination = max(1, per_destination)
        self.limits = {d: max(1, n) for d, n in (limits or {}).items()}
        """Limits of particular destinations (the SMTP relay), instead of per_destination."""
        self._running: dict[str, str] = {}  # key → destination
        self._by_destination: Counter[str] = Counter()
        self._held: set[str] = set()  # reached their limit, not yet down to half of it
        self._tasks: set[asyncio.Task[None]] = set()
        self.wakeup = asyncio.Event()
        """Set when an attempt finishes, and by :meth:`news`."""
        self._news = True
        self.backlog = True
        """Due deliveries may be waiting that the last look left behind (the limits, or the
        look's own size, cut it short): only then is a finished attempt worth a new look.
        Otherwise each attempt ending would cost a claim transaction that finds nothing."""

    @property
    def free(self) -> int:
        return self.overall - len(self._running)

    @property
    def running_keys(self) -> set[str]:
        return set(self._running)

    def limit(self, destination: str) -> int:
        return self.limits.get(destination, self.per_destination)

    def saturated(self) -> set[str]:
        return self._held | {d for d, n in self._by_destination.items() if n >= self.limit(d)}

    def choose(self, due: Sequence[J]) -> list[J]:
        """What the limits allow to start now, in the given order (nothing is started);
        any left out are a backlog."""
        chosen = self._choose(due)
        if len(chosen) < len(due):
            self.backlog = True
        return chosen

    def _choose(self, due: Sequence[J]) -> list[J]:
        chosen: dict[str, J] = {}
        taken: Counter[str] = Counter()
        for item in due:
            if len(chosen) >= self.free:
                break
            if item.key in self._running or item.key in chosen:
                continue
            destination = item.destination
            if destination in self._held:
                continue
            if self._by_destination[destination] + taken[destination] >= self.limit(destination):
                continue
            taken[destination] += 1
            chosen[item.key] = item
        return list(chosen.values())

    def news(self) -> None:
        """Something may have become due or startable: new deliveries (the doorbell), a
        destination's capacity freed, the poll interval passed."""
        self._news = True
        self.wakeup.set()

    def take_news(self) -> bool:
        """Whether to look for due deliveries now: not when the only change is an attempt
        finished for a destination still held (nothing new could start)."""
        news, self._news = self._news, False
        return news

    def start(self, due: Sequence[Job]) -> int:
        """Start what the limits allow, in the given order; return how many started."""
        chosen = self.choose(due)
        for item in chosen:
            self._running[item.key] = item.destination
            self._by_destination[item.destination] += 1
            if self._by_destination[item.destination] >= self.limit(item.destination):
                self._held.add(item.destination)
            task = asyncio.create_task(self._run(item))
            self._tasks.add(task)  # a strong reference, or the task could be collected
            task.add_done_callback(self._tasks.discard)
        return len(chosen)

    async def _run(self, item: Job) -> None:
        try:
            await self._attempt(item)
        except Exception as exc:  # the delivery stays claimed; its lease brings it back
            log_failure(log, "delivery attempt failed unexpectedly", exc, key=item.key)
        finally:
            was_full = self.free <= 0
            del self._running[item.key]
            destination = item.destination
            self._by_destination[destination] -= 1
            if self._by_destination[destination] <= self.limit(destination) // 2:
                self._held.discard(destination)
            if self._by_destination[destination] <= 0:
                del self._by_destination[destination]
            if self.backlog and (was_full or destination not in self.saturated()):
                self._news = True
            self.wakeup.set()

    def arm(self) -> None:
        """Forget wake-ups seen so far; :meth:`wait` then waits for the next one."""
        self.wakeup.clear()

    async def wait(self, timeout: float) -> None:
        """Until an attempt finishes (or :meth:`news`) after :meth:`arm`, or ``timeout``
        passes (then retries and expired leases may have come due: news too)."""
        try:
            await asyncio.wait_for(self.wakeup.wait(), timeout)
        except TimeoutError:
            self._news = True

    async def finish(self) -> None:
        """Wait for the attempts in flight to end, each sent and recorded (on a graceful
        stop: nothing is left half-sent for the next run to send again)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Cancel attempts in flight (on shutdown): their leases hand them to the next run."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Claim(Protocol):
    async def __call__(
        self,
        *,
        limit: int,
        skip_destinations: Collection[str],
        skip_keys: Collection[str],
        choose: Callable[[list[handlers.Due]], Sequence[handlers.Due]],
    ) -> list[handlers.Claimed]: ...


async def dispatch_once(claim: Claim, dispatcher: Dispatcher) -> int:
    """Claim due deliveries that can start now, in one transaction, and start them; return
    how many started."""
    if dispatcher.free <= 0 or not dispatcher.take_news():
        return 0
    # Room for a few per free slot: rows of one destination beyond its limit are skipped.
    limit = dispatcher.free * 4
    skipped = dispatcher.saturated()
    # What this look cannot see (destinations at their limit) may be waiting.
    dispatcher.backlog = bool(skipped)

    def choose(due: list[handlers.Due]) -> Sequence[handlers.Due]:
        if len(due) >= limit:  # a look stopped at its limit: there may be more
            dispatcher.backlog = True
        return dispatcher.choose(due)

    claimed = await claim(
        limit=limit, skip_destinations=skipped, skip_keys=dispatcher.running_keys, choose=choose
    )
    started = dispatcher.start(claimed)
    if started and dispatcher.backlog:
        dispatcher.news()  # the claim left due deliveries behind: look again
    return started


def mail_limit(settings: NotifySettings) -> int:
    """E-mail attempts in flight: :data:`MAIL_AHEAD` per session, and at most half of all
    slots, so that a relay that hangs leaves the other half to webhooks."""
    return max(1, min(MAIL_AHEAD * settings.smtp_connections, settings.delivery_concurrency // 2))


@drains_on_stop
async def run_delivery_worker(runtime: Runtime) -> None:
    """Until the service stops: then it claims nothing more and returns once the attempts
    it started are sent and recorded (the runtime cancels it if that takes too long)."""
    settings = runtime.settings
    assert isinstance(settings, NotifySettings)
    mailer = mailer_from(settings)
    webhooks = webhooks_from(settings)
    senders = handlers.Senders(mailer=mailer, webhooks=webhooks)
    policy = policy_from(settings)
    writer = handlers.Writer(runtime.uow)

    deliveries = runtime.metrics.deliveries
    for channel in Channel:  # at 0 from the start, so rates work
        for status in ("sent", "retry", "failed"):
            deliveries.labels(channel.value, status)

    async def attempt(item: Job) -> None:
        assert isinstance(item, handlers.Claimed)
        status = await handlers.attempt(writer, senders, policy, item)
        deliveries.labels(item.delivery.channel.value, status).inc()

    claim = functools.partial(handlers.claim_due, writer, policy, senders)
    dispatcher = Dispatcher(
        attempt,
        overall=settings.delivery_concurrency,
        per_destination=settings.destination_concurrency,
        limits={handlers.RELAY: mail_limit(settings)},
    )
    try:
        with handlers.NEW_DELIVERIES.listening(dispatcher.news):
            await _loop(claim, dispatcher, settings.delivery_poll_seconds, runtime.stopping)
        await dispatcher.finish()
    finally:
        await dispatcher.close()
        await webhooks.aclose()
        await mailer.aclose()


async def _loop(
    claim: Claim, dispatcher: Dispatcher, poll_seconds: float, stopping: asyncio.Event
) -> None:
    while not stopping.is_set():
        dispatcher.arm()  # before claiming, so a wake-up meanwhile is not missed
        try:
            started = await dispatch_once(claim, dispatcher)
        except Exception as exc:
            log_failure(log, "delivery worker failed; continuing", exc)
            dispatcher.backlog = True  # the look did not happen: whatever is due still waits
            started = 0
        if started == 0:
            # Nothing could start: wait for a free slot, new deliveries, or the next poll.
            await dispatcher.wait(poll_seconds)
