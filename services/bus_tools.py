"""Operator tools on the bus: read the dead letters, send one back, watch events go by.

Used by ``qcdc deadletters …`` and ``qcdc events tail``; they connect as the operator
(``QCDC_NATS_URL``, ``QCDC_NATS_USER``/``QCDC_NATS_PASSWORD``: the ``admin`` credential of
``qcdc nats config`` on a secured bus) and change nothing but what they are asked to.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import nats
from nats.aio.client import Client
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from shared.bus.consumer import (
    CONSUMER_HEADER,
    DELIVERIES_HEADER,
    ORIGINAL_SUBJECT_HEADER,
    REASON_HEADER,
    TRUNCATED_HEADER,
)
from shared.bus.streams import DEAD_LETTER, RETRY_PREFIX, retry_subject
from shared.settings import ServiceSettings

RETRY_OF_HEADER = "qcdc-retry-of"
"""On a dead letter sent back: the dead letter's sequence in the dead-letter stream."""

# Dead letters are rare; a listing reads them one by one from the stream.
DEFAULT_LIST_LIMIT = 1000


class BusToolError(Exception):
    """What the operator asked cannot be done; the message says why, in plain words."""


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    subject: str
    time: datetime | None
    consumer: str
    original_subject: str
    reason: str
    deliveries: str
    truncated: str
    headers: dict[str, str]
    body: bytes
    retried: bool = False

    @property
    def event_type(self) -> str:
        return self.headers.get("ce-type", "")

    @property
    def event_id(self) -> str:
        return self.headers.get("ce-id", "")

    def summary(self) -> dict[str, object]:
        return {
            "sequence": self.sequence,
            "time": self.time.isoformat() if self.time else None,
            "consumer": self.consumer,
            "subject": self.original_subject,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "reason": self.reason,
            "retried": self.retried,
        }


async def _quiet(_error: Exception) -> None:
    """The failure is reported once, in plain words, by :func:`operator_connection`."""


@asynccontextmanager
async def operator_connection(
    settings: ServiceSettings, *, connect_timeout: float = 5.0
) -> AsyncIterator[Client]:
    servers = [u.strip() for u in settings.nats_url.split(",")]
    try:
        nc = await nats.connect(
            servers=servers,
            user=settings.nats_user,
            password=settings.nats_password,
            connect_timeout=connect_timeout,
            # nats-py reads 0 as "for ever"; 1 tries each server twice, then gives up.
            max_reconnect_attempts=1,
            reconnect_time_wait=0.5,
            allow_reconnect=False,
            error_cb=_quiet,
        )
    except Exception as exc:
        raise BusToolError(f"NATS at {settings.nats_url} does not answer ({exc})") from exc
    try:
        yield nc
    finally:
        await nc.close()


def _dead_letter(msg: RawStreamMsg, retried: set[int]) -> DeadLetter:
    headers = dict(msg.headers or {})
    return DeadLetter(
        sequence=msg.seq or 0,
        subject=msg.subject or "",
        time=msg.time if isinstance(msg.time, datetime) else None,
        consumer=headers.get(CONSUMER_HEADER, ""),
        original_subject=headers.get(ORIGINAL_SUBJECT_HEADER, ""),
        reason=headers.get(REASON_HEADER, ""),
        deliveries=headers.get(DELIVERIES_HEADER, ""),
        truncated=headers.get(TRUNCATED_HEADER, ""),
        headers=headers,
        body=msg.data or b"",
        retried=(msg.seq or 0) in retried,
    )


async def _stream_messages(nc: Client, limit: int) -> list[RawStreamMsg]:
    js = nc.jetstream()
    try:
        state = (await js.stream_info(DEAD_LETTER.name)).state
    except NotFoundError as exc:
        raise BusToolError(f"the stream {DEAD_LETTER.name} does not exist on this bus") from exc
    found: list[RawStreamMsg] = []
    if state.messages == 0:
        return found
    first = max(state.first_seq, state.last_seq - limit * 2 + 1, 1)
    for seq in range(first, state.last_seq + 1):
        try:
            found.append(await js.get_msg(DEAD_LETTER.name, seq))
        except NotFoundError:
            continue  # removed by the stream's limits
    return found


