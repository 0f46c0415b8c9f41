"""Who gets what, and the delivery of each message exactly once. Pure, no I/O."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from shared.events import Channel, ReportKind

REPORT_KIND_LABELS: dict[ReportKind, str] = {
    ReportKind.SIX_MONTH: "Báo cáo 6 tháng",
    ReportKind.ANNUAL: "Báo cáo năm",
    ReportKind.THEMATIC: "Báo cáo chuyên đề",
    ReportKind.AD_HOC: "Báo cáo đột xuất",
}


class SignatureScheme(StrEnum):
    """How a webhook subscription's deliveries are signed."""

    STANDARD = "standard"
    """Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``
    (``v1,<base64 HMAC-SHA256>``) with a ``whsec_`` secret; every new subscription."""
    LEGACY = "legacy"
    """``X-QCDC-Signature: t=…,v1=<hex>``: subscriptions made before migration 0008."""


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"
    """Kept for the recipient's daily digest; the sender never takes it. The digest job
    marks it ``sent`` once it is part of a digest (``digested_in``)."""
    WITHDRAWN = "withdrawn"
    """A reminder or urging e-mail not sent (nor digested): before it went out, its
    obligation stopped awaiting a report (submitted, waived, plan closed, deadline moved)."""


@dataclass(frozen=True)
class Contact:
    """A unit's contacts, as the unit registry's events last described them."""

    unit_code: str
    name: str
    unit_path: list[str]
    focal_email: str | None
    head_email: str | None
    webhook_url: str | None = None
    kind: str = ""
    tags: tuple[str, ...] = ()
    """Roles of the unit, e.g. ``home_affairs``: rules address a role, not a unit code."""
    parent_code: str | None = None
    reports_to_code: str | None = None

    def email(self, person: str) -> str | None:
        """The address of ``focal`` (the focal person) or ``head`` (the unit's head)."""
        return self.head_email if person == "head" else self.focal_email


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
    digested_in: str | None = None
    next_attempt_at: datetime | None = None
    attempts_before_redelivery: int = 0
    """Attempts made before an operator's last redelivery: a redelivery gets a fresh
    budget of attempts, while ``attempts`` keeps counting them all."""

    @property
    def attempts_this_round(self) -> int:
        return self.attempts - self.attempts_before_redelivery


@dataclass(frozen=True)
class Subscription:
    """A unit, or its whole subtree, × event types × channel × address."""

    id: str
    unit_code: str
    include_subtree: bool
    event_types: tuple[str, ...]
    """CloudEvents types, e.g. ``qcdc.report.submitted.v1``."""
    channel: Channel
    address: str
    secret: str | None
    digest: bool
    active: bool
    created_at: datetime
    signature_scheme: SignatureScheme = SignatureScheme.STANDARD

    def matches(self, event_type: str, unit_path: Sequence[str]) -> bool:
        """The event is about the subscribed unit, or (subtree) a unit below it."""
        if not self.active or event_type not in self.event_types:
            return False
        if self.include_subtree:
            return self.unit_code in unit_path
        return bool(unit_path) and unit_path[-1] == self.unit_code


DIGEST_EVENT_TYPE = "qcdc.notify.digest"


def digest_event_id(day: date) -> str:
    """The digest of ``day`` stands in for an event: with the recipient and the channel it
    gives the digest's delivery key, so one recipient gets one digest per day."""
    return f"digest-{day.isoformat()}"


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Allowlist:
    """Where webhooks may go: exact host names, ``*.suffix`` names, and networks (CIDR)."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if entry.startswith("*."):
                    suffixes.append(entry[1:])
                else:
                    names.add(entry)
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    @property
    def empty(self) -> bool:
        return not (self.names or self.suffixes or self.networks)

    def allows_name(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def allows_address(self, address: IPAddress) -> bool:
        address = _unmapped(address)
        return any(address.version == n.version and address in n for n in self.networks)


def host_allowed(host: str, allowlist: Sequence[str], resolved: Sequence[str] = ()) -> bool:
    """Whether webhooks may go to ``host``, by the same rule the sender applies: an entry is
    a host name (exact, or ``*.suffix`` for subdomains), trusted whatever it resolves to, or
    a network in CIDR notation (a bare address is a /32 or /128). An IP literal, or a name
    not listed (with the addresses it ``resolved`` to), must lie in a listed network. An
    empty list allows nothing."""
    host = host.strip("[]").lower().rstrip(".")
    rules = Allowlist.parse(allowlist)
    literal = literal_address(host)
    if literal is None and rules.allows_name(host):
        return True
    addresses = [literal] if literal is not None else [literal_address(a) for a in resolved]
    return bool(addresses) and all(a is not None and rules.allows_address(a) for a in addresses)


def literal_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _unmapped(address: IPAddress) -> IPAddress:
    """``::ffff:10.0.0.1`` is 10.0.0.1: IPv4-mapped IPv6 addresses are checked as IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
