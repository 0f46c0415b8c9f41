"""Idempotent, durable consumers: decode → inbox check → handler → commit → ack.

Each consumer is a durable JetStream pull consumer with explicit acks. For every message:
- a message that cannot be decoded, or whose subject does not match its unit path, or
  that a handler declares undeliverable, goes to the dead-letter subject
  ``qcdc.v1.deadletter.<service>.<consumer>`` with the reason, and is acked;
- the event id is written to the inbox in the handler's own transaction, so a redelivered
  event has no second effect;
- a handler failure is retried with a growing delay (``nak(delay)``) up to
  ``max_deliver`` attempts, then dead-lettered with the last error;
- a dead letter an operator sends back (``qcdc deadletters retry``) arrives on the
  consumer's own retry subject ``qcdc.v1.deadletter.retry.<service>.<consumer>`` and is
  handled as if it came from its original subject: only this consumer sees it again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import DeliverPolicy
from opentelemetry.trace import SpanKind, StatusCode

from shared.bus.envelope import Envelope, UndeliverableEvent, UnknownEventType, decode
from shared.bus.streams import (
    DEAD_LETTER,
    RETRY_PREFIX,
    Durable,
    StreamSpec,
    dead_letter_subject,
    retry_subject,
)
from shared.context import bind_correlation_id
from shared.events import Event
from shared.metrics import Metrics
from shared.tracing import OFF, Tracing, context_from
from shared.uow import GroupCommit, UnitOfWork

log = structlog.get_logger(__name__)

Handler = Callable[[Any, Envelope, UnitOfWork], Awaitable[None]]

REASON_HEADER = "qcdc-deadletter-reason"
ORIGINAL_SUBJECT_HEADER = "qcdc-original-subject"
CONSUMER_HEADER = "qcdc-consumer"
DELIVERIES_HEADER = "qcdc-deliveries"
TRUNCATED_HEADER = "qcdc-deadletter-truncated"
"""Set when the body was cut to fit: the original body's length and SHA-256."""
MAX_REASON = 1000


@dataclass
class ConsumerSpec:
    """One durable consumer of a service: which stream and subjects, which handlers."""

    service: str
    name: str
    stream: StreamSpec
    subjects: list[str]
    handlers: dict[type[Event], Handler] = field(default_factory=dict)

    @property
    def durable(self) -> str:
        return f"{self.service}-{self.name}"


def backoff_seconds(delivered: int) -> float:
    """Delay before the next attempt after ``delivered`` failed ones: 1, 2, 4 … 60 s."""
    return float(min(60, 2 ** max(0, delivered - 1)))


