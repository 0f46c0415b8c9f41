"""Sending webhooks: the CloudEvent POSTed verbatim, signed, to allowlisted destinations only.

The signature (see docs/notifications.md, "Webhooks") follows the Standard Webhooks
specification, so the verifiers published for many languages (``standardwebhooks`` on PyPI,
npm, …) check it::

    webhook-id: <delivery key>          (the same on every attempt)
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>

where the key is the base64 text after ``whsec_`` in the subscription's secret. Subscriptions
made before migration 0008 keep the earlier, Stripe-style scheme until moved over::

    X-QCDC-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

Allowlist and DNS rebinding: the host is resolved once, every resolved address is checked,
and the request goes to the checked address itself (``Host`` header and TLS SNI keep the
name), so a second DNS answer cannot point the connection somewhere else. Redirects are not
followed and proxies from the environment are ignored, for the same reason.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from services.notify.domain.model import Allowlist as Allowlist  # the sender's argument
from services.notify.domain.model import IPAddress, SignatureScheme, literal_address

SIGNATURE_HEADER = "X-QCDC-Signature"
STANDARD_SECRET_PREFIX = "whsec_"
STANDARD_KEY_BYTES = (24, 64)  # the specification's advice for the key's length
DELIVERY_HEADER = "X-QCDC-Delivery"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
MAX_RETRY_AFTER = timedelta(hours=1)
ERROR_BODY_BYTES = 300
RETRYABLE_STATUSES = frozenset({408, 429})

Resolver = Callable[[str, int], Awaitable[list[str]]]


class PermanentFailure(Exception):
    """Retrying cannot help (refused destination, 4xx, no secret): fail the delivery now."""


class RetryableFailure(Exception):
    """Try again later; ``retry_after`` is the receiver's own wish (``Retry-After``), if any."""

    def __init__(self, reason: str, retry_after: timedelta | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


# --- signature --------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-QCDC-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret, ``whsec_<base64 of 24 to 64 bytes>``;
    ValueError saying what is wrong otherwise."""
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        raise ValueError(f"a standard webhook secret starts with {STANDARD_SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret.removeprefix(STANDARD_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the text after whsec_ is not base64") from exc
    low, high = STANDARD_KEY_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"the key after whsec_ must be {low} to {high} bytes, not {len(key)}")
    return key


def new_standard_secret() -> str:
    """A fresh ``whsec_`` secret of 32 random bytes."""
    return STANDARD_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign_standard(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256(key, id.timestamp.body)>``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    scheme: SignatureScheme, secret: str, delivery_key: str, body: bytes, timestamp: int
) -> dict[str, str]:
    if scheme is SignatureScheme.LEGACY:
        return {SIGNATURE_HEADER: sign(secret, body, timestamp)}
    return {
        "webhook-id": delivery_key,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(secret, delivery_key, timestamp, body),
    }


# --- Retry-After --------------------------------------------------------------------------


def parse_retry_after(
    value: str | None, now: datetime, cap: timedelta = MAX_RETRY_AFTER
) -> timedelta | None:
    """``Retry-After`` as a delay from ``now``: delta-seconds or an HTTP date, clamped to
    [0, cap] so a receiver cannot park a delivery for ever; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=min(int(value), int(cap.total_seconds())))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), min(when - now, cap))


# --- resolving (the allowlist is the domain's: services.notify.domain.model) -------------


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """A checked destination: the URL with the address to connect to in place of the host."""

    url: httpx.URL
    host_header: str
    sni_hostname: str | None
    address: IPAddress


