"""JetStream streams: one per publishing service, plus the dead-letter stream.

Streams keep years of history on disk, deduplicate on ``Nats-Msg-Id`` over a window long
enough to cover an outbox relay retrying after a lost publish ack, and are provisioned once
(``qcdc bus provision``) rather than by every service at start-up.

On a NATS cluster every stream is kept on ``replicas`` servers (``QCDC_STREAM_REPLICAS``,
3 on a 3-node cluster): a write is acknowledged once a majority holds it, so one node may
die without losing an acknowledged event. Provisioning again with another count rescales
existing streams in place (docs/operations.md, *A clustered bus*).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

COPY_BATCH = 256

YEAR_SECONDS = 365 * 24 * 3600
HISTORY_YEARS = 10
DUPLICATE_WINDOW_SECONDS = 24 * 3600
DEAD_LETTER_PREFIX = "qcdc.v1.deadletter"
RETRY_PREFIX = f"{DEAD_LETTER_PREFIX}.retry."
"""Dead letters sent back to one consumer, by the operator, once their cause is fixed."""

KEPT = StreamConfig(
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    discard=DiscardPolicy.OLD,
    max_age=float(HISTORY_YEARS * YEAR_SECONDS),
    duplicate_window=float(DUPLICATE_WINDOW_SECONDS),
)
"""How every stream keeps its messages (each adds its name, subjects and replicas)."""


@dataclass(frozen=True)
class StreamSpec:
    name: str
    owner: str
    subjects: tuple[str, ...]
    description: str

    def config(self, replicas: int = 1) -> StreamConfig:
        return replace(
            KEPT,
            name=self.name,
            description=self.description,
            subjects=list(self.subjects),
            num_replicas=replicas,
        )


PLANS = StreamSpec(
    "QCDC_PLANS",
    "plans",
    (
        "qcdc.v1.unit.>",
        "qcdc.v1.plan.>",
        "qcdc.v1.subplan.>",
        "qcdc.v1.request.>",
        "qcdc.v1.difficulty.>",
        "qcdc.v1.token.>",
    ),
    "Unit registry, plans, sub-plans, report requests, difficulties, API tokens",
)
REPORTS = StreamSpec(
    "QCDC_REPORTS",
    "reports",
    (
        "qcdc.v1.report.>",
        "qcdc.v1.deadline.>",
        "qcdc.v1.consolidation.>",
        "qcdc.v1.recommendation.>",
        "qcdc.v1.inspection.>",
        "qcdc.v1.conference.>",
    ),
    "Report intake and review, the deadline clock, consolidations, recommendations, "
    "inspections, staff conferences",
)
NOTIFY = StreamSpec(
    "QCDC_NOTIFY",
    "notify",
    ("qcdc.v1.notification.>",),
    "Delivery of notifications",
)
DEAD_LETTER = StreamSpec(
    "QCDC_DEADLETTER",
    "all",
    (f"{DEAD_LETTER_PREFIX}.>",),
    "Messages a consumer could never handle, with the reason",
)
ALL_STREAMS: tuple[StreamSpec, ...] = (PLANS, REPORTS, NOTIFY, DEAD_LETTER)


def stream_for_subject(subject: str) -> StreamSpec:
    for spec in ALL_STREAMS:
        for pattern in spec.subjects:
            if subject.startswith(pattern.removesuffix(">")):
                return spec
    raise LookupError(f"no stream holds subject {subject!r}")


def dead_letter_subject(service: str, consumer: str) -> str:
    return f"{DEAD_LETTER_PREFIX}.{service}.{consumer}"


def retry_subject(service: str, consumer: str) -> str:
    return f"{RETRY_PREFIX}{service}.{consumer}"


async def provision(
    js: JetStreamContext, streams: tuple[StreamSpec, ...] = ALL_STREAMS, *, replicas: int = 1
) -> None:
    """Create or update the streams, each on ``replicas`` servers; safe to run again."""
    for spec in streams:
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(spec.config(replicas))
        else:
            await js.update_stream(spec.config(replicas))


async def copy_streams(
    source: JetStreamContext,
    target: JetStreamContext,
    streams: tuple[StreamSpec, ...] = ALL_STREAMS,
) -> dict[str, int]:
    """Every message of every stream of ``source``, in order, published again on
    ``target`` (provisioned beforehand) with its subject, headers and body: moving a
    deployment to another bus, e.g. from one server to a cluster, where the servers' stores
    cannot be carried over. ``Nats-Msg-Id`` travels in the headers, so a copy interrupted and
    run again adds nothing twice within the duplicate window; consumers' inboxes drop the
    rest. The publication times are the copy's. Messages copied, per stream."""
    copied: dict[str, int] = {}
    for spec in streams:
        try:
            state = (await source.stream_info(spec.name)).state
        except NotFoundError:
            continue
        copied[spec.name] = 0
        if not state.messages:
            continue
        pending = []
        for seq in range(state.first_seq, state.last_seq + 1):
            try:
                message = await source.get_msg(spec.name, seq)
            except NotFoundError:
                continue  # deleted, or aged out meanwhile
            assert message.subject is not None
            pending.append(
                await target.publish_async(
                    message.subject, message.data or b"", headers=message.headers
                )
            )
            if len(pending) >= COPY_BATCH:
                await asyncio.gather(*pending)
                copied[spec.name] += len(pending)
                pending = []
        await asyncio.gather(*pending)
        copied[spec.name] += len(pending)
    return copied


@dataclass(frozen=True)
class Durable:
    """A durable JetStream consumer a principal creates and reads."""

    stream: str
    name: str


PORTAL_SUBJECTS = (
    "qcdc.v1.report.>",
    "qcdc.v1.consolidation.>",
    "qcdc.v1.conference.>",
    "qcdc.v1.recommendation.>",
    "qcdc.v1.inspection.>",
)
"""What the portal's live feed listens to for its board (services/portal/adapters/live.py);
its NATS credential allows these and no more."""
