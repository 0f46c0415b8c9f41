"""Tables and repositories of the notify service."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.domain.model import (
    Contact,
    Delivery,
    DeliveryStatus,
    Message,
    SignatureScheme,
    Subscription,
)
from shared.db import UTCDateTime, messaging_tables, security_tables
from shared.events import Channel

metadata = sa.MetaData()
messaging = messaging_tables(metadata)
security = security_tables(metadata)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("unit_code", sa.String(32), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("unit_path", sa.JSON, nullable=False),
    sa.Column("focal_email", sa.String(256), nullable=True),
    sa.Column("head_email", sa.String(256), nullable=True),
    sa.Column("webhook_url", sa.String(2048), nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False, server_default=""),
    sa.Column("tags", sa.JSON, nullable=True),
    sa.Column("parent_code", sa.String(32), nullable=True),
    sa.Column("reports_to_code", sa.String(32), nullable=True),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False, index=True),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("recipient", sa.String(2048), nullable=False),
    sa.Column("unit_code", sa.String(32), nullable=False, index=True),
    sa.Column("unit_path", sa.JSON, nullable=False),
    sa.Column("correlation_id", sa.String(128), nullable=False, server_default=""),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("attempts_before_redelivery", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("leased_until", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("subscription_id", sa.String(64), nullable=True),
    sa.Column("destination", sa.String(255), nullable=False, server_default=""),
    sa.Column("digest", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("digested_in", sa.String(64), nullable=True),
    # The worker's look for due deliveries, one channel at a time (migration 0006).
    sa.Index("ix_deliveries_due_by_channel", "status", "channel", "next_attempt_at"),
)

overdue_reports = sa.Table(
    "overdue_reports",
    metadata,
    # Reports still missing after their last urging: the receiving unit's daily digest
    # lists them until submitted, waived (unit removed or dissolved), the plan closed or
    # the deadline moved (migration 0007; repository in :mod:`overdue`).
    sa.Column("obligation_id", sa.String(64), primary_key=True),
    sa.Column("plan_id", sa.String(64), nullable=False, index=True),
    sa.Column("schedule_key", sa.String(64), nullable=False),
    sa.Column("unit_code", sa.String(32), nullable=False, index=True),
    sa.Column("receiving_unit", sa.String(32), nullable=False, index=True),
    sa.Column("report_kind", sa.String(16), nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("plan_doc_number", sa.String(64), nullable=False, server_default=""),
    sa.Column("urgings", sa.Integer, nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
)

deadline_mail = sa.Table(
    "deadline_mail",
    metadata,
    # Which obligation each reminder or urging e-mail is about: one not yet sent when the
    # obligation stops awaiting a report is withdrawn (migration 0007; :mod:`overdue`).
    sa.Column("delivery_key", sa.String(64), primary_key=True),
    sa.Column("obligation_id", sa.String(64), nullable=False, index=True),
    sa.Column("plan_id", sa.String(64), nullable=False, index=True),
    sa.Column("schedule_key", sa.String(64), nullable=False),
    sa.Column("unit_code", sa.String(32), nullable=False, index=True),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("unit_code", sa.String(32), nullable=False, index=True),
    sa.Column("include_subtree", sa.Boolean, nullable=False),
    sa.Column("event_types", sa.JSON, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("address", sa.String(2048), nullable=False),
    sa.Column("secret", sa.String(256), nullable=True),
    sa.Column("digest", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Rows older than migration 0008 say "legacy"; new ones "standard" (SignatureScheme).
    sa.Column("signature_scheme", sa.String(16), nullable=False, server_default="standard"),
)

# PlanAmended carries only what changed; to tell every assignee that deadlines moved, notify
# keeps each plan's number, title and current assignees from PlanIssued on.
known_plans = sa.Table(
    "known_plans",
    metadata,
    sa.Column("plan_id", sa.String(64), primary_key=True),
    sa.Column("doc_number", sa.String(128), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("issuing_unit", sa.String(32), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

plan_assignees = sa.Table(
    "plan_assignees",
    metadata,
    sa.Column("plan_id", sa.String(64), primary_key=True),
    sa.Column("unit_code", sa.String(32), primary_key=True),
)


class ContactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, unit_code: str) -> Contact | None:
        found = await self.get_many([unit_code])
        return found.get(unit_code)

    async def get_many(self, unit_codes: Iterable[str]) -> dict[str, Contact]:
        codes = sorted(set(unit_codes))
        if not codes:
            return {}
        rows = await self.session.execute(
            sa.select(contacts).where(contacts.c.unit_code.in_(codes))
        )
        return {row.unit_code: _to_contact(row) for row in rows}

    async def with_tag(self, tag: str) -> list[Contact]:
        """Units carrying ``tag``: a coarse text match in SQL, the exact test here."""
        query = (
            sa.select(contacts)
            .where(_json_text_contains(contacts.c.tags, tag))
            .order_by(contacts.c.unit_code)
        )
        found = [_to_contact(row) for row in await self.session.execute(query)]
        return [c for c in found if tag in c.tags]

    async def save(self, contact: Contact, now: datetime) -> None:
        values = {
            "name": contact.name,
            "unit_path": contact.unit_path,
            "focal_email": contact.focal_email,
            "head_email": contact.head_email,
            "webhook_url": contact.webhook_url,
            "kind": contact.kind,
            "tags": list(contact.tags),
            "parent_code": contact.parent_code,
            "reports_to_code": contact.reports_to_code,
            "updated_at": now,
        }
        updated = await self.session.execute(
            contacts.update().where(contacts.c.unit_code == contact.unit_code).values(**values)
        )
        if not getattr(updated, "rowcount", 0):
            await self.session.execute(
                contacts.insert().values(unit_code=contact.unit_code, **values)
            )


def _to_contact(row: Any) -> Contact:
    return Contact(
        unit_code=row.unit_code,
        name=row.name,
        unit_path=list(row.unit_path),
        focal_email=row.focal_email,
        head_email=row.head_email,
        webhook_url=row.webhook_url,
        kind=row.kind,
        tags=tuple(row.tags or ()),
        parent_code=row.parent_code,
        reports_to_code=row.reports_to_code,
    )


def _json_text_contains(column: Any, value: str) -> Any:
    """``column`` (a JSON list of strings) mentions ``value``, as text: portable across
    SQLite and PostgreSQL, and only a pre-filter (callers test the list exactly)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.cast(column, sa.Text).like(f'%"{escaped}"%', escape="\\")


