"""The unit of work: one database transaction holding a state change and the events it implies.

Nothing publishes to the bus directly. The events an aggregate raises (its ``events``
list) reach the outbox on commit: repositories tell the unit of work of each aggregate
they load, add or save (:func:`seen`), and :meth:`UnitOfWork.commit` queues the events of
those aggregates that were not published yet, so a forgotten publish cannot lose one.
Handlers may still queue events themselves with :meth:`UnitOfWork.publish` (events no
aggregate holds; or to give the event the correlation id of one step among the several a
:class:`GroupCommit` shares a transaction with). They are written to the outbox in the
same transaction as the state change, and the relay (:mod:`shared.bus.relay`) publishes
them after commit.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar

import sqlalchemy as sa
from opentelemetry import context as trace_context
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.auth import Principal
from shared.bus.envelope import encode, new_event_id
from shared.bus.envelope import headers as envelope_headers
from shared.clock import Clock
from shared.context import bind_correlation_id, current_correlation_id
from shared.db import MessagingTables, SecurityTables, UTCDateTime, admission, copy_connection
from shared.direct import Step, execute_one, execute_together
from shared.events import Event
from shared.tracing import current_trace_headers

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")

SEEN = "qcdc.seen"
"""Key of a session's ``info`` holding the aggregates its unit of work has seen."""
AT_COMMIT = "qcdc.at_commit"
"""Key of a session's ``info`` holding the writes a repository left for the commit
(:func:`write_at_commit`)."""


class EncodedEvent(NamedTuple):
    """An event encoded for the outbox (:meth:`UnitOfWork.publish_encoded`)."""

    ce_type: str
    subject: str
    """Its NATS subject."""
    unit_path: Sequence[str]
    body: bytes
    """Its JSON, as ``model_dump_json`` writes it."""


def seen(session: AsyncSession, aggregate: A) -> A:
    """Tell the session's unit of work of an aggregate a repository loaded, added or saved
    (and return it): the events it raises are queued for the outbox when the work commits."""
    found = session.info.get(SEEN)
    if found is not None:
        # By identity, in the order first seen: a unit import sees thousands in one work.
        found.setdefault(id(aggregate), aggregate)
    return aggregate


def write_at_commit(session: AsyncSession, key: Hashable, step: Step) -> bool:
    """Leave a write (a statement built once, and its parameters) for the commit of the
    session's unit of work, which sends it with its audit and outbox rows: on SQLite in
    the same trip to the driver's thread. A later write with the same ``key`` replaces
    an earlier one. False, and nothing left, when no unit of work runs the session."""
    writes = session.info.get(AT_COMMIT)
    if writes is None:
        return False
    writes[key] = step
    return True