async def resolve_target(url: str, allowlist: Allowlist, resolver: Resolver) -> Target:
    """Resolve the URL's host once and check it; raise PermanentFailure when refused."""
    parsed = _parse_url(url)
    if allowlist.empty:
        raise PermanentFailure("webhooks are disabled: QCDC_WEBHOOK_ALLOWLIST is empty")
    host = parsed.host
    literal = literal_address(host)
    name_allowed = literal is None and allowlist.allows_name(host)
    if not (name_allowed or allowlist.networks):
        raise PermanentFailure(
            f"webhook host {host!r} is not on the allowlist (QCDC_WEBHOOK_ALLOWLIST)"
        )
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = [literal] if literal else await _resolve(resolver, host, port)
    if not name_allowed:  # a name the operator listed is trusted whatever it resolves to
        refused = [str(a) for a in addresses if not allowlist.allows_address(a)]
        if refused:
            raise PermanentFailure(
                f"webhook host {host!r} resolves to {', '.join(refused)}, "
                "not on the allowlist (QCDC_WEBHOOK_ALLOWLIST)"
            )
    address = addresses[0]
    return Target(
        url=parsed.copy_with(host=str(address)),
        host_header=parsed.netloc.decode("ascii"),
        sni_hostname=host if parsed.scheme == "https" and literal is None else None,
        address=address,
    )


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise PermanentFailure(f"invalid webhook URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise PermanentFailure(f"webhook URL must be http(s)://host/…, got {url!r}")
    if parsed.userinfo:
        raise PermanentFailure("webhook URL must not carry credentials")
    return parsed


async def _resolve(resolver: Resolver, host: str, port: int) -> list[IPAddress]:
    try:
        found = await resolver(host, port)
    except OSError as exc:  # DNS can fail for a while; the name may come back
        raise RetryableFailure(f"cannot resolve webhook host {host!r}: {exc}") from exc
    addresses = [a for a in (literal_address(r.split("%", 1)[0]) for r in found) if a]
    if not addresses:
        raise RetryableFailure(f"webhook host {host!r} has no address")
    return addresses


# --- sending ------------------------------------------------------------------------------


class WebhookSender:
    """POSTs signed CloudEvents. One instance (one connection pool) per worker."""

    def __init__(
        self,
        allowlist: Allowlist,
        *,
        timeout: float,
        max_connections: int = 100,
        resolver: Resolver = system_resolver,
        unix_time: Callable[[], float] = time.time,
    ) -> None:
        self.allowlist = allowlist
        self.timeout = timeout
        self.resolver = resolver
        self.unix_time = unix_time
        self.client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,  # a redirect could lead past the allowlist
            trust_env=False,  # an environment proxy would connect elsewhere than checked
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(
        self,
        *,
        url: str,
        body: str,
        secret: str,
        delivery_key: str,
        scheme: SignatureScheme = SignatureScheme.STANDARD,
    ) -> None:
        """Deliver once; return on 2xx, else raise PermanentFailure or RetryableFailure."""
        target = await resolve_target(url, self.allowlist, self.resolver)
        content = body.encode()
        try:
            signature = signature_headers(
                scheme, secret, delivery_key, content, int(self.unix_time())
            )
        except ValueError as exc:  # a secret that cannot sign will never sign
            raise PermanentFailure(f"the subscription's secret cannot sign: {exc}") from exc
        headers = {
            "Host": target.host_header,
            "Content-Type": CONTENT_TYPE,
            **signature,
            DELIVERY_HEADER: delivery_key,
            "User-Agent": "qcdc-notify",
        }
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
        try:
            # httpx's timeout is per read or write; this bounds the whole exchange, so a
            # receiver trickling bytes cannot hold a slot (or outlive the lease) for long.
            async with asyncio.timeout(self.timeout):
                await self._post(target, content, headers, extensions)
        except TimeoutError as exc:
            raise RetryableFailure(f"timed out after {self.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise RetryableFailure(f"{type(exc).__name__}: {exc}") from exc

    async def _post(
        self,
        target: Target,
        content: bytes,
        headers: dict[str, str],
        extensions: dict[str, str],
    ) -> None:
        request = self.client.build_request(
            "POST", target.url, content=content, headers=headers, extensions=extensions
        )
        response = await self.client.send(request, stream=True)
        try:
            if response.is_success:
                return
            excerpt = await _excerpt(response)
        finally:
            await response.aclose()
        raise_for_status(response, excerpt, datetime.now(UTC))


async def _excerpt(response: httpx.Response) -> str:
    """The start of the body, for last_error; never the whole of a large answer."""
    chunks = bytearray()
    async for chunk in response.aiter_bytes():
        chunks.extend(chunk)
        if len(chunks) >= ERROR_BODY_BYTES:
            break
    return chunks[:ERROR_BODY_BYTES].decode("utf-8", "replace").strip()


def raise_for_status(response: httpx.Response, excerpt: str, now: datetime) -> None:
    """Classify a non-2xx answer: 408, 429 and 5xx are worth retrying, the rest is not."""
    status = response.status_code
    error = f"HTTP {status} {response.reason_phrase}".rstrip()
    if excerpt:
        error = f"{error}: {excerpt}"
    if status in RETRYABLE_STATUSES or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        raise RetryableFailure(error, retry_after)
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        raise PermanentFailure(f"{error} (redirects are not followed; Location: {location})")
    raise PermanentFailure(error)