@dataclass(frozen=True)
class KnownPlan:
    plan_id: str
    doc_number: str
    title: str
    issuing_unit: str


class PlanRepository:
    """Plans as notify needs them: number, title and current assignees."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, plan_id: str) -> KnownPlan | None:
        row = (
            await self.session.execute(
                sa.select(known_plans).where(known_plans.c.plan_id == plan_id)
            )
        ).first()
        if row is None:
            return None
        return KnownPlan(row.plan_id, row.doc_number, row.title, row.issuing_unit)

    async def save(self, plan: KnownPlan, now: datetime) -> None:
        await self.session.execute(
            known_plans.delete().where(known_plans.c.plan_id == plan.plan_id)
        )
        await self.session.execute(
            known_plans.insert().values(
                plan_id=plan.plan_id,
                doc_number=plan.doc_number,
                title=plan.title,
                issuing_unit=plan.issuing_unit,
                updated_at=now,
            )
        )

    async def assignees(self, plan_id: str) -> list[str]:
        query = (
            sa.select(plan_assignees.c.unit_code)
            .where(plan_assignees.c.plan_id == plan_id)
            .order_by(plan_assignees.c.unit_code)
        )
        return list((await self.session.scalars(query)).all())

    async def change_assignees(
        self, plan_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        known = set(await self.assignees(plan_id))
        if remove:
            await self.session.execute(
                plan_assignees.delete().where(
                    plan_assignees.c.plan_id == plan_id, plan_assignees.c.unit_code.in_(remove)
                )
            )
        new = [code for code in dict.fromkeys(add) if code not in known or code in remove]
        if new:
            await self.session.execute(
                plan_assignees.insert(), [{"plan_id": plan_id, "unit_code": c} for c in new]
            )


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, subscription: Subscription) -> None:
        await self.session.execute(
            subscriptions.insert().values(
                id=subscription.id,
                unit_code=subscription.unit_code,
                include_subtree=subscription.include_subtree,
                event_types=list(subscription.event_types),
                channel=subscription.channel.value,
                address=subscription.address,
                secret=subscription.secret,
                digest=subscription.digest,
                active=subscription.active,
                created_at=subscription.created_at,
                signature_scheme=subscription.signature_scheme.value,
            )
        )

    async def get(self, subscription_id: str) -> Subscription | None:
        row = (
            await self.session.execute(
                sa.select(subscriptions).where(subscriptions.c.id == subscription_id)
            )
        ).first()
        return _to_subscription(row) if row else None

    async def find(self, unit_code: str | None = None) -> list[Subscription]:
        query = sa.select(subscriptions).order_by(subscriptions.c.created_at, subscriptions.c.id)
        if unit_code:
            query = query.where(subscriptions.c.unit_code == unit_code)
        return [_to_subscription(row) for row in await self.session.execute(query)]

    async def active_on_path(self, unit_path: Sequence[str]) -> list[Subscription]:
        """Active subscriptions to a unit on the path: the candidates for an event there."""
        query = (
            sa.select(subscriptions)
            .where(subscriptions.c.active.is_(True), subscriptions.c.unit_code.in_(unit_path))
            .order_by(subscriptions.c.created_at, subscriptions.c.id)
        )
        return [_to_subscription(row) for row in await self.session.execute(query)]

    async def change_signature(
        self, subscription_id: str, secret: str, scheme: SignatureScheme
    ) -> bool:
        result = await self.session.execute(
            subscriptions.update()
            .where(subscriptions.c.id == subscription_id)
            .values(secret=secret, signature_scheme=scheme.value)
        )
        return bool(getattr(result, "rowcount", 0))

    async def signing(self, ids: Collection[str]) -> dict[str, tuple[str, SignatureScheme]]:
        """Each webhook subscription's HMAC secret and signature scheme (those with one)."""
        columns = [subscriptions.c.id, subscriptions.c.secret, subscriptions.c.signature_scheme]
        rows = await self.session.execute(sa.select(*columns).where(subscriptions.c.id.in_(ids)))
        return {
            row.id: (str(row.secret), SignatureScheme(row.signature_scheme))
            for row in rows
            if row.secret
        }

    async def deactivate(self, subscription_id: str) -> bool:
        result = await self.session.execute(
            subscriptions.update().where(subscriptions.c.id == subscription_id).values(active=False)
        )
        return bool(getattr(result, "rowcount", 0))


