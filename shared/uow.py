"""The unit of work: one database transaction holding a state change and the events it implies.

Nothing publishes to the bus directly. Handlers add events with :meth:`UnitOfWork.publish`;
they are written to the outbox in the same transaction as the state change, and the relay
(:mod:`shared.bus.relay`) publishes them after commit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.auth import Principal
from shared.bus.envelope import encode
from shared.clock import Clock
from shared.context import current_correlation_id
from shared.db import MessagingTables, SecurityTables, admission, copy_connection
from shared.events import Event


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
    ) -> None:
        self._sessions = sessions
        self.messaging = messaging
        self.source = source
        self.clock = clock
        self._on_commit = on_commit
        self.security = security
        self._audits: list[dict[str, str]] = []
        self._pending: list[tuple[str, dict[str, str], bytes, str, str]] = []
        self._session: AsyncSession | None = None
        self._admission: asyncio.Semaphore | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    async def __aenter__(self) -> Self:
        engine = self._sessions.kw.get("bind")
        self._admission = admission(engine) if isinstance(engine, AsyncEngine) else None
        if self._admission is not None:
            await self._admission.acquire()
        self._session = self._sessions()
        self._pending.clear()
        self._audits.clear()
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
            if self._admission is not None:
                self._admission.release()

    def publish(self, *events: Event) -> list[str]:
        """Queue events for the outbox; returns their ids (the future ``ce-id``)."""
        ids = []
        now = self.clock.now()
        for event in events:
            subject, headers, body = encode(
                event, source=self.source, correlation_id=current_correlation_id(), time=now
            )
            self._pending.append((subject, headers, body, event.ce_type(), headers["ce-id"]))
            ids.append(headers["ce-id"])
        return ids

    async def mark_handled(self, consumer: str, event_id: str, event_type: str) -> bool:
        """Record an incoming event as handled by ``consumer``; False when it already was."""
        statement = self.messaging.insert_ignoring_duplicates(
            self.session.get_bind().dialect.name,
            {
                "consumer": consumer,
                "event_id": event_id,
                "event_type": event_type,
                "handled_at": self.clock.now(),
            },
        )
        result = await self.session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

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

    async def commit(self) -> None:
        if self._audits and self.security is not None:
            now = self.clock.now()
            await self.session.execute(
                self.security.audit.insert(), [{"at": now, **row} for row in self._audits]
            )
            self._audits.clear()
        if self._pending and not await self._copy_to_outbox():
            now = self.clock.now()
            await self.session.execute(
                self.messaging.outbox.insert(),
                [
                    {
                        "event_id": event_id,
                        "subject": subject,
                        "event_type": event_type,
                        "headers": headers,
                        "body": body,
                        "created_at": now,
                    }
                    for subject, headers, body, event_type, event_id in self._pending
                ],
            )
        await self.session.commit()
        had_events = bool(self._pending)
        self._pending.clear()
        if had_events and self._on_commit is not None:
            self._on_commit()

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

UnitOfWorkFactory = Callable[[], UnitOfWork]
