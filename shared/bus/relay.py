"""The outbox relay: publishes committed outbox rows to JetStream, in order, and marks them sent.

It survives NATS being down (rows wait, intake keeps working) and never holds a database
transaction open across a network call, so writers are not blocked while it waits on NATS.
Rows stay after publishing for the retention period so that ``qcdc outbox replay`` can
republish them; ``Nats-Msg-Id`` = ``ce-id`` makes JetStream drop repeats within its
duplicate window, and consumers' inboxes drop the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
import structlog
from nats.aio.client import Client
from nats.js.api import PubAck
from opentelemetry.trace import SpanKind
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.bus.publisher import PipelinedPublisher, PublishRefused
from shared.clock import Clock
from shared.db import MessagingTables, UTCDateTime
from shared.direct import prepare
from shared.metrics import Metrics, subject_template
from shared.tracing import OFF, TRACEPARENT, Tracing, context_from, inject

log = structlog.get_logger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0
EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"
WRONG_LAST_MSG_ID = 10070
"""JetStream's error code for a refused ``Nats-Expected-Last-Msg-Id``."""
MAX_BACKOFF_SECONDS = 10.0


_PG_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext($1))"


class _Row(NamedTuple):
    """An outbox row as asyncpg reads it (the engine's connections decode JSON)."""

    seq: int
    event_id: str
    subject: str
    headers: dict[str, str]
    body: bytes


async def _end(transaction: Any, conn: AsyncConnection) -> None:
    """Commit the relay's asyncpg transaction; if that fails the connection is not given
    back to the pool in an unknown state."""
    try:
        await transaction.commit()
    except BaseException:
        await conn.invalidate()
        raise


MARK_CHUNK = 128
"""PostgreSQL: rows acked before the relay marks them while the rest are still in flight."""
CHUNKS_PER_BATCH = 8
"""Reads of ``batch_size`` rows one batch may chain: each next read is made while the acks
of the rows before it are still coming in, so the window of acks never empties between them
and only the batch's first row is published alone (PostgreSQL: all in one transaction)."""


class _Source(Protocol):
    """Where a batch reads its rows and marks them published."""

    mark_every: int
    """Rows acked before they are marked while the batch goes on."""

    async def read(self, after: int | None) -> list[Any]:
        """Up to ``batch_size`` unpublished rows in order, after the row ``after``."""

    async def mark(self, seqs: list[int]) -> None: ...


class _OnPostgres:
    """The batch's reads and marks on its own asyncpg connection, in the transaction that
    holds the relay's lock: all of it commits, with the lock's release, at the batch's end."""

    mark_every = MARK_CHUNK

    def __init__(self, relay: OutboxRelay, driver: Any) -> None:
        self.relay = relay
        self.driver = driver

    async def read(self, after: int | None) -> list[Any]:
        statement, parameters = self.relay._unpublished_statement(after)
        sql, values = self.relay._on_asyncpg(statement, parameters)
        return [_Row(*r) for r in await self.driver.fetch(sql, *values)]

    async def mark(self, seqs: list[int]) -> None:
        await self.relay._mark_published(self.driver, seqs)


class _OnSqlite:
    """SQLite: the process's one connection is never held while waiting on NATS; each read
    and each mark is a short transaction of its own (a mark is a commit, synced to disk)."""

    def __init__(self, relay: OutboxRelay) -> None:
        self.relay = relay
        self.mark_every = relay.batch_size

    async def read(self, after: int | None) -> list[Any]:
        statement, parameters = self.relay._unpublished_statement(after)
        async with self.relay.engine.connect() as conn:
            return list((await conn.execute(statement, parameters)).all())

    async def mark(self, seqs: list[int]) -> None:
        await self.relay._mark_published(None, seqs)


