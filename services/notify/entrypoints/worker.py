"""The delivery worker: a background loop that sends due deliveries, concurrently.

At most ``delivery_concurrency`` attempts are in flight, and at most
``destination_concurrency`` per destination (mail domain or webhook host). Deliveries to a
destination at its limit are not even fetched, let alone claimed, so a slow receiver keeps
only its own slots busy: e-mail and other receivers keep flowing past it. The limits are per
process; replicas each have their own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

from services.notify.adapters.mail import SmtpConfig, SmtpMailer
from services.notify.adapters.webhook import Allowlist, WebhookSender
from services.notify.handlers import delivery as handlers
from services.notify.settings import NotifySettings
from shared.runtime import Runtime

log = structlog.get_logger(__name__)

Attempt = Callable[[str], Awaitable[None]]


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
    """Runs attempts as tasks within an overall and a per-destination limit."""

    def __init__(self, attempt: Attempt, *, overall: int, per_destination: int) -> None:
        self._attempt = attempt
        self.overall = max(1, overall)
        self.per_destination = max(1, per_destination)
        self._running: dict[str, str] = {}  # key → destination
        self._by_destination: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished = asyncio.Event()

    @property
    def free(self) -> int:
        return self.overall - len(self._running)

    @property
    def running_keys(self) -> set[str]:
        return set(self._running)

    def saturated(self) -> set[str]:
        return {d for d, n in self._by_destination.items() if n >= self.per_destination}

    def start(self, due: list[handlers.Due]) -> int:
        """Start what the limits allow, in the given order; return how many started."""
        started = 0
        for item in due:
            if self.free <= 0:
                break
            if item.key in self._running:
                continue
            if self._by_destination[item.destination] >= self.per_destination:
                continue
            self._running[item.key] = item.destination
            self._by_destination[item.destination] += 1
            task = asyncio.create_task(self._run(item))
            self._tasks.add(task)  # a strong reference, or the task could be collected
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _run(self, item: handlers.Due) -> None:
        try:
            await self._attempt(item.key)
        except Exception:  # the delivery stays claimed; its lease brings it back
            log.exception("delivery attempt failed unexpectedly", key=item.key)
        finally:
            del self._running[item.key]
            self._by_destination[item.destination] -= 1
            if self._by_destination[item.destination] <= 0:
                del self._by_destination[item.destination]
            self._finished.set()

    def arm(self) -> None:
        """Forget finished attempts seen so far; :meth:`wait` then waits for the next one."""
        self._finished.clear()

    async def wait(self, timeout: float) -> None:
        """Until an attempt finishes after :meth:`arm` or ``timeout`` passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), timeout)

    async def close(self) -> None:
        """Cancel attempts in flight (on shutdown): their leases hand them to the next run."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def dispatch_once(writer: handlers.Writer, dispatcher: Dispatcher) -> int:
    """Fetch due deliveries that could start now and start them; return how many started."""
    if dispatcher.free <= 0:
        return 0
    due = await handlers.due_deliveries(
        writer,
        # Room for a few per free slot: rows of one destination beyond its limit are skipped.
        limit=dispatcher.free * 4,
        skip_destinations=dispatcher.saturated(),
        skip_keys=dispatcher.running_keys,
    )
    return dispatcher.start(due)


async def run_delivery_worker(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, NotifySettings)
    webhooks = webhooks_from(settings)
    senders = handlers.Senders(mailer=mailer_from(settings), webhooks=webhooks)
    policy = policy_from(settings)
    writer = handlers.Writer(runtime.uow)

    async def attempt(key: str) -> None:
        await handlers.attempt(writer, senders, policy, key)

    dispatcher = Dispatcher(
        attempt,
        overall=settings.delivery_concurrency,
        per_destination=settings.destination_concurrency,
    )
    try:
        await _loop(writer, dispatcher, settings.delivery_poll_seconds)
    finally:
        await dispatcher.close()
        await webhooks.aclose()


async def _loop(writer: handlers.Writer, dispatcher: Dispatcher, poll_seconds: float) -> None:
    while True:
        dispatcher.arm()  # before fetching, so an attempt finishing meanwhile is not missed
        try:
            started = await dispatch_once(writer, dispatcher)
        except Exception:
            log.exception("delivery worker failed; continuing")
            started = 0
        if started == 0:
            # Nothing could start: wait for a free slot or for new deliveries to come due.
            await dispatcher.wait(poll_seconds)