async def dead_letters(nc: Client, limit: int = DEFAULT_LIST_LIMIT) -> list[DeadLetter]:
    """The latest dead letters, oldest first, each marked if it was already sent back."""
    messages = await _stream_messages(nc, limit)
    retried = {
        int(m.headers[RETRY_OF_HEADER])
        for m in messages
        if (m.subject or "").startswith(RETRY_PREFIX) and m.headers and RETRY_OF_HEADER in m.headers
    }
    letters = [
        _dead_letter(m, retried) for m in messages if not (m.subject or "").startswith(RETRY_PREFIX)
    ]
    return letters[-limit:]


async def dead_letter(nc: Client, sequence: int) -> DeadLetter:
    try:
        msg = await nc.jetstream().get_msg(DEAD_LETTER.name, sequence)
    except NotFoundError as exc:
        raise BusToolError(f"no dead letter with sequence {sequence}") from exc
    if (msg.subject or "").startswith(RETRY_PREFIX):
        raise BusToolError(f"message {sequence} is a retry that was sent, not a dead letter")
    return _dead_letter(msg, set())


def _retry_target(letter: DeadLetter) -> str:
    """The consumer's retry subject, from the dead-letter subject
    ``qcdc.v1.deadletter.<service>.<consumer>`` it was written to."""
    service, _, name = letter.subject.removeprefix(DEAD_LETTER.subjects[0][:-1]).partition(".")
    if not service or not name:
        raise BusToolError(f"dead letter {letter.sequence} has an unexpected subject")
    return retry_subject(service, name)


async def retry(nc: Client, sequence: int) -> str:
    """Send one dead letter back to the consumer that gave up on it; returns the subject.
    Sending the same letter again within the bus's duplicate window is a no-op, and the
    consumer's inbox drops an event it has handled since."""
    letter = await dead_letter(nc, sequence)
    if letter.truncated:
        raise BusToolError(
            f"dead letter {sequence} was cut to fit the bus ({letter.truncated}); "
            "its event cannot be sent back whole"
        )
    target = _retry_target(letter)
    headers = {k: v for k, v in letter.headers.items() if k != "Nats-Msg-Id"}
    headers[RETRY_OF_HEADER] = str(sequence)
    headers["Nats-Msg-Id"] = f"retry-{sequence}"
    await nc.jetstream().publish(target, letter.body, headers=headers)
    return target


def describe(letter: DeadLetter) -> str:
    """Everything about one dead letter, for ``qcdc deadletters show``."""
    try:
        body = json.dumps(json.loads(letter.body), ensure_ascii=False, indent=2)
    except ValueError:
        body = letter.body.decode("utf-8", "replace")
    lines = [f"{key}: {value}" for key, value in letter.summary().items()]
    lines += ["headers:", *(f"  {k}: {v}" for k, v in sorted(letter.headers.items()))]
    return "\n".join([*lines, "body:", body])


async def tail(
    nc: Client, subject: str, emit: Callable[[str], None], count: int | None = None
) -> None:
    """Print events as they are published on ``subject`` (a NATS wildcard), one line each."""
    seen = 0
    sub = await nc.subscribe(subject)
    try:
        async for msg in sub.messages:
            headers = msg.headers or {}
            emit(
                f"{headers.get('ce-time', '-')} {msg.subject} {headers.get('ce-type', '-')} "
                f"{headers.get('ce-id', '-')} {msg.data.decode('utf-8', 'replace')}"
            )
            seen += 1
            if count is not None and seen >= count:
                return
    finally:
        await sub.unsubscribe()


def tail_subject(filter_: str | None) -> str:
    """``report.>`` is short for ``qcdc.v1.report.>``; a full subject is taken as it is."""
    if not filter_:
        return "qcdc.v1.>"
    return filter_ if filter_.startswith("qcdc.") else f"qcdc.v1.{filter_}"
