"""What every service process runs beside its domain: database, broker, consumers, relay.

A service's ``bootstrap.py`` builds a :class:`Runtime` with its own tables, migrations and
consumer specs; its HTTP app starts and stops the runtime from its lifespan, so one process
serves HTTP, consumes from the bus and relays its outbox.

Stopping (SIGTERM) drains, within ``QCDC_STOP_TIMEOUT_SECONDS`` (T) in all: HTTP requests
get 503 from the signal on and those in flight finish (up to T/4, :mod:`shared.http`);
consumers fetch no more and their handlers in flight finish (up to T/4; a handler still
running then is cancelled, its transaction rolled back and its message left unacked, so
JetStream redelivers it); background jobs marked :func:`drains_on_stop` finish what they
started (the delivery worker: every e-mail it began is sent and recorded) while the others
are cancelled (their work is transactional); last, the outbox relay publishes every
committed row (what remains at T waits in the outbox for the next start).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from faststream.nats import NatsBroker, NatsUserPassword
from nats.js.client import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus.consumer import ConsumerSpec, register_consumer
from shared.bus.relay import OutboxRelay
from shared.bus.streams import PLANS, Durable, provision
from shared.clock import Clock, clock_from_spec
from shared.db import MessagingTables, SecurityTables, capacity, create_engine, migrate
from shared.events import Event, TokenIssued, TokenRevoked
from shared.logging import BUS_LOGGER
from shared.metrics import Metrics
from shared.personal_data import off_the_bus
from shared.security import on_token_issued, on_token_revoked
from shared.settings import ServiceSettings
from shared.tracing import Tracing, tracing_from_environment
from shared.uow import GroupCommit, UnitOfWork

log = structlog.get_logger(__name__)

BackgroundJob = Callable[["Runtime"], Coroutine[Any, Any, None]]
DRAINS_ON_STOP = "__qcdc_drains_on_stop__"


def drains_on_stop(job: BackgroundJob) -> BackgroundJob:
    """Marks a background job that returns by itself once :attr:`Runtime.stopping` is set,
    after finishing the work it started: stopping waits for it (within the bound) instead of
    cancelling it."""
    setattr(job, DRAINS_ON_STOP, True)
    return job


def make_broker(
    settings: ServiceSettings, service: str, metrics: Metrics | None = None
) -> NatsBroker:
    security = (
        NatsUserPassword(settings.nats_user, settings.nats_password or "")
        if settings.nats_user
        else None
    )
    return NatsBroker(
        [url.strip() for url in settings.nats_url.split(",")],
        name=f"qcdc-{service}",
        max_reconnect_attempts=-1,  # a service outlives any NATS outage
        reconnect_time_wait=1,
        connect_timeout=2,
        # Handlers in flight get this long to finish when the service stops (then they are
        # cancelled and their messages left unacked): a quarter of the stop's bound.
        graceful_timeout=settings.stop_timeout_seconds / 4,
        log_level=logging.DEBUG,  # per-message Received/Processed lines are debug detail
        logger=logging.getLogger(BUS_LOGGER),
        security=security,
        middlewares=[metrics.broker_middleware()] if metrics is not None else (),
    )


GROUPED_AT_MOST = 16
"""Requests in one shared transaction at most (:attr:`Runtime.grouped`)."""
GROUPED_LANES = 4
"""Shared transactions at once at most where they can run side by side (PostgreSQL). More
only divide the same two cores among more, smaller transactions, each with its own
overhead and commit: with 20 (the pool's size) and 4 requests each, a burst of 2,000
submissions was accepted at 197 and 202/s; with 4 and 16 each, at 234 and 330/s, with
1.5 ms less CPU per submission (alternated, 2026-11-29)."""


@dataclass
class Runtime:
    service: str
    settings: ServiceSettings
    messaging: MessagingTables
    migrations: Path
    consumers: list[ConsumerSpec] = field(default_factory=list)
    clock: Clock | None = None
    background_jobs: list[BackgroundJob] = field(default_factory=list)
    security: SecurityTables | None = None
    tracing: Tracing | None = None
    """None: as the ``OTEL_*`` settings say (off without them)."""
    metrics: Metrics = field(init=False)
    durables: list[Durable] = field(init=False, default_factory=list)
    """Every JetStream durable consumer this service binds (readiness, lag)."""
    engine: AsyncEngine = field(init=False)
    sessions: async_sessionmaker[AsyncSession] = field(init=False)
    broker: NatsBroker = field(init=False)
    relay: OutboxRelay = field(init=False)
    stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    """Set when the service stops: jobs marked :func:`drains_on_stop` wind down."""
    draining: bool = field(default=False, init=False)
    """True from the stop signal on: HTTP requests are refused with 503."""
    _drain_deadline: float = field(default=0.0, init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _draining_tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _relay_task: asyncio.Task[None] | None = field(default=None, init=False)
    _off_the_bus: Callable[[Event], Event] = field(init=False)
    _grouped: GroupCommit | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._off_the_bus = off_the_bus(self.settings.contacts_key)
        self.metrics = Metrics(self.service)
        if self.tracing is None:
            self.tracing = tracing_from_environment(self.service)
        if self.clock is None:
            self.clock = clock_from_spec(self.settings.clock)
        self.engine = create_engine(self.settings.resolved_database_url(self.service))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.broker = make_broker(self.settings, self.service, self.metrics)
        self.relay = OutboxRelay(
            self.engine,
            self.messaging,
            lambda: self.broker.connection,
            self.now_clock,
            poll_seconds=self.settings.outbox_poll_seconds,
            linger_seconds=self.settings.outbox_linger_seconds,
            metrics=self.metrics,
            tracing=self.tracing,
        )
        for spec in [*self.consumers, *self._token_consumers()]:
            consumer = register_consumer(
                self.broker,
                spec,
                self.uow,
                max_deliver=self.settings.consumer_max_deliver,
                ack_wait_seconds=self.settings.consumer_ack_wait_seconds,
                batch_size=self.settings.consumer_batch_size,
                metrics=self.metrics,
                tracing=self.tracing,
                linger_seconds=self.settings.consumer_linger_seconds,
            )
            self.durables.extend(consumer.durables)

    def _token_consumers(self) -> list[ConsumerSpec]:
        """A service with an API keeps its own copy of the valid token hashes."""
        if self.security is None:
            return []
        # Named like the service's other consumers: a district's reports instance has its own.
        prefix = self.consumers[0].service if self.consumers else self.service
        return [
            ConsumerSpec(
                service=prefix,
                name="tokens",
                stream=PLANS,
                subjects=["qcdc.v1.token.>"],
                handlers={TokenIssued: on_token_issued, TokenRevoked: on_token_revoked},
            )
        ]

    @property
    def now_clock(self) -> Clock:
        assert self.clock is not None
        return self.clock

    @property
    def source(self) -> str:
        """``ce-source``: the instance, so that a district's reports instance
        (``/qcdc/reports-H801``) is told apart from the province's (``/qcdc/reports``)."""
        instance = getattr(self.settings, "instance", self.service)
        return f"/qcdc/{instance}"

    def jetstream(self) -> JetStreamContext:
        return self.broker.connection.jetstream()

    def uow(self) -> UnitOfWork:
        return UnitOfWork(
            self.sessions,
            self.messaging,
            source=self.source,
            clock=self.now_clock,
            on_commit=self.relay.wake,
            security=self.security,
            outgoing=self._off_the_bus,
        )

    @property
    def grouped(self) -> GroupCommit:
        """Units of work of concurrent requests (report intake) sharing transactions when
        they would otherwise wait for one: one commit for many (:class:`GroupCommit`), as
        many at once as the engine admits (SQLite: one; PostgreSQL: :data:`GROUPED_LANES`),
        each of up to :data:`GROUPED_AT_MOST` requests run one after another."""
        if self._grouped is None:
            lanes = min(capacity(self.engine), GROUPED_LANES)
            self._grouped = GroupCommit(self.uow, lanes=lanes, max_batch=GROUPED_AT_MOST)
        return self._grouped

    async def migrate(self) -> None:
        await migrate(self.engine, self.migrations)

    async def connect(self) -> None:
        """Connect to NATS, waiting for it if it is not up yet."""
        delay = 0.5
        while True:
            try:
                await self.broker.connect()
                return
            except Exception as exc:
                log.warning("NATS not reachable; retrying", error=repr(exc), delay=delay)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

    async def ensure_streams(self) -> None:
        if self.settings.bus_provision:
            await provision(self.jetstream(), replicas=self.settings.stream_replicas)

    async def start(self) -> None:
        await self.migrate()
        await self.connect()
        await self.ensure_streams()
        await self.broker.start()
        self._relay_task = asyncio.create_task(self.relay.run())
        self.spawn(self._prune_outbox())
        for job in self.background_jobs:
            task = asyncio.create_task(job(self))
            if getattr(job, DRAINS_ON_STOP, False):
                self._draining_tasks.append(task)
            else:
                self._tasks.append(task)
        # What start-up built (modules, tables, models) lives as long as the process: out
        # of the collector's way, a full collection no longer walks it on every request.
        gc.freeze()
        log.info("service started", service=self.service)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(coro))

    async def _prune_outbox(self) -> None:
        retention = timedelta(days=self.settings.outbox_retention_days)
        while True:
            try:
                await self.relay.prune(retention)
            except Exception:
                log.exception("outbox prune failed")
            await asyncio.sleep(3600)

    def begin_draining(self) -> None:
        """From now on HTTP requests are refused (503) and stopping runs against the clock:
        called on the stop signal, before the HTTP server waits for requests in flight."""
        if self.draining:
            return
        self.draining = True
        self._drain_deadline = time.monotonic() + self.settings.stop_timeout_seconds
        log.info("stopping: new work refused, work in flight finishing", service=self.service)

    def _remaining(self, reserve: float = 0.0) -> float:
        return max(0.0, self._drain_deadline - time.monotonic() - reserve)

    async def stop(self) -> None:
        """Drain (see the module's description), then close the bus and the database."""
        self.begin_draining()
        self.stopping.set()
        await self._stop_consuming()
        await self._finish_jobs()
        await self._drain_outbox()
        try:
            await self.broker.stop()
        except Exception as exc:  # NATS may already be gone; the database still closes cleanly
            log.warning("broker did not stop cleanly", error=repr(exc))
        await self.engine.dispose()
        assert self.tracing is not None
        self.tracing.flush()
        log.info("service stopped", service=self.service)

    async def _stop_consuming(self) -> None:
        """No more fetches; handlers in flight finish (FastStream waits for them up to the
        broker's graceful timeout, then cancels them: their messages stay unacked)."""
        subscribers = list(self.broker.subscribers)
        results = await asyncio.gather(*(s.stop() for s in subscribers), return_exceptions=True)
        for failure in (r for r in results if isinstance(r, BaseException)):
            log.warning("a consumer did not stop cleanly", error=repr(failure))

    async def _finish_jobs(self) -> None:
        """Jobs that drain finish what they started, leaving a quarter of the bound to the
        outbox; every other job (and a draining one out of time) is cancelled."""
        if self._draining_tasks:
            reserve = self.settings.stop_timeout_seconds / 4
            _, late = await asyncio.wait(self._draining_tasks, timeout=self._remaining(reserve))
            if late:
                log.warning("background work cut short by the stop timeout", jobs=len(late))
        for task in [*self._tasks, *self._draining_tasks]:
            task.cancel()
        for task in [*self._tasks, *self._draining_tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._draining_tasks.clear()

    async def _drain_outbox(self) -> None:
        """Publish every committed outbox row, within what is left of the bound; what is
        left after it waits in the outbox for the next start."""
        self.relay.stop()
        task, self._relay_task = self._relay_task, None
        if task is not None:
            # The relay ends after its batch in progress (or now, if it waits on NATS).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout=min(1.0, self._remaining()))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        published = 0
        try:
            async with asyncio.timeout(self._remaining()):
                while count := await self.relay.publish_pending():
                    published += count
        except Exception as exc:  # NATS away or out of time: the rows are safe where they are
            log.warning("outbox not drained; it is published at the next start", error=repr(exc))
        else:
            log.info("outbox drained", published=published)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()