class Repository:
    """A repository works in the session of the unit of work that made it (see
    :meth:`UnitOfWork.repository`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        messaging: MessagingTables,
        *,
        source: str,
        clock: Clock,
        on_commit: Callable[[], None] | None = None,
        security: SecurityTables | None = None,
        outgoing: Callable[[Event], Event] | None = None,
    ) -> None:
        self._sessions = sessions
        self._outgoing = outgoing
        self.messaging = messaging
        self.source = source
        self.clock = clock
        self._on_commit = on_commit
        self.security = security
        self._audits: list[dict[str, str]] = []
        self._pending: list[tuple[str, dict[str, str], bytes, str, str]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._session: AsyncSession | None = None
        self._repositories: dict[type[Any], Any] = {}
        self._admission: asyncio.Semaphore | None = None
        self.seen: dict[int, Any] = {}
        """Aggregates the repositories loaded, added or saved in this unit of work, by
        identity."""
        self._queued: dict[int, Event] = {}
        """Events already queued in this work, by identity (held, so that no identity is
        reused; kept across its commits)."""

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    def repository(self, kind: type[R]) -> R:
        """This unit of work's repository of a kind (one per kind, on its session):
        ``uow.repository(ReportRepository).get(report_id)``. Handlers reach their
        repositories only through this, so a test's fake unit of work can hand them
        in-memory ones."""
        found = self._repositories.get(kind)
        if found is None:
            found = self._repositories[kind] = kind(self.session)  # type: ignore[call-arg]
        return found  # type: ignore[no-any-return]

    async def __aenter__(self) -> Self:
        engine = self._sessions.kw.get("bind")
        self._admission = admission(engine) if isinstance(engine, AsyncEngine) else None
        if self._admission is not None:
            await self._admission.acquire()
        self._session = self._sessions()
        self._pending.clear()
        self._audits.clear()
        self._after_commit.clear()
        self._repositories.clear()
        self.seen = {}
        self._queued.clear()
        self._session.info[SEEN] = self.seen
        self._session.info[AT_COMMIT] = {}
        await self._session.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if session.in_transaction():
                await session.rollback()
        finally:
            await session.close()
            self._session = None
            self._repositories.clear()
            if self._admission is not None:
                self._admission.release()

    def publish(self, *events: Event) -> list[str]:
        """Queue events for the outbox; returns their ids (the future ``ce-id``)."""
        ids = []
        now = self.clock.now()
        # The trace this work is part of (none when tracing is off): stored with each
        # event in the outbox, so its consumers' spans join the same trace.
        trace = current_trace_headers()
        for event in events:
            self._queued[id(event)] = event
            if self._outgoing is not None:
                event = self._outgoing(event)  # personal data off the bus (shared.personal_data)
            subject, headers, body = encode(
                event,
                source=self.source,
                correlation_id=current_correlation_id(),
                time=now,
                trace=trace,
            )
            self._pending.append((subject, headers, body, event.ce_type(), headers["ce-id"]))
            ids.append(headers["ce-id"])
        return ids

    def outgoing(self, event: Event) -> Event:
        """The event as :meth:`publish` would put it on the bus (personal data off it)."""
        return event if self._outgoing is None else self._outgoing(event)

    def publish_encoded(self, encoded: Sequence[EncodedEvent]) -> list[str]:
        """Queue events whose bodies are already encoded, byte for byte as :meth:`publish`
        encodes them (the deadline clock's: a hundred thousand in a pass, most alike); the
        caller has applied :meth:`outgoing`. Returns their ids, as :meth:`publish` does."""
        ids = []
        now = self.clock.now()
        trace = current_trace_headers()
        correlation_id = current_correlation_id()
        for event in encoded:
            event_id = new_event_id()
            found = envelope_headers(
                event_id=event_id,
                source=self.source,
                ce_type=event.ce_type,
                unit_path=event.unit_path,
                correlation_id=correlation_id,
                time=now,
                trace=trace,
            )
            self._pending.append((event.subject, found, event.body, event.ce_type, event_id))
            ids.append(event_id)
        return ids

    async def published_here(self, event_id: str) -> bool:
        """The event is this service's own: its outbox holds it (published rows are kept
        ``outbox_retention_days``)."""
        outbox = self.messaging.outbox
        query = sa.select(outbox.c.seq).where(outbox.c.event_id == event_id).limit(1)
        return (await self.session.scalar(query)) is not None

    async def mark_handled(self, consumer: str, event_id: str, event_type: str) -> bool:
        """Record an incoming event as handled by ``consumer``; False when it already was."""
        statement = self.messaging.insert_ignoring_duplicates(self.session.get_bind().dialect.name)
        row = {
            "consumer": consumer,
            "event_id": event_id,
            "event_type": event_type,
            "handled_at": self.clock.now(),
        }
        return await execute_one(self.session, statement, row) > 0

    def audit(
        self,
        principal: Principal,
        action: str,
        target: str = "",
        *,
        outcome: str = "done",
        reason: str = "",
    ) -> None:
        """Record in the audit log, in this transaction, that ``principal`` did ``action``
        (or was refused it: ``outcome`` and ``reason``)."""
        self._audits.append(
            {
                "token_id": principal.token_id,
                "unit_code": principal.unit_code,
                "role": principal.role.value,
                "action": action,
                "target": target[:256],
                "outcome": outcome,
                "reason": reason[:2000],
                "correlation_id": current_correlation_id(),
            }
        )

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the next commit succeeds (once, however often it is
        asked for); never if the work is rolled back."""
        if callback not in self._after_commit:
            self._after_commit.append(callback)

    def collect(self) -> None:
        """Queue the events of the aggregates seen that no one has published yet."""
        for aggregate in self.seen.values():
            fresh = [e for e in getattr(aggregate, "events", ()) if id(e) not in self._queued]
            if fresh:
                self.publish(*fresh)

    async def commit(self) -> None:
        self.collect()
        audits: list[dict[str, Any]] = []
        if self._audits and self.security is not None:
            now = self.clock.now()
            audits = [{"at": now, **row} for row in self._audits]
            self._audits.clear()
        outbox: list[dict[str, Any]] = []
        if self._pending and not await self._copy_to_outbox():
            now = self.clock.now()
            outbox = [
                {
                    "event_id": event_id,
                    "subject": subject,
                    "event_type": event_type,
                    "headers": headers,
                    "body": body,
                    "created_at": now,
                }
                for subject, headers, body, event_type, event_id in self._pending
            ]
        writes: dict[Hashable, Step] = self.session.info[AT_COMMIT]
        await self._insert(audits, outbox, list(writes.values()))
        writes.clear()
        await self.session.commit()
        had_events = bool(self._pending)
        self._pending.clear()
        # What was queued stays known: a later commit of this work queues only new events.
        if had_events and self._on_commit is not None:
            self._on_commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    async def _insert(
        self, audits: list[dict[str, Any]], outbox: list[dict[str, Any]], writes: list[Step]
    ) -> None:
        """The work's audit and outbox rows, and the ``writes`` left for its commit. On
        PostgreSQL the rows in one statement (the audit rows' INSERT a data-modifying CTE of
        the outbox's): each statement is a round trip, and a submission's commit paid two
        besides COMMIT itself. On SQLite all in one trip to the driver's thread."""
        few = 0 < len(audits) <= MERGED_UP_TO and 0 < len(outbox) <= MERGED_UP_TO
        if few and self.session.get_bind().dialect.name == "postgresql":
            assert self.security is not None
            statement = _audit_and_outbox(self.security.audit.name, self.messaging.outbox.name)
            merged = {
                "audit_at": audits[0]["at"],
                **{f"a_{c}": [row[c] for row in audits] for c in AUDITED},
                "created_at": outbox[0]["created_at"],
                **{f"o_{c}": [row[c] for row in outbox] for c in OUTBOXED[:3]},
                "o_headers": [json.dumps(row["headers"]) for row in outbox],
                "o_body": [row["body"] for row in outbox],
            }
            await execute_together(self.session, [(statement, merged), *writes])
            return
        steps: list[Step] = []
        if audits:
            assert self.security is not None
            steps.append((_insert_into(self.security.audit), audits))
        if outbox:
            steps.append((_insert_into(self.messaging.outbox), outbox))
        # On SQLite all in one trip to the driver's thread; elsewhere one statement each.
        await execute_together(self.session, [*steps, *writes])

    async def _copy_to_outbox(self) -> bool:
        """Many events at once (the deadline clock's batches) on PostgreSQL: COPY their
        outbox rows in, several times faster than an INSERT each. False: not done."""
        if len(self._pending) < COPY_FROM:
            return False
        connection = await copy_connection(self.session)
        if connection is None:
            return False
        now = self.clock.now()
        await connection.copy_records_to_table(
            self.messaging.outbox.name,
            columns=("event_id", "subject", "event_type", "headers", "body", "created_at"),
            records=[
                (event_id, subject, event_type, json.dumps(headers), body, now)
                for subject, headers, body, event_type, event_id in self._pending
            ],
        )
        return True


