"""What every service process runs beside its domain: database, broker, consumers, relay.

A service's ``bootstrap.py`` builds a :class:`Runtime` with its own tables, migrations and
consumer specs; its HTTP app starts and stops the runtime from its lifespan, so one process
serves HTTP, consumes from the bus and relays its outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
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
from shared.bus.streams import PLANS, provision
from shared.clock import Clock, clock_from_spec
from shared.db import MessagingTables, SecurityTables, create_engine, migrate
from shared.events import Event, TokenIssued, TokenRevoked
from shared.logging import BUS_LOGGER
from shared.personal_data import off_the_bus
from shared.security import on_token_issued, on_token_revoked
from shared.settings import ServiceSettings
from shared.uow import UnitOfWork

log = structlog.get_logger(__name__)


def make_broker(settings: ServiceSettings, service: str) -> NatsBroker:
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
        graceful_timeout=10.0,
        log_level=logging.DEBUG,  # per-message Received/Processed lines are debug detail
        logger=logging.getLogger(BUS_LOGGER),
        security=security,
    )


@dataclass
class Runtime:
    service: str
    settings: ServiceSettings
    messaging: MessagingTables
    migrations: Path
    consumers: list[ConsumerSpec] = field(default_factory=list)
    clock: Clock | None = None
    background_jobs: list[Callable[[Runtime], Coroutine[Any, Any, None]]] = field(
        default_factory=list
    )
    security: SecurityTables | None = None
    engine: AsyncEngine = field(init=False)
    sessions: async_sessionmaker[AsyncSession] = field(init=False)
    broker: NatsBroker = field(init=False)
    relay: OutboxRelay = field(init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _off_the_bus: Callable[[Event], Event] = field(init=False)

    def __post_init__(self) -> None:
        self._off_the_bus = off_the_bus(self.settings.contacts_key)
        if self.clock is None:
            self.clock = clock_from_spec(self.settings.clock)
        self.engine = create_engine(self.settings.resolved_database_url(self.service))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.broker = make_broker(self.settings, self.service)
        self.relay = OutboxRelay(
            self.engine,
            self.messaging,
            lambda: self.broker.connection,
            self.now_clock,
            poll_seconds=self.settings.outbox_poll_seconds,
        )
        for spec in [*self.consumers, *self._token_consumers()]:
            register_consumer(
                self.broker,
                spec,
                self.uow,
                max_deliver=self.settings.consumer_max_deliver,
                ack_wait_seconds=self.settings.consumer_ack_wait_seconds,
                batch_size=self.settings.consumer_batch_size,
            )

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
        self.spawn(self.relay.run())
        self.spawn(self._prune_outbox())
        for job in self.background_jobs:
            self.spawn(job(self))
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

    async def stop(self) -> None:
        self.relay.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        try:
            await self.broker.stop()
        except Exception as exc:  # NATS may already be gone; the database still closes cleanly
            log.warning("broker did not stop cleanly", error=repr(exc))
        await self.engine.dispose()
        log.info("service stopped", service=self.service)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()
