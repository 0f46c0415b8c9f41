"""CloudEvents 1.0 over NATS, binary mode: attributes as ``ce-`` headers, the event as JSON.

Headers on every message:
``ce-specversion`` (1.0), ``ce-id`` (event id), ``ce-source`` (``/qcdc/<service>``),
``ce-type`` (``qcdc.<aggregate>.<event>.v1``), ``ce-time`` (RFC 3339, UTC),
``ce-subject`` (the unit path, dot-separated), ``ce-correlationid`` (carried from the HTTP
request that started the chain), ``content-type`` (application/json) and ``Nats-Msg-Id``
(equal to ``ce-id``, so JetStream drops a re-published event). Optional: ``traceparent``
and ``tracestate``, the W3C trace context of the CloudEvents distributed-tracing
extension, on events recorded while a trace was being recorded (:mod:`shared.tracing`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from shared.events import BY_TYPE, Event

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
CORRELATION_HEADER = "ce-correlationid"
REQUIRED_HEADERS = ("ce-specversion", "ce-id", "ce-source", "ce-type")
TRACE_HEADERS = ("traceparent", "tracestate")
"""The CloudEvents distributed-tracing extension's attributes, as W3C Trace Context names."""


class UnknownEventType(Exception):
    """A well-formed CloudEvent of a type this code does not know: a newer publisher's
    addition within v1. Consumers skip it rather than dead-letter it."""


class UndeliverableEvent(Exception):
    """A message that can never be handled; ``reason`` says why. It goes to the dead letters."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Envelope:
    id: str
    source: str
    type: str
    time: datetime
    subject: str
    correlation_id: str
    nats_subject: str
    traceparent: str | None = None


_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)
"""The version (4) and variant (RFC 4122) bits of a random UUID."""
_NOT_RANDOM = (0xF000 << 64) | (0xC000 << 48)


def new_event_id() -> str:
    """A random (version 4) UUID, as ``str(uuid.uuid4())`` writes it, in a third of its
    time (the deadline clock numbers a hundred thousand events in a busy pass)."""
    bits = (int.from_bytes(os.urandom(16)) & ~_NOT_RANDOM) | _VERSION_4
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@functools.lru_cache(maxsize=64)
def _ce_time(at: datetime) -> str:
    # A batch's events share their instant: formatted once.
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def headers(
    *,
    event_id: str,
    source: str,
    ce_type: str,
    unit_path: Sequence[str],
    correlation_id: str,
    time: datetime,
    trace: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The CloudEvents headers of an event (see the module's documentation)."""
    found = {
        "ce-specversion": SPECVERSION,
        "ce-id": event_id,
        "ce-source": source,
        "ce-type": ce_type,
        "ce-time": _ce_time(time),
        "ce-subject": ".".join(unit_path),
        CORRELATION_HEADER: correlation_id,
        "content-type": CONTENT_TYPE,
        "Nats-Msg-Id": event_id,
    }
    if trace:
        found.update((name, trace[name]) for name in TRACE_HEADERS if trace.get(name))
    return found


def encode(
    event: Event,
    *,
    source: str,
    correlation_id: str,
    event_id: str | None = None,
    time: datetime | None = None,
    trace: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, str], bytes]:
    """Return (NATS subject, headers, body) for an event; ``trace``: the W3C trace context
    (``traceparent``, ``tracestate``) to carry, when a trace is being recorded."""
    found = headers(
        event_id=event_id or new_event_id(),
        source=source,
        ce_type=event.ce_type(),
        unit_path=event.unit_path,
        correlation_id=correlation_id,
        time=time or datetime.now(UTC),
        trace=trace,
    )
    return event.subject(), found, event.model_dump_json().encode()


def decode(
    nats_subject: str, headers: Mapping[str, str] | None, body: bytes
) -> tuple[Envelope, Event]:
    """Parse a message into its envelope and event, or raise UndeliverableEvent."""
    headers = headers or {}
    missing = [name for name in REQUIRED_HEADERS if not headers.get(name)]
    if missing:
        raise UndeliverableEvent(f"missing CloudEvents header(s): {', '.join(missing)}")
    if headers["ce-specversion"] != SPECVERSION:
        raise UndeliverableEvent(f"unsupported ce-specversion {headers['ce-specversion']!r}")
    event_type = BY_TYPE.get(headers["ce-type"])
    if event_type is None:
        raise UnknownEventType(headers["ce-type"])
    try:
        event = event_type.model_validate_json(body)
    except ValidationError as exc:
        raise UndeliverableEvent(
            f"body is not a valid {event_type.__name__}: {_brief(exc)}"
        ) from exc
    if event.subject() != nats_subject:
        raise UndeliverableEvent(
            f"subject {nats_subject!r} does not match the event's unit path "
            f"(expected {event.subject()!r})"
        )
    try:
        time = datetime.fromisoformat(headers.get("ce-time", "").replace("Z", "+00:00"))
    except ValueError:
        time = datetime.now(UTC)
    envelope = Envelope(
        id=headers["ce-id"],
        source=headers["ce-source"],
        type=headers["ce-type"],
        time=time,
        subject=headers.get("ce-subject", ""),
        correlation_id=headers.get(CORRELATION_HEADER) or headers["ce-id"],
        nats_subject=nats_subject,
        traceparent=headers.get("traceparent") or None,
    )
    return envelope, event


def _brief(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