class _Marking:
    """Marks the rows JetStream has stored while the batch's later rows are still in flight
    (PostgreSQL: each UPDATE's round trip overlaps the publishing, where marking a batch at
    its end cost a tenth of the relay's time; 2026-11-29). One statement at a time: the
    source's connection serves one."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.marked = 0
        self.task: asyncio.Task[None] | None = None

    def advance(self, published: list[int]) -> None:
        if len(published) - self.marked < self.source.mark_every:
            return
        if self.task is not None:
            if not self.task.done():
                return
            self.task.result()  # a failed mark fails the batch
        seqs = published[self.marked :]
        self.marked = len(published)
        self.task = asyncio.create_task(self.source.mark(seqs))

    async def idle(self) -> None:
        """Once the mark in progress, if any, is done (the connection is free)."""
        if self.task is not None:
            await self.task

    async def finish(self, published: list[int]) -> None:
        await self.idle()
        if len(published) > self.marked:
            await self.source.mark(published[self.marked :])
            self.marked = len(published)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        messaging: MessagingTables,
        connection: Callable[[], Client],
        clock: Clock,
        *,
        batch_size: int = 1000,
        window: int = 256,
        poll_seconds: float = 0.5,
        linger_seconds: float = 0.0,
        publish_timeout: float = PUBLISH_TIMEOUT_SECONDS,
        metrics: Metrics | None = None,
        tracing: Tracing = OFF,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.tracing = tracing
        self.outbox = messaging.outbox
        self._connection = connection
        self._publisher: PipelinedPublisher | None = None
        self.clock = clock
        self.batch_size = batch_size
        self.window = max(1, window)
        self.publish_timeout = publish_timeout
        self.poll_seconds = poll_seconds
        self.linger_seconds = linger_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self._read_all_it_could = False
        """The last batch ended at its last read, a full one: there may be more rows."""
        self._database = engine.url.database
        c = self.outbox.c
        self._unpublished_query = (
            sa.select(c.seq, c.event_id, c.subject, c.headers, c.body)
            .where(c.published_at.is_(None))
            .order_by(c.seq)
            .limit(batch_size)
        )
        self._unpublished_after = self._unpublished_query.where(c.seq > sa.bindparam("after"))
        """The next rows of a batch: those in flight are not marked yet, so not ``published_at
        IS NULL`` alone. (A row committed meanwhile with a lower ``seq`` waits for the next
        batch, as it would have without the chaining.)"""
        seqs = sa.bindparam("seqs", type_=postgresql.ARRAY(sa.Integer))
        self._pg_mark = (
            self.outbox.update()
            .where(c.seq == sa.any_(seqs))
            .values(published_at=sa.bindparam("at", type_=UTCDateTime), attempts=c.attempts + 1)
        )
        """The marks on PostgreSQL: the keys as one array, one statement whatever their number."""

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows: publish now rather than at next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        while not self._stopping:
            # Cleared before reading: a commit after this wakes the loop again; one before
            # it is visible to the read (wake() is called after the commit).
            self._wake.clear()
            try:
                await self.publish_pending()
                failures = 0
            except Exception as exc:  # NATS down, DB busy: wait and try again, never die
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 0.2 * 2**failures)
                log.warning("outbox relay failed; will retry", error=repr(exc), delay=delay)
                await asyncio.sleep(delay)
                continue
            # A batch that stopped at its last read may have left rows behind; one whose
            # last read was not full took every row committed before it, so the relay reads
            # again only when woken (or at the next poll, for rows another process wrote),
            # not once more to find nothing.
            if not self._read_all_it_could and await self._sleep_until_woken():
                await self._linger()

    async def _sleep_until_woken(self) -> bool:
        """Until a commit wakes the relay (True) or the poll interval passes."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
        except TimeoutError:
            return False
        return True

    async def _linger(self) -> None:
        """Woken by a commit: let the next few commits join its batch. At a steady trickle
        (a report every 10 ms) each row would otherwise cost a batch of its own: on
        PostgreSQL five round trips to the database, and a publish that waits for its ack."""
        if self.linger_seconds > 0 and not self._stopping:
            await asyncio.sleep(self.linger_seconds)

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows, in order; return how many were published.

        A batch reads ``batch_size`` rows at a time, up to ``CHUNKS_PER_BATCH`` times while
        each read is full. Rows are marked sent as JetStream acks them (on PostgreSQL the
        marks commit once, at the batch's end): a crash before that republishes them, and
        JetStream drops the repeats by ``Nats-Msg-Id``. On PostgreSQL, replicas of a service
        take turns: a transaction-scoped advisory lock lets one relay publish at a time, so
        two replicas neither publish the same rows nor interleave their order. The batch is
        read and marked in that lock's transaction, on one connection."""
        self._read_all_it_could = False
        if self.engine.dialect.name != "postgresql":
            return await self._publish_batch(_OnSqlite(self))
        async with self.engine.connect() as conn:
            # On asyncpg itself: through SQLAlchemy each of the batch's statements cost
            # ~170 µs of CPU and its transaction ~270 µs more, against ~40 and ~70 µs here
            # (a relay runs a batch per commit at a steady rate; py-spy, 2026-11-29).
            driver: Any = (await conn.get_raw_connection()).driver_connection
            transaction = driver.transaction()
            await transaction.start()
            try:
                locked = await driver.fetchval(_PG_LOCK, f"qcdc-outbox-relay:{self._database}")
                if not locked:
                    return 0  # another replica is relaying; this one polls again later
                return await self._publish_batch(_OnPostgres(self, driver))
            finally:
                # Committed even when a publish failed: the rows JetStream stored before it
                # are marked, the rest wait for the next batch.
                await _end(transaction, conn)

    def publisher(self) -> PipelinedPublisher:
        """One publisher per connection (a new one after the broker reconnects from scratch)."""
        connection = self._connection()
        if self._publisher is None or self._publisher.connection is not connection:
            self._publisher = PipelinedPublisher(connection)
        return self._publisher

    async def _publish_batch(self, source: _Source) -> int:
        rows = await source.read(None)
        if not rows:
            return 0
        published: list[int] = []
        marking = _Marking(source)
        try:
            async with contextlib.aclosing(self._chained(source, marking, rows)) as chained:
                complete = await self._publish_in_order(chained, published, marking)
        finally:
            await marking.finish(published)
            if published and self.metrics is not None:
                self.metrics.outbox_published.inc(len(published))
        if not complete:
            self._wake.set()  # the rest waits for the next batch, not the poll
        return len(published)

    async def _chained(
        self, source: _Source, marking: _Marking, rows: list[Any]
    ) -> AsyncGenerator[Any]:
        """The batch's rows: the first read's, then, while each read is full, the next
        read's (made when the rows before it have been published and their acks are
        coming in)."""
        for reads in range(1, CHUNKS_PER_BATCH + 1):
            for row in rows:
                yield row
            if len(rows) < self.batch_size:
                return
            if reads == CHUNKS_PER_BATCH:
                self._read_all_it_could = True
                return
            await marking.idle()  # one statement at a time on the connection
            rows = await source.read(rows[-1].seq)

    async def _publish_in_order(
        self, rows: AsyncIterator[Any], published: list[int], marking: _Marking
    ) -> bool:
        """Publish ``rows`` with up to ``window`` acks in flight, appending to ``published``
        the rows JetStream stored, in order; stop at the first that it did not (False).

        The first row anchors the batch (published alone); each next one carries
        ``Nats-Expected-Last-Msg-Id`` = the previous row's id, so JetStream stores a row only
        right after its predecessor. If a publish is lost (the connection broke mid-window),
        the ones behind it are refused instead of overtaking it, and if another writer of the
        stream (a district's instance) comes between two rows, the rest wait for the next
        batch: what the stream holds is always a prefix of the batch, in order. Repeats of
        rows already stored are dropped by ``Nats-Msg-Id`` before that check."""
        publisher = self.publisher()
        first = await anext(rows)
        await self._settle(
            first,
            await publisher.publish(first.subject, first.body, self._traced(first.headers, first)),
            published,
        )
        in_flight: deque[tuple[Any, asyncio.Future[PubAck]]] = deque()
        previous = first.event_id
        try:
            async for row in rows:
                headers = self._traced({**row.headers, EXPECTED_LAST_MSG_ID: previous}, row)
                in_flight.append((row, await publisher.publish(row.subject, row.body, headers)))
                previous = row.event_id
                while in_flight and (len(in_flight) >= self.window or in_flight[0][1].done()):
                    if not await self._settle(*in_flight.popleft(), published):
                        return False
                marking.advance(published)
            while in_flight:
                if not await self._settle(*in_flight.popleft(), published):
                    return False
            return True
        finally:
            for _, future in in_flight:
                future.cancel()

    def _traced(self, headers: dict[str, str], row: Any) -> dict[str, str]:
        """With tracing on, a producer span for an event recorded within a trace, and its
        context in the published ``traceparent`` (the consumer's span is its child)."""
        if not self.tracing.enabled or TRACEPARENT not in headers:
            return headers
        headers = dict(headers)
        with self.tracing.tracer.start_as_current_span(
            f"{subject_template(row.subject)} publish",
            context=context_from(headers),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": subject_template(row.subject),
                "messaging.message.id": row.event_id,
            },
        ):
            inject(headers)
        return headers

    async def _settle(self, row: Any, future: asyncio.Future[PubAck], published: list[int]) -> bool:
        """Wait for one row's ack; False when the rows behind it must wait for the next
        batch because another writer came between (nothing was lost)."""
        try:
            if future.done():
                # Most acks are in when the window moves on: asyncio.wait_for's timer for
                # each would cost more than the publish (nats-py's own publish_async, that
                # timer per ack, reached half this relay's rate; 2026-11-29).
                future.result()
            else:
                await asyncio.wait_for(future, self.publish_timeout)
        except PublishRefused as exc:
            if exc.err_code == WRONG_LAST_MSG_ID:
                return False
            await self._record_failure(row.seq, exc)
            raise
        except Exception as exc:
            await self._record_failure(row.seq, exc)
            raise
        published.append(row.seq)
        return True

    def _unpublished_statement(self, after: int | None) -> tuple[sa.Select[Any], dict[str, Any]]:
        if after is None:
            return self._unpublished_query, {}
        return self._unpublished_after, {"after": after}

    def _on_asyncpg(self, statement: sa.Executable, parameters: dict[str, Any]) -> Any:
        """The SQL and positional parameters SQLAlchemy would send to asyncpg."""
        prepared = prepare(self.engine.dialect, statement, parameters)
        assert prepared is not None  # no IN (list) in the relay's statements
        sql, values, _ = prepared
        return sql, values

    async def _mark_published(self, conn: Any, seqs: list[int]) -> None:
        """In the asyncpg connection ``conn``'s transaction (on PostgreSQL it commits with
        the lock's release), or in a transaction of its own."""
        if conn is not None:
            sql, values = self._on_asyncpg(self._pg_mark, {"seqs": seqs, "at": self.clock.now()})
            await conn.execute(sql, *values)
            return
        statement = (
            self.outbox.update()
            .where(self.outbox.c.seq.in_(seqs))
            .values(published_at=self.clock.now(), attempts=self.outbox.c.attempts + 1)
        )
        async with self.engine.begin() as own:
            await own.execute(statement)

    async def _record_failure(self, seq: int, exc: Exception) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    self.outbox.update()
                    .where(self.outbox.c.seq == seq)
                    .values(attempts=self.outbox.c.attempts + 1, last_error=repr(exc)[:2000])
                )
        except Exception:  # the failure to publish matters more than the bookkeeping
            log.exception("could not record outbox failure", seq=seq)

    async def replay(self, since: datetime) -> int:
        """Republish every row created at or after ``since`` (published or not)."""
        query = (
            sa.select(
                self.outbox.c.seq, self.outbox.c.subject, self.outbox.c.headers, self.outbox.c.body
            )
            .where(self.outbox.c.created_at >= since)
            .order_by(self.outbox.c.seq)
        )
        async with self.engine.connect() as conn:
            rows = list((await conn.execute(query)).all())
        publisher = self.publisher()
        for row in rows:
            ack = await publisher.publish(row.subject, row.body, row.headers)
            await asyncio.wait_for(ack, self.publish_timeout)
        if rows:
            await self._mark_published(None, [row.seq for row in rows])
        return len(rows)

    async def prune(self, retention: timedelta) -> int:
        """Delete published rows older than the retention period."""
        cutoff = self.clock.now() - retention
        async with self.engine.begin() as conn:
            result = await conn.execute(
                self.outbox.delete().where(
                    self.outbox.c.published_at.is_not(None), self.outbox.c.published_at < cutoff
                )
            )
        return int(getattr(result, "rowcount", 0))
