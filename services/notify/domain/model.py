"""Who gets what, and the delivery of each message exactly once. Pure, no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.events import Channel, ReportKind

REPORT_KIND_LABELS: dict[ReportKind, str] = {
    ReportKind.SIX_MONTH: "Báo cáo 6 tháng",
    ReportKind.ANNUAL: "Báo cáo năm",
    ReportKind.THEMATIC: "Báo cáo chuyên đề",
    ReportKind.AD_HOC: "Báo cáo đột xuất",
}


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Contact:
    """A unit's contacts, as the unit registry's events last described them."""

    unit_code: str
    name: str
    unit_path: list[str]
    focal_email: str | None
    head_email: str | None
    webhook_url: str | None = None


@dataclass(frozen=True)
class Message:
    """A rendered message to one recipient on one channel, caused by one event."""

    event_id: str
    event_type: str
    channel: Channel
    recipient: str
    unit_path: list[str]
    correlation_id: str
    subject: str
    text: str
    html: str
    payload: str | None = None
    """For webhooks: the CloudEvent in structured JSON, the exact body POSTed."""
    subscription_id: str | None = None
    destination: str = ""
    """Where it goes (mail domain or webhook host): the unit of delivery concurrency."""
    digest: bool = False
    """Held for the recipient's daily digest instead of being sent on its own."""

    @property
    def key(self) -> str:
        return delivery_key(self.event_id, self.recipient, self.channel)


def delivery_key(event_id: str, recipient: str, channel: Channel) -> str:
    """Deterministic: the same event, recipient and channel always give the same key, so a
    redelivered event or a restart finds the delivery already recorded."""
    digest = hashlib.sha256(f"{event_id}|{recipient.lower()}|{channel.value}".encode())
    return digest.hexdigest()[:40]


def retry_delay(attempts: int) -> timedelta:
    """After ``attempts`` failed attempts: 2, 4, 8 … seconds, at most 10 minutes."""
    return timedelta(seconds=min(600, 2**attempts))


def lease_expired(leased_until: datetime | None, now: datetime) -> bool:
    return leased_until is None or leased_until <= now


@dataclass(frozen=True)
class Delivery:
    """One message's delivery record: what to send, and what happened so far."""

    key: str
    event_id: str
    event_type: str
    channel: Channel
    recipient: str
    unit_code: str
    unit_path: list[str]
    correlation_id: str
    subject: str
    text: str
    html: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: str | None = None
    subscription_id: str | None = None
    destination: str = ""
    digest: bool = False