class IdempotentConsumer:
    def __init__(
        self,
        spec: ConsumerSpec,
        uow_factory: Callable[[], UnitOfWork],
        broker: NatsBroker,
        *,
        max_deliver: int,
        backoff: Callable[[int], float] = backoff_seconds,
        metrics: Metrics | None = None,
        tracing: Tracing = OFF,
        linger_seconds: float = 0.0,
    ) -> None:
        self.spec = spec
        self.metrics = metrics
        self.tracing = tracing
        self.durables: list[Durable] = []
        """The JetStream durables bound for this consumer (its subjects' and its retries')."""
        self.uow_factory = uow_factory
        self.broker = broker
        self.max_deliver = max_deliver
        self.backoff = backoff
        self._transactions = GroupCommit(uow_factory, linger_seconds=linger_seconds)

    async def handle(self, msg: NatsMessage) -> None:
        if not self.tracing.enabled:
            outcome = await self._handle(msg)
        else:
            outcome = await self._handle_traced(msg)
        if self.metrics is not None:
            self.metrics.events.labels(self.spec.durable, outcome).inc()

    async def _handle_traced(self, msg: NatsMessage) -> str:
        """The handling in a consumer span continuing the trace the event carries."""
        raw = msg.raw_message
        with self.tracing.tracer.start_as_current_span(
            f"{self.spec.durable} process",
            context=context_from(raw.headers or {}),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.consumer.group.name": self.spec.durable,
                "messaging.message.id": (raw.headers or {}).get("ce-id", ""),
                "cloudevents.event_type": (raw.headers or {}).get("ce-type", ""),
            },
        ) as span:
            outcome = await self._handle(msg)
            span.set_attribute("qcdc.outcome", outcome)
            if outcome in ("retried", "dead_lettered"):
                span.set_status(StatusCode.ERROR)
            return outcome

    async def _handle(self, msg: NatsMessage) -> str:
        """Handle one message; return its outcome (handled, skipped, retried, dead_lettered)."""
        raw = msg.raw_message
        delivered = raw.metadata.num_delivered if raw.metadata else 1
        headers: Mapping[str, str] = raw.headers or {}
        try:
            envelope, event = decode(original_subject(raw.subject, headers), headers, raw.data)
        except UnknownEventType as exc:
            log.info("event of an unknown type skipped", ce_type=str(exc))
            await msg.ack()
            return "skipped"
        except UndeliverableEvent as exc:
            return await self._dead_letter(msg, exc.reason, delivered, "malformed")
        bind_correlation_id(envelope.correlation_id)
        structlog.contextvars.bind_contextvars(event_id=envelope.id, event_type=envelope.type)
        handler = self.spec.handlers.get(type(event))
        if handler is None:
            await msg.ack()
            return "skipped"
        if delivered > self.max_deliver:
            reason = f"not handled after {delivered - 1} deliveries"
            return await self._dead_letter(msg, reason, delivered, "max_deliveries")
        try:
            applied = await self._apply(handler, event, envelope)
        except UndeliverableEvent as exc:
            return await self._dead_letter(msg, exc.reason, delivered, "undeliverable")
        except Exception as exc:
            if delivered >= self.max_deliver:
                reason = f"gave up after {delivered} attempts: {exc!r}"[:1000]
                return await self._dead_letter(msg, reason, delivered, "gave_up")
            delay = self.backoff(delivered)
            log.warning(
                "handler failed; will retry", error=repr(exc), attempt=delivered, retry_in=delay
            )
            await msg.nack(delay=delay)
            return "retried"
        else:
            await msg.ack()
            return "handled" if applied else "skipped"
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "event_type")

    async def _apply(self, handler: Handler, event: Event, envelope: Envelope) -> bool:
        """Handle the event in a transaction shared with the other events of this consumer
        being handled at the same moment (a fetch brings several): one commit for all.
        False when the inbox says it was handled already."""

        async def step(uow: UnitOfWork) -> bool:
            if not await uow.mark_handled(self.spec.durable, envelope.id, envelope.type):
                log.info("event already handled; skipped", event_id=envelope.id)
                return False
            await handler(event, envelope, uow)
            return True

        return await self._transactions.run(step)

    async def _dead_letter(
        self, msg: NatsMessage, reason: str, delivered: int, reason_class: str
    ) -> str:
        """Publish the message to the dead letters and ack it ("dead_lettered"), or, when
        the bus cannot take it now, leave it for another delivery ("retried")."""
        raw = msg.raw_message
        headers = {k: v for k, v in (raw.headers or {}).items() if k != "Nats-Msg-Id"}
        seq = raw.metadata.sequence.stream if raw.metadata else 0
        stream = raw.metadata.stream if raw.metadata else self.spec.stream.name
        headers.update(
            {
                REASON_HEADER: reason[:MAX_REASON],
                ORIGINAL_SUBJECT_HEADER: original_subject(raw.subject, headers),
                CONSUMER_HEADER: self.spec.durable,
                DELIVERIES_HEADER: str(delivered),
                "Nats-Msg-Id": f"dl-{self.spec.durable}-{stream}-{seq}",
            }
        )
        connection = self.broker.connection
        body = fit_dead_letter(raw.data, headers, connection.max_payload)
        log.error("message dead-lettered", reason=reason[:MAX_REASON], subject=raw.subject)
        try:
            await connection.jetstream().publish(
                dead_letter_subject(self.spec.service, self.spec.name), body, headers=headers
            )
        except Exception as exc:
            # Not acked: the message comes back and is dead-lettered when the bus can take it.
            log.warning("dead letter not written; will retry", error=repr(exc))
            await msg.nack(delay=self.backoff(delivered))
            return "retried"
        await msg.ack()
        if self.metrics is not None:
            self.metrics.dead_letters.labels(self.spec.durable, reason_class).inc()
        return "dead_lettered"