COPY_FROM = 100
"""Events in one commit from which their outbox rows are copied in on PostgreSQL."""
AUDITED = (
    "token_id",
    "unit_code",
    "role",
    "action",
    "target",
    "outcome",
    "reason",
    "correlation_id",
)
OUTBOXED = ("event_id", "subject", "event_type", "headers", "body")


async def settle(future: asyncio.Future[Any], results: Awaitable[list[Any]]) -> None:
    """Answer ``future`` with the one result of a step run alone, or with its exception."""
    try:
        [result] = await results
    except Exception as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)


def abandon(futures: Iterable[asyncio.Future[Any]], reason: str) -> None:
    """Fail with ``reason`` each of ``futures`` a batch left unanswered (it was cancelled
    mid-way, at shutdown): nobody waits for ever. The failure counts as seen, since its
    waiter may be cancelled too: no "exception never retrieved" noise."""
    for future in futures:
        if not future.done():
            future.set_exception(RuntimeError(reason))
            future.exception()


@functools.cache
def _audit_and_outbox(audit: str, outbox: str) -> sa.TextClause:
    """PostgreSQL: a work's audit rows and outbox rows in one statement, each column bound
    as one array (``a_<column>``, ``o_<column>``): one fixed text, so SQLAlchemy compiles it
    once (a multi-row VALUES is compiled anew on every execution)."""
    audited = ", ".join(AUDITED)
    arrays = ", ".join(f"CAST(:a_{c} AS TEXT[])" for c in AUDITED)
    return sa.text(
        f"WITH audited AS (INSERT INTO {audit} (at, {audited}) "
        f"SELECT :audit_at, {audited} FROM unnest({arrays}) AS a({audited})) "
        f"INSERT INTO {outbox} (event_id, subject, event_type, headers, body, created_at) "
        "SELECT event_id, subject, event_type, CAST(headers AS JSON), body, :created_at "
        "FROM unnest(CAST(:o_event_id AS TEXT[]), CAST(:o_subject AS TEXT[]), "
        "CAST(:o_event_type AS TEXT[]), CAST(:o_headers AS TEXT[]), CAST(:o_body AS BYTEA[])) "
        "WITH ORDINALITY AS o(event_id, subject, event_type, headers, body, n) ORDER BY n"
    ).bindparams(
        sa.bindparam("audit_at", type_=UTCDateTime), sa.bindparam("created_at", type_=UTCDateTime)
    )


