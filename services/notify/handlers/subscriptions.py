"""Subscriptions: a unit, or its whole subtree, × event types × channel × address.

People subscribe an e-mail address (one message per event, or a daily digest); integrators
subscribe a webhook, which receives the CloudEvent itself, signed with the subscription's
secret by the sender (:mod:`services.notify.handlers.delivery`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import urlsplit

from services.notify.adapters.contacts import ContactRepository
from services.notify.adapters.subscriptions import SubscriptionRepository
from services.notify.adapters.webhook import standard_key
from services.notify.domain.model import Message, SignatureScheme, Subscription, host_allowed
from services.notify.domain.rules import SUBSCRIBABLE, SUBSCRIBER_TEMPLATES, event_type_of
from services.notify.handlers.messages import message_about
from shared.auth import Principal
from shared.bus.envelope import SPECVERSION, Envelope
from shared.errors import Missing, Refused
from shared.events import Channel, Event
from shared.security import audit
from shared.uow import UnitOfWork

MIN_SECRET_LENGTH = 16
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class NewSubscription:
    unit_code: str
    include_subtree: bool
    event_types: Sequence[str]
    """CloudEvents types or short names (``report.submitted``)."""
    channel: Channel
    address: str
    secret: str | None = None
    digest: bool = False
    signature_scheme: SignatureScheme = SignatureScheme.STANDARD


async def subscribe(
    command: NewSubscription,
    uow: UnitOfWork,
    *,
    caller: Principal,
    allowlist: Sequence[str],
    resolver: Resolver = system_resolver,
) -> Subscription:
    await require_own_unit(uow, caller, command.unit_code, "subscribe")
    errors = _event_type_errors(command) + _channel_errors(command)
    if command.channel is Channel.WEBHOOK and not errors:
        errors += await _destination_errors(command.address, allowlist, resolver)
    if errors:
        raise Refused("the subscription is not valid", field=errors[0]["field"], errors=errors)
    subscription = Subscription(
        id=str(uuid.uuid4()),
        unit_code=command.unit_code,
        include_subtree=command.include_subtree,
        event_types=tuple(dict.fromkeys(event_type_of(t) for t in command.event_types)),
        channel=command.channel,
        address=command.address.strip(),
        secret=command.secret,
        digest=command.digest,
        active=True,
        created_at=uow.clock.now(),
        signature_scheme=command.signature_scheme,
    )
    await uow.repository(SubscriptionRepository).add(subscription)
    _changed(uow)
    audit(uow, caller, "subscription.created", f"{subscription.id} {subscription.unit_code}")
    await uow.commit()
    return subscription


async def use_standard_signature(
    subscription_id: str, secret: str, uow: UnitOfWork, *, caller: Principal
) -> Subscription:
    """Move a webhook subscription to Standard Webhooks signatures with a new ``whsec_``
    secret (the way off the legacy scheme); the next attempt of every delivery is signed
    so, a retry of one signed before included."""
    repository = uow.repository(SubscriptionRepository)
    existing = await repository.get(subscription_id)
    if existing is None:
        raise Missing(f"no subscription {subscription_id}")
    await require_own_unit(uow, caller, existing.unit_code, "change the signature of")
    if existing.channel is not Channel.WEBHOOK:
        raise Refused("only a webhook subscription is signed", field="subscription_id")
    errors = _secret_errors(secret, SignatureScheme.STANDARD)
    if errors:
        raise Refused("the secret is not valid", field="secret", errors=errors)
    await repository.change_signature(subscription_id, secret, SignatureScheme.STANDARD)
    _changed(uow)
    audit(uow, caller, "subscription.signature", f"{subscription_id} standard")
    await uow.commit()
    return dataclasses.replace(existing, secret=secret, signature_scheme=SignatureScheme.STANDARD)


async def unsubscribe(subscription_id: str, uow: UnitOfWork, *, caller: Principal) -> Subscription:
    """Deactivate: kept for the delivery log, which names it, but matches nothing more."""
    repository = uow.repository(SubscriptionRepository)
    existing = await repository.get(subscription_id)
    if existing is None:
        raise Missing(f"no subscription {subscription_id}")
    await require_own_unit(uow, caller, existing.unit_code, "unsubscribe")
    await repository.deactivate(subscription_id)
    _changed(uow)
    audit(uow, caller, "subscription.deactivated", f"{subscription_id} {existing.unit_code}")
    await uow.commit()
    return dataclasses.replace(existing, active=False)


async def require_own_unit(uow: UnitOfWork, caller: Principal, unit_code: str, doing: str) -> None:
    """A token acts for its own unit; an administrator for any unit of its subtree (the path
    comes from the registry's events; a unit not heard of yet is only its own)."""
    contact = await uow.repository(ContactRepository).get(unit_code)
    path = contact.unit_path if contact else [unit_code]
    caller.require_unit(unit_code, doing, path)


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _event_type_errors(command: NewSubscription) -> list[dict[str, str]]:
    if not command.event_types:
        return [_error("event_types", "name at least one event type, e.g. report.submitted")]
    errors = []
    for name in command.event_types:
        try:
            event_type = event_type_of(name)
        except ValueError as exc:
            errors.append(_error("event_types", str(exc)))
            continue
        if event_type not in SUBSCRIBABLE:
            errors.append(_error("event_types", f"{name!r} is not offered to subscribers"))
        elif command.channel is Channel.EMAIL and event_type not in SUBSCRIBER_TEMPLATES:
            errors.append(_error("event_types", f"{name!r} has no e-mail; use a webhook"))
    return errors


def _channel_errors(command: NewSubscription) -> list[dict[str, str]]:
    if command.channel is Channel.EMAIL:
        errors = []
        if not _EMAIL.match(command.address.strip()):
            errors.append(_error("address", "not an e-mail address"))
        if command.secret is not None:
            errors.append(_error("secret", "a secret signs webhooks only"))
        return errors
    errors = _secret_errors(command.secret, command.signature_scheme)
    if command.digest:
        errors.append(_error("digest", "a digest is an e-mail; a webhook gets every event"))
    return errors


def _secret_errors(secret: str | None, scheme: SignatureScheme) -> list[dict[str, str]]:
    if scheme is SignatureScheme.LEGACY:
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            return [_error("secret", f"a webhook needs a secret of {MIN_SECRET_LENGTH}+ chars")]
        return []
    try:
        standard_key(secret or "")
    except ValueError as exc:
        hint = "whsec_ followed by base64 of 24 to 64 random bytes"
        return [_error("secret", f"{exc} (a Standard Webhooks secret: {hint})")]
    return []


async def _destination_errors(
    address: str, allowlist: Sequence[str], resolver: Resolver
) -> list[dict[str, str]]:
    """The URL is http(s) with a host, and the host is allowed now; the sender checks the
    allowlist again on every attempt, against the address it connects to."""
    try:
        parts = urlsplit(address.strip())
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return [_error("address", "not a URL")]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [_error("address", "a webhook is an http:// or https:// URL with a host")]
    if parts.username or parts.password:
        return [_error("address", "a webhook URL must not carry credentials")]
    if host_allowed(parts.hostname, allowlist):
        return []
    # A name not listed may still resolve into a listed network.
    resolved = await _resolve(resolver, parts.hostname, port) if allowlist else []
    if resolved and host_allowed(parts.hostname, allowlist, resolved):
        return []
    return [_error("address", f"host {parts.hostname!r} is not on the webhook allowlist")]


async def _resolve(resolver: Resolver, host: str, port: int) -> list[str]:
    try:
        return await resolver(host, port)
    except OSError:
        return []


SUBSCRIPTIONS_CACHE_SECONDS = 2.0
"""How long notify trusts the active subscriptions it read (see :class:`ActiveSubscriptions`)."""
SUBSCRIPTIONS_CACHE_SIZE = 2_000
"""Past this many active subscriptions none are kept: each event asks for its path's."""


class ActiveSubscriptions:
    """The active subscriptions, read once and kept for :data:`SUBSCRIPTIONS_CACHE_SECONDS`
    by one consumer process: without it every event handled began with a query for the
    subscriptions on its unit's path, though they change a few times a day.

    A subscription created, changed or ended by this process (any runtime in it) empties
    every cache at once and again once its transaction has committed, and a read that began
    before that commit is not kept (:attr:`generation`), so this process matches the
    events it handles after the change against it. A change made by another replica of
    notify (or written to the database by hand) is seen within
    :data:`SUBSCRIPTIONS_CACHE_SECONDS`: events handled meanwhile are matched as they
    would have been just before it."""

    generation = 0
    """Bumped by each subscription change handled in this process."""

    def __init__(
        self, seconds: float = SUBSCRIPTIONS_CACHE_SECONDS, size: int = SUBSCRIPTIONS_CACHE_SIZE
    ) -> None:
        self.seconds = seconds
        self.size = size
        self._kept: tuple[float, int, list[Subscription]] | None = None

    async def matching(
        self, uow: UnitOfWork, event_type: str, unit_path: Sequence[str]
    ) -> list[Subscription]:
        """Active subscriptions an event reaches: its unit's, and its ancestors' subtree
        ones (in the order they were made)."""
        candidates = self._fresh()
        if candidates is None:
            generation = ActiveSubscriptions.generation
            repository = uow.repository(SubscriptionRepository)
            every = await repository.active(self.size + 1)
            if len(every) > self.size:
                candidates = await repository.active_on_path(unit_path)
            else:
                candidates = every
                if generation == ActiveSubscriptions.generation:
                    self._kept = (time.monotonic() + self.seconds, generation, every)
        return [s for s in candidates if s.matches(event_type, unit_path)]

    def _fresh(self) -> list[Subscription] | None:
        if self._kept is None:
            return None
        until, generation, kept = self._kept
        if generation != ActiveSubscriptions.generation or time.monotonic() >= until:
            self._kept = None
            return None
        return kept

    @staticmethod
    def invalidate() -> None:
        ActiveSubscriptions.generation += 1


def _changed(uow: UnitOfWork) -> None:
    """A subscription changes in this transaction: no cache serves the old state."""
    ActiveSubscriptions.invalidate()
    uow.after_commit(ActiveSubscriptions.invalidate)


def cloudevent_json(event: Event, envelope: Envelope) -> str:
    """The event in CloudEvents structured mode: the exact body a webhook receives."""
    return json.dumps(
        {
            "specversion": SPECVERSION,
            "id": envelope.id,
            "source": envelope.source,
            "type": envelope.type,
            "time": envelope.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "subject": envelope.subject,
            "datacontenttype": "application/json",
            "correlationid": envelope.correlation_id,
            "data": event.model_dump(mode="json"),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def webhook_message(event: Event, envelope: Envelope, subscription: Subscription) -> Message:
    return message_about(
        event,
        envelope,
        Channel.WEBHOOK,
        subscription.address,
        subject=f"{envelope.type} {'.'.join(event.unit_path)}",
        text="",
        html="",
        payload=cloudevent_json(event, envelope),
        subscription_id=subscription.id,
    )
