"""The delivery log: one row per message and recipient, claimed, attempted, recorded."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.adapters.db import deliveries, json_text_contains
from services.notify.domain.model import Delivery, DeliveryStatus, Message
from shared.db import UTCDateTime
from shared.events import Channel
from shared.mapping import RowMapping

DELIVERIES = RowMapping(Delivery, deliveries)
MESSAGES = RowMapping(
    Message,
    deliveries,
    written={
        "key": lambda message: message.key,
        "destination": lambda message: message.destination or _destination(message),
    },
)
"""A new delivery's row, from its message (status and times are the repository's)."""


@dataclass(frozen=True)
class DeliveryFilter:
    """What the delivery log is searched by; ``unit`` includes the unit's subtree."""

    unit_code: str | None = None
    event_type: str | None = None
    status: str | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


def due_now(now: datetime) -> sa.ColumnElement[bool]:
    """Deliveries to attempt now: pending ones whose time has come, and ones left in
    ``sending`` by a worker whose lease ran out (it crashed mid-send)."""
    return sa.or_(
        sa.and_(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
        ),
        sa.and_(
            deliveries.c.status == DeliveryStatus.SENDING.value,
            deliveries.c.leased_until <= now,
        ),
    )


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_missing(self, message: Message, unit_code: str, now: datetime) -> bool:
        return bool(await self.add_all_missing([message], unit_code, now))

    async def add_all_missing(
        self, messages: Sequence[Message], unit_code: str, now: datetime
    ) -> int:
        """Record the messages' deliveries in one statement, leaving alone any whose key is
        already there (a redelivered event); return how many were new."""
        if not messages:
            return 0
        rows = [_delivery_row(m, unit_code, now) for m in messages]
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        result = await self.session.execute(
            insert(deliveries).on_conflict_do_nothing(index_elements=["key"]), rows
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def get(self, key: str) -> Delivery | None:
        row = (
            await self.session.execute(sa.select(deliveries).where(deliveries.c.key == key))
        ).first()
        return DELIVERIES.from_row(row) if row else None

    async def update(self, key: str, **values: Any) -> None:
        await self.session.execute(
            deliveries.update().where(deliveries.c.key == key).values(**values)
        )

    async def mark_sent(self, sent: Sequence[tuple[str, int]], at: datetime) -> None:
        """Deliveries (key, attempts so far) the receivers accepted at ``at``: one statement
        for them all."""
        if not sent:
            return
        statement = (
            deliveries.update()
            .where(deliveries.c.key == sa.bindparam("sent_key"))
            .values(
                status=DeliveryStatus.SENT.value,
                attempts=sa.bindparam("sent_attempts"),
                delivered_at=at,
                leased_until=None,
                last_error=None,
            )
        )
        await self.session.execute(
            statement, [{"sent_key": key, "sent_attempts": attempts} for key, attempts in sent]
        )

    async def claim_many(
        self, keys: Sequence[str], now: datetime, *, lease: datetime, webhook_lease: datetime
    ) -> list[Delivery]:
        """Take the deliveries for one attempt each, and return those taken: only those
        still due (pending and due, or ``sending`` with an expired lease), so one another
        worker holds, or that was sent meanwhile, is left alone. Webhooks get their own,
        longer lease."""
        if not keys:
            return []
        leased_until = sa.case(
            (
                deliveries.c.channel == Channel.WEBHOOK.value,
                sa.literal(webhook_lease, UTCDateTime),
            ),
            else_=sa.literal(lease, UTCDateTime),
        )
        statement = (
            deliveries.update()
            .where(self._among(deliveries.c.key, keys), due_now(now))
            .values(status=DeliveryStatus.SENDING.value, leased_until=leased_until)
            .returning(*deliveries.c)
        )
        return [DELIVERIES.from_row(row) for row in await self.session.execute(statement)]

    def _among(
        self, column: sa.ColumnElement[str], values: Sequence[str]
    ) -> sa.ColumnElement[bool]:
        """``column IN values``; on PostgreSQL as ``= ANY(array)``: one statement whatever
        the number of values, prepared once, instead of one per count of values."""
        if self.session.get_bind().dialect.name == "postgresql":
            return column == sa.any_(sa.literal(list(values), postgresql.ARRAY(sa.String)))
        return column.in_(values)

    async def due(
        self,
        now: datetime,
        limit: int,
        *,
        relay: str,
        skip_destinations: Collection[str] = (),
        skip_keys: Collection[str] = (),
    ) -> list[Any]:
        """Due deliveries (key, channel, destination, due_at), the longest due first: one
        look per kind, each a range scan of an index that stops after ``limit`` rows
        however many wait: pending e-mails (unless ``relay`` is among the destinations to
        skip), pending webhooks (but to hosts to skip), and attempts whose lease ran out.
        The looks go in one statement, each its own subquery locking its rows: one round
        trip instead of three.

        ``skip_keys`` (the worker's attempts in flight, whose leases have not run out unless
        an attempt outlives its lease) are left out here rather than in SQL: a ``NOT IN``
        of up to a hundred keys made each look a new statement for PostgreSQL to prepare,
        and its parameters to expand, whenever the number of attempts in flight changed."""
        looks = [
            sa.select(*look.subquery().c)
            for look in _due_queries(now, limit, relay, skip_destinations)
        ]
        rows = [
            row
            for row in (await self.session.execute(sa.union_all(*looks))).all()
            if row.key not in skip_keys
        ]
        rows.sort(key=lambda row: (row.due_at, row.key))
        return rows

    async def search(self, where: DeliveryFilter) -> list[Delivery]:
        query = sa.select(deliveries).order_by(deliveries.c.created_at.desc(), deliveries.c.key)
        if where.unit_code:
            query = query.where(json_text_contains(deliveries.c.unit_path, where.unit_code))
        for column, value in (
            (deliveries.c.event_type, where.event_type),
            (deliveries.c.status, where.status),
            (deliveries.c.channel, where.channel),
        ):
            if value:
                query = query.where(column == value)
        if where.since:
            query = query.where(deliveries.c.created_at >= where.since)
        if where.until:
            query = query.where(deliveries.c.created_at < where.until)
        found = [
            DELIVERIES.from_row(row) for row in await self.session.execute(query.limit(where.limit))
        ]
        return [d for d in found if not where.unit_code or where.unit_code in d.unit_path]

    async def redeliver(self, key: str, now: datetime) -> bool:
        """Put a failed delivery back in the queue, due now, with a fresh budget of
        attempts; the attempts made so far stay counted."""
        result = await self.session.execute(
            deliveries.update()
            .where(deliveries.c.key == key, deliveries.c.status == DeliveryStatus.FAILED.value)
            .values(
                status=DeliveryStatus.PENDING.value,
                next_attempt_at=now,
                leased_until=None,
                attempts_before_redelivery=deliveries.c.attempts,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def held_recipients(self, until: datetime) -> list[str]:
        """Addresses with messages held for their digest, created by ``until``."""
        query = (
            sa.select(deliveries.c.recipient)
            .where(
                deliveries.c.status == DeliveryStatus.HELD.value, deliveries.c.created_at <= until
            )
            .distinct()
        )
        return sorted((await self.session.scalars(query)).all())

    async def held_for(self, recipient: str, until: datetime) -> list[Delivery]:
        query = (
            sa.select(deliveries)
            .where(
                deliveries.c.status == DeliveryStatus.HELD.value,
                sa.func.lower(deliveries.c.recipient) == recipient.lower(),
                deliveries.c.created_at <= until,
            )
            .order_by(deliveries.c.created_at, deliveries.c.key)
        )
        return [DELIVERIES.from_row(row) for row in await self.session.execute(query)]

    async def mark_digested(self, keys: Sequence[str], digest_key: str) -> int:
        """Held messages now part of digest ``digest_key``: sent, by way of the digest."""
        result = await self.session.execute(
            deliveries.update()
            .where(deliveries.c.key.in_(keys), deliveries.c.status == DeliveryStatus.HELD.value)
            .values(status=DeliveryStatus.SENT.value, digested_in=digest_key)
        )
        return int(getattr(result, "rowcount", 0))


def _delivery_row(message: Message, unit_code: str, now: datetime) -> dict[str, Any]:
    # A digest subscriber's message is held for the daily digest; the sender only ever
    # takes pending ones.
    status = DeliveryStatus.HELD if message.digest else DeliveryStatus.PENDING
    return MESSAGES.values(
        message, unit_code=unit_code, status=status.value, next_attempt_at=now, created_at=now
    )


def _destination(message: Message) -> str:
    """Mail domain or webhook host: deliveries to one destination share a concurrency limit."""
    if message.channel is Channel.EMAIL:
        return message.recipient.rsplit("@", 1)[-1].lower()
    return urlsplit(message.recipient).hostname or ""


def _due_queries(
    now: datetime,
    limit: int,
    relay: str,
    skip_destinations: Collection[str],
) -> list[sa.Select[Any]]:
    """The looks of :meth:`DeliveryRepository.due`."""
    c = deliveries.c
    pending = c.status == DeliveryStatus.PENDING.value
    hosts = [d for d in skip_destinations if d != relay]
    webhooks = sa.and_(pending, c.channel == Channel.WEBHOOK.value, c.next_attempt_at <= now)
    looks = [
        (webhooks & c.destination.not_in(hosts) if hosts else webhooks, c.next_attempt_at),
        (sa.and_(c.status == DeliveryStatus.SENDING.value, c.leased_until <= now), c.leased_until),
    ]
    if relay not in skip_destinations:
        mail = sa.and_(pending, c.channel == Channel.EMAIL.value, c.next_attempt_at <= now)
        looks.insert(0, (mail, c.next_attempt_at))
    queries = []
    for where, due_at in looks:
        query = (
            sa.select(c.key, c.channel, c.destination, due_at.label("due_at"))
            .where(where)
            .order_by(due_at)
            .limit(limit)
        )
        # Replicas on PostgreSQL pick disjoint batches instead of queueing on each other's rows.
        queries.append(query.with_for_update(skip_locked=True))
    return queries
