"""Read-only NATS credentials for integrators: what an ordinary JetStream client needs to
list the streams, create ordered, ephemeral and durable consumers, and read history from a
time or a sequence, within the subjects the credential may read, and nothing else.

Two kinds:

- ``integrator-<name>`` reads every event (``qcdc.v1.>``, request-reply submissions
  excepted) on every stream, dead letters included;
- ``integrator-<name>`` for a subtree (``qcdc nats config --integrator NAME:UNIT``) reads
  only the events whose subject ends with a path inside that unit's subtree, on the event
  streams (not the dead letters, which hold every unit's bodies).

How the server enforces "within the subjects it may read" (nats-server 2.15, checked by
``tests/integration/test_nats_integrators.py``): a consumer is created by a request on
``$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>``, and the server refuses the request
when the filter in the subject differs from the consumer's ``filter_subject``. A subtree
credential is allowed only the create subjects whose filter lies inside its subtree, so
it can never create a consumer that delivers anything else. The unfiltered forms
(``CONSUMER.CREATE.<stream>``, ``….<stream>.<name>``, ``CONSUMER.DURABLE.CREATE``, and so
consumers with several ``filter_subjects``) carry no filter and are left to the
province-wide integrator.

Consumer names are single subject tokens and NATS wildcards match whole tokens only, so a
permission cannot say "names starting with ``integrator-dash-``": the credential may name
its consumers freely, and is denied every consumer name the generated configuration knows
belongs to someone else (every service's and district instance's durables, and the other
integrators' base names). The documented convention, ``integrator-<name>-<purpose>``,
keeps integrators apart; see docs/security.md for what that leaves open.

No credential here may publish an event, answer a request, delete or purge a stream or a
consumer, or read a consumer listing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.nats_auth import JS_API, Permissions, Principal, RegistryUnit, check_name
from shared.bus.streams import ALL_STREAMS, DEAD_LETTER, Durable, StreamSpec

PREFIX = "integrator-"
EVENTS = "qcdc.v1.>"
RPC = "qcdc.v1.rpc.>"
INBOX = "_INBOX.>"
EVENT_STREAMS: tuple[StreamSpec, ...] = tuple(s for s in ALL_STREAMS if s is not DEAD_LETTER)


@dataclass(frozen=True)
class IntegratorSpec:
    """``--integrator NAME`` (every event) or ``--integrator NAME:UNIT`` (a subtree)."""

    name: str
    unit: str | None = None

    @property
    def user(self) -> str:
        return f"{PREFIX}{self.name}"

    @classmethod
    def parse(cls, value: str) -> IntegratorSpec:
        name, _, unit = value.partition(":")
        check_name(name, "integrator name")
        if unit:
            check_name(unit, "integrator unit")
        return cls(name, unit or None)


def inbox_prefix(user: str) -> str:
    """The inbox prefix a subtree integrator's client must use (``inbox_prefix=`` in
    nats-py, ``inboxPrefix`` in nats.js): its replies and push deliveries arrive there,
    and nowhere else it could listen."""
    return f"_INBOX.{user}"


# --- what every integrator may do ---------------------------------------------------------


def _stream_reads(streams: Sequence[StreamSpec], *, direct_get: bool) -> list[str]:
    """Account info, the stream list and each readable stream's info. ``STREAM.MSG.GET``
    reads any message by sequence or subject, so only a credential that may read the whole
    stream has it."""
    subjects = [
        f"{JS_API}.INFO",
        f"{JS_API}.STREAM.NAMES",
        f"{JS_API}.STREAM.LIST",
        *(f"{JS_API}.STREAM.INFO.{s.name}" for s in streams),
    ]
    if direct_get:
        subjects += [f"{JS_API}.STREAM.MSG.GET.{s.name}" for s in streams]
    return subjects


def _consumer_use(streams: Sequence[StreamSpec]) -> list[str]:
    """Reading a consumer once created, whatever its name: its info, the next batch, acks
    (``$JS.ACK.<stream>.<consumer>.…``) and flow-control answers of push consumers
    (``$JS.FC.<stream>.<consumer>.…``, which nats-py's ordered consumer sends)."""
    return [subject for stream in streams for subject in _consumer_reads(stream.name, "*")]


def _consumer_creates(stream: str, consumer: str) -> list[str]:
    """Creating consumer ``consumer`` on ``stream`` (either may be ``*``): with one filter
    or none, several (``….>``), and the legacy durable create subject."""
    return [
        f"{JS_API}.CONSUMER.CREATE.{stream}.{consumer}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.{consumer}.>",
        f"{JS_API}.CONSUMER.DURABLE.CREATE.{stream}.{consumer}",
    ]


def _consumer_reads(stream: str, consumer: str) -> list[str]:
    """Reading through consumer ``consumer`` of ``stream`` (either may be ``*``)."""
    return [
        f"{JS_API}.CONSUMER.INFO.{stream}.{consumer}",
        f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
        f"$JS.ACK.{stream}.{consumer}.>",
        f"$JS.FC.{stream}.{consumer}.>",
    ]


def reserved_denials(reserved: Iterable[str]) -> list[str]:
    """Every API subject that could create, change, read or ack a consumer with one of
    these names, on any stream: deny wins over the allow-any-name rules above."""
    subjects: list[str] = []
    for name in sorted(set(reserved)):
        subjects += [*_consumer_creates("*", name), *_consumer_reads("*", name)]
    return subjects


def reserved_names(durables: Iterable[Durable], integrators: Iterable[IntegratorSpec]) -> set[str]:
    return {d.name for d in durables} | {i.user for i in integrators}


# --- the two kinds --------------------------------------------------------------------------


def integrator_principal(spec: IntegratorSpec, reserved: Iterable[str] = ()) -> Principal:
    """A province-wide integrator: every stream, consumers of any name and filter (with a
    single filter, several, or none), legacy ephemeral and durable create subjects."""
    if spec.unit is not None:
        raise ValueError(f"{spec.user} reads a subtree: use subtree_integrator_principal")
    streams = ALL_STREAMS
    create = [subject for stream in streams for subject in _consumer_creates(stream.name, "*")]
    publish = [*_stream_reads(streams, direct_get=True), *create, *_consumer_use(streams)]
    others = set(reserved) - {spec.user}
    return Principal(
        user=spec.user,
        description=f"integrator {spec.name}: reads every event, publishes none",
        permissions=Permissions(
            publish=tuple(publish),
            publish_deny=tuple(reserved_denials(others)),
            subscribe=(EVENTS, INBOX),
            subscribe_deny=(RPC,),
        ),
    )


def subtree_filters(path: Sequence[str]) -> list[str]:
    """The subjects of a subtree's events, whatever the aggregate: the unit itself and
    everything below it (``>`` needs at least one token, so two filters)."""
    joined = ".".join(path)
    return [f"qcdc.v1.*.*.{joined}", f"qcdc.v1.*.*.{joined}.>"]


def subtree_integrator_principal(
    spec: IntegratorSpec, unit: RegistryUnit, reserved: Iterable[str] = ()
) -> Principal:
    """An integrator of one subtree: creates consumers only with a filter inside the
    subtree (one filter per consumer), reads the event streams through them, and listens
    on the subtree's subjects and on its own inbox prefix only."""
    if spec.unit != unit.code:
        raise ValueError(f"{spec.user} reads {spec.unit}, not {unit.code}")
    streams = EVENT_STREAMS
    filters = subtree_filters(unit.path)
    create = [
        f"{JS_API}.CONSUMER.CREATE.{stream.name}.*.{pattern}"
        for stream in streams
        for pattern in filters
    ]
    publish = [*_stream_reads(streams, direct_get=False), *create, *_consumer_use(streams)]
    others = set(reserved) - {spec.user}
    return Principal(
        user=spec.user,
        description=(
            f"integrator {spec.name}: reads the events of {unit.code} "
            f"({'.'.join(unit.path)}) and its subtree, publishes none"
        ),
        permissions=Permissions(
            publish=tuple(publish),
            publish_deny=tuple(reserved_denials(others)),
            subscribe=(*filters, f"{inbox_prefix(spec.user)}.>"),
            subscribe_deny=(RPC,),
        ),
        env={
            "QCDC_NATS_INBOX_PREFIX": inbox_prefix(spec.user),
            "QCDC_SCOPE": unit.code,
            "QCDC_SUBTREE": ".".join(unit.path),
        },
    )


def integrator_principals(
    specs: Iterable[IntegratorSpec],
    units: Sequence[RegistryUnit],
    taken: Iterable[Durable],
) -> list[Principal]:
    """Every integrator's credential; ``taken`` are the durables of the services and
    district instances, which no integrator may touch."""
    specs = list(specs)
    users = [s.user for s in specs]
    duplicated = sorted({u for u in users if users.count(u) > 1})
    if duplicated:
        raise ValueError(f"--integrator: {', '.join(duplicated)} given twice")
    registry = {unit.code: unit for unit in units}
    reserved = reserved_names(taken, specs)
    found: list[Principal] = []
    for spec in specs:
        if spec.unit is None:
            found.append(integrator_principal(spec, reserved))
            continue
        if spec.unit not in registry:
            raise ValueError(f"--integrator {spec.name}:{spec.unit}: no unit {spec.unit}")
        found.append(subtree_integrator_principal(spec, registry[spec.unit], reserved))
    return found
