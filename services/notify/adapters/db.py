"""Tables and repositories of the notify service."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.domain.model import Contact, Delivery, DeliveryStatus, Message
from shared.db import UTCDateTime, messaging_tables
from shared.events import Channel

metadata = sa.MetaData()
messaging = messaging_tables(metadata)

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
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
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
)


class ContactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, unit_code: str) -> Contact | None:
        row = (
            await self.session.execute(sa.select(contacts).where(contacts.c.unit_code == unit_code))
        ).first()
        if row is None:
            return None
        return Contact(
            unit_code=row.unit_code,
            name=row.name,
            unit_path=list(row.unit_path),
            focal_email=row.focal_email,
            head_email=row.head_email,
            webhook_url=row.webhook_url,
        )

    async def save(self, contact: Contact, now: datetime) -> None:
        values = {
            "name": contact.name,
            "unit_path": contact.unit_path,
            "focal_email": contact.focal_email,
            "head_email": contact.head_email,
            "webhook_url": contact.webhook_url,
            "updated_at": now,
        }
        updated = await self.session.execute(
            contacts.update().where(contacts.c.unit_code == contact.unit_code).values(**values)
        )
        if not getattr(updated, "rowcount", 0):
            await self.session.execute(
                contacts.insert().values(unit_code=contact.unit_code, **values)
            )


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_if_missing(self, message: Message, unit_code: str, now: datetime) -> bool:
        exists = await self.session.scalar(
            sa.select(deliveries.c.key).where(deliveries.c.key == message.key)
        )
        if exists:
            return False
        await self.session.execute(
            deliveries.insert().values(
                key=message.key,
                event_id=message.event_id,
                event_type=message.event_type,
                channel=message.channel.value,
                recipient=message.recipient,
                unit_code=unit_code,
                unit_path=message.unit_path,
                correlation_id=message.correlation_id,
                subject=message.subject,
                text=message.text,
                html=message.html,
                payload=message.payload,
                subscription_id=message.subscription_id,
                destination=message.destination or _destination(message),
                digest=message.digest,
                status=DeliveryStatus.PENDING.value,
                next_attempt_at=now,
                created_at=now,
            )
        )
        return True

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Deliveries to attempt now: pending ones whose time has come, and ones left in
        'sending' by a worker whose lease ran out (it crashed mid-send)."""
        query = (
            sa.select(deliveries.c.key)
            .where(
                sa.or_(
                    sa.and_(
                        deliveries.c.status == DeliveryStatus.PENDING.value,
                        deliveries.c.next_attempt_at <= now,
                    ),
                    sa.and_(
                        deliveries.c.status == DeliveryStatus.SENDING.value,
                        deliveries.c.leased_until <= now,
                    ),
                )
            )
            .order_by(deliveries.c.created_at, deliveries.c.key)
            .limit(limit)
        )
        return list((await self.session.scalars(query)).all())

    async def get(self, key: str) -> Delivery | None:
        row = (
            await self.session.execute(sa.select(deliveries).where(deliveries.c.key == key))
        ).first()
        return _to_delivery(row) if row else None

    async def update(self, key: str, **values: Any) -> None:
        await self.session.execute(
            deliveries.update().where(deliveries.c.key == key).values(**values)
        )

    async def claim(self, key: str, leased_until: datetime, now: datetime) -> bool:
        """Take the delivery for one attempt, unless another worker holds it."""
        result = await self.session.execute(
            deliveries.update()
            .where(
                deliveries.c.key == key,
                sa.or_(
                    deliveries.c.status == DeliveryStatus.PENDING.value,
                    sa.and_(
                        deliveries.c.status == DeliveryStatus.SENDING.value,
                        deliveries.c.leased_until <= now,
                    ),
                ),
            )
            .values(status=DeliveryStatus.SENDING.value, leased_until=leased_until)
        )
        return bool(getattr(result, "rowcount", 0))

    async def search(
        self,
        *,
        unit_code: str | None,
        event_type: str | None,
        status: str | None,
        since: datetime | None,
        limit: int,
    ) -> list[Delivery]:
        query = sa.select(deliveries).order_by(deliveries.c.created_at.desc()).limit(limit)
        if unit_code:
            query = query.where(deliveries.c.unit_code == unit_code)
        if event_type:
            query = query.where(deliveries.c.event_type == event_type)
        if status:
            query = query.where(deliveries.c.status == status)
        if since:
            query = query.where(deliveries.c.created_at >= since)
        return [_to_delivery(row) for row in (await self.session.execute(query)).all()]


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
    )


def _destination(message: Message) -> str:
    """Mail domain or webhook host: deliveries to one destination share a concurrency limit."""
    if message.channel is Channel.EMAIL:
        return message.recipient.rsplit("@", 1)[-1].lower()
    return urlsplit(message.recipient).hostname or ""