def _to_subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        unit_code=row.unit_code,
        include_subtree=row.include_subtree,
        event_types=tuple(row.event_types),
        channel=Channel(row.channel),
        address=row.address,
        secret=row.secret,
        digest=row.digest,
        active=row.active,
        created_at=row.created_at,
        signature_scheme=SignatureScheme(row.signature_scheme),
    )


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
        return _to_delivery(row) if row else None

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
            .where(deliveries.c.key.in_(keys), due_now(now))
            .values(status=DeliveryStatus.SENDING.value, leased_until=leased_until)
            .returning(*deliveries.c)
        )
        return [_to_delivery(row) for row in await self.session.execute(statement)]

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
        skip), pending webhooks (but to hosts to skip), and attempts whose lease ran out."""
        rows: list[Any] = []
        for query in _due_queries(now, limit, relay, skip_destinations, skip_keys):
            rows += (await self.session.execute(query)).all()
        rows.sort(key=lambda row: (row.due_at, row.key))
        return rows

    async def search(self, where: DeliveryFilter) -> list[Delivery]:
        query = sa.select(deliveries).order_by(deliveries.c.created_at.desc(), deliveries.c.key)
        if where.unit_code:
            query = query.where(_json_text_contains(deliveries.c.unit_path, where.unit_code))
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
        found = [_to_delivery(row) for row in await self.session.execute(query.limit(where.limit))]
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
        return [_to_delivery(row) for row in await self.session.execute(query)]

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
    return {
        "key": message.key,
        "event_id": message.event_id,
        "event_type": message.event_type,
        "channel": message.channel.value,
        "recipient": message.recipient,
        "unit_code": unit_code,
        "unit_path": message.unit_path,
        "correlation_id": message.correlation_id,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "payload": message.payload,
        "subscription_id": message.subscription_id,
        "destination": message.destination or _destination(message),
        "digest": message.digest,
        "status": status.value,
        "next_attempt_at": now,
        "created_at": now,
    }


def _to_delivery(row: Any) -> Delivery:
    return Delivery(
        key=row.key,
        event_id=row.event_id,
        event_type=row.event_type,
        channel=Channel(row.channel),
        recipient=row.recipient,
        unit_code=row.unit_code,
        unit_path=list(row.unit_path),
        correlation_id=row.correlation_id,
        subject=row.subject,
        text=row.text,
        html=row.html,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        payload=row.payload,
        subscription_id=row.subscription_id,
        destination=row.destination,
        digest=row.digest,
        digested_in=row.digested_in,
        next_attempt_at=row.next_attempt_at,
        attempts_before_redelivery=row.attempts_before_redelivery,
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
    skip_keys: Collection[str],
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
        if skip_keys:
            query = query.where(c.key.not_in(list(skip_keys)))
        # Replicas on PostgreSQL pick disjoint batches instead of queueing on each other's rows.
        queries.append(query.with_for_update(skip_locked=True))
    return queries