@functools.cache
def _insert_into(table: sa.Table) -> sa.Insert:
    """The table's INSERT, one object per table: :func:`execute_together` keeps its
    compiled form."""
    return table.insert()


MERGED_UP_TO = 100
"""Audit and outbox rows each, up to which one statement inserts both on PostgreSQL (far
below its limit of bound parameters per statement)."""

UnitOfWorkFactory = Callable[[], UnitOfWork]


async def twice(
    uows: UnitOfWorkFactory | GroupCommit,
    step: Callable[[UnitOfWork], Awaitable[T]],
    *,
    on_conflict: bool = True,
) -> T:
    """Run ``step`` in a unit of work of its own, and once more in a fresh one when it
    meets a unique constraint another transaction took first (``on_conflict``: the second
    attempt sees the winner's row) or a pooled connection that died with its server (the
    pool is renewed, and nothing was written). Handlers use it instead of catching the
    database driver's errors themselves."""
    for attempt in range(2):
        try:
            if isinstance(uows, GroupCommit):  # the step's transaction is shared; it commits
                return await uows.run(step)
            async with uows() as uow:
                return await step(uow)
        except IntegrityError:
            if attempt == 1 or not on_conflict:
                raise
        except DBAPIError as exc:
            if attempt == 1 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


class GroupCommit:
    """Runs the database steps of concurrent callers in as few transactions as it can.

    A caller's step joins a queue; a transaction (up to ``lanes`` at once) runs every step
    queued so far and commits them together, so N callers at once cost one commit (one
    fsync) instead of N, and the audit and outbox rows of all of them go in one statement
    each. Under light load each step has its transaction to itself; steps share one only
    when they would otherwise wait for one. Each caller's future resolves after the commit
    that holds its step. If that transaction fails, each of its steps runs again alone, so
    one bad step fails only its own caller. Each step runs under its caller's correlation
    id and trace context, which the events it publishes carry.
    """

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        lanes: int = 1,
        max_batch: int | None = None,
        linger_seconds: float = 0.0,
    ) -> None:
        self.uow_factory = uow_factory
        self.linger_seconds = linger_seconds
        """A step that would start a transaction on an idle group waits this long for others
        to join it. A consumer's next fetch waits for this one's messages to be handled, so
        the messages that arrive meanwhile come together in it and share one transaction."""
        self.max_batch = max_batch
        """At most this many steps in one transaction (the oldest first): a step waits for
        a bounded transaction, not for everything queued before it."""
        self._queue: list[_Queued] = []
        self._lanes = asyncio.Semaphore(lanes)

    async def run(self, step: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queued = _Queued(step, future, current_correlation_id(), trace_context.get_current())
        self._queue.append(queued)
        if self.linger_seconds > 0 and len(self._queue) == 1 and not self._lanes.locked():
            # Over early if a step that joins meanwhile takes this one along and commits.
            await asyncio.wait((future,), timeout=self.linger_seconds)
        while not queued.taken:  # else a transaction took this step along
            async with self._lanes:
                if queued.taken:
                    break
                size = self.max_batch or len(self._queue)
                batch, self._queue = self._queue[:size], self._queue[size:]
                for item in batch:
                    item.taken = True
                await self._commit(batch)
        result: T = await future
        return result

    async def _commit(self, batch: list[_Queued]) -> None:
        own = current_correlation_id()
        try:
            if len(batch) > 1:
                try:
                    results = await self._run(batch)
                except Exception:
                    pass  # each alone below: one bad step must not fail the others
                else:
                    for item, result in zip(batch, results, strict=True):
                        item.future.set_result(result)
                    return
            for item in batch:
                await settle(item.future, self._run([item]))
        finally:
            bind_correlation_id(own)
            abandon((item.future for item in batch), "database step abandoned")

    async def _run(self, batch: list[_Queued]) -> list[Any]:
        async with self.uow_factory() as uow:
            results = []
            for item in batch:
                bind_correlation_id(item.correlation_id)
                # The caller's trace too: its step may run in another caller's task.
                token = trace_context.attach(item.trace)
                try:
                    results.append(await item.step(uow))
                finally:
                    trace_context.detach(token)
            await uow.commit()
        return results


@dataclass
class _Queued:
    step: Callable[[UnitOfWork], Awaitable[Any]]
    future: asyncio.Future[Any]
    correlation_id: str
    trace: trace_context.Context
    taken: bool = False
    """A transaction has taken the step (it resolves the future once committed)."""