def original_subject(subject: str, headers: Mapping[str, str]) -> str:
    """The subject the event was published on: a dead letter sent back for another try
    arrives on its consumer's retry subject and names its original one in a header."""
    if subject.startswith(RETRY_PREFIX):
        return headers.get(ORIGINAL_SUBJECT_HEADER, subject)
    return subject


def fit_dead_letter(body: bytes, headers: dict[str, str], max_payload: int) -> bytes:
    """The body, cut so that headers and body fit in one NATS message: a message that already
    filled max_payload could not be dead-lettered with our headers added, and would come back
    forever. A cut body is marked with the original's length and SHA-256."""
    if _header_size(headers) + len(body) <= max_payload:
        return body
    digest = hashlib.sha256(body).hexdigest()
    headers[TRUNCATED_HEADER] = f"{len(body)} bytes, sha256 {digest}"
    return body[: max(max_payload - _header_size(headers), 0)]


def _header_size(headers: Mapping[str, str]) -> int:
    """Bytes of the NATS header block (``NATS/1.0``, one line per header, a blank line)."""
    lines = sum(len(k.encode()) + len(v.encode()) + 4 for k, v in headers.items())
    return len(b"NATS/1.0\r\n") + lines + 2


async def _raw_body(msg: NatsMessage) -> bytes:
    """Keep the body undecoded: the envelope decodes it, so a malformed body reaches the
    consumer (and the dead letters) instead of failing inside FastStream."""
    return bytes(msg.body)


def register_consumer(
    broker: NatsBroker,
    spec: ConsumerSpec,
    uow_factory: Callable[[], UnitOfWork],
    *,
    max_deliver: int,
    ack_wait_seconds: float,
    batch_size: int,
    metrics: Metrics | None = None,
    tracing: Tracing = OFF,
    linger_seconds: float = 0.0,
) -> IdempotentConsumer:
    """Declare the durable pull consumer(s) on the broker, one per subject filter."""
    consumer = IdempotentConsumer(
        spec,
        uow_factory,
        broker,
        max_deliver=max_deliver,
        metrics=metrics,
        tracing=tracing,
        linger_seconds=linger_seconds,
    )
    if metrics is not None:
        metrics.declare_consumer(spec.durable)
    pull = _PullSettings(max_deliver, ack_wait_seconds, batch_size)
    for index, subject in enumerate(spec.subjects):
        durable = spec.durable if len(spec.subjects) == 1 else f"{spec.durable}-{index}"
        _subscribe(broker, consumer, spec.stream.name, durable, subject, pull)
    # The consumer's own retry subject, where an operator sends back a dead letter whose
    # cause is fixed. The inbox still guards it: a letter sent back twice is handled once.
    retries = retry_subject(spec.service, spec.name)
    one_by_one = dataclasses.replace(pull, batch_size=1)
    _subscribe(broker, consumer, DEAD_LETTER.name, f"{spec.durable}-retry", retries, one_by_one)
    return consumer


@dataclass(frozen=True)
class _PullSettings:
    max_deliver: int
    ack_wait_seconds: float
    batch_size: int


def _subscribe(
    broker: NatsBroker,
    consumer: IdempotentConsumer,
    stream: str,
    durable: str,
    subject: str,
    pull: _PullSettings,
) -> None:
    """One durable pull consumer of ``subject`` on ``stream``, handled by ``consumer``."""
    consumer.durables.append(Durable(stream, durable))

    async def on_message(msg: NatsMessage) -> None:
        await consumer.handle(msg)

    broker.subscriber(
        subject,
        stream=JStream(stream, declare=False),
        durable=durable,
        pull_sub=PullSub(batch_size=pull.batch_size, timeout=1.0),
        config=ConsumerConfig(
            durable_name=durable,
            ack_policy=JsAckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=pull.max_deliver + 1,
            ack_wait=pull.ack_wait_seconds,
            filter_subject=subject,
        ),
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_body,
        title=f"{durable}:{subject}",
    )(on_message)
