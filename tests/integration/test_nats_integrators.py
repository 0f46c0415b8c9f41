"""Integrator credentials on a real secured nats-server: what an ordinary client needs works
(listing streams, ordered, ephemeral and durable consumers, history from a time or a
sequence), with nats-py here and with the official Node.js packages, and the server
refuses everything else (publishing, deleting, purging, another principal's consumers,
and for a subtree credential anything outside its subtree).

A refused JetStream API request gets no answer (the server drops it and sends the client a
permissions violation), so nats-py raises its TimeoutError; the violation itself is
asserted from the connection's error callback.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from typer.testing import CliRunner

from services import nats_auth
from services.cli import app
from services.embedded import EmbeddedPorts, EmbeddedSystem
from services.natsd import NatsServer, free_port, nats_server_binary
from shared.bus.streams import DEAD_LETTER, NOTIFY, PLANS, REPORTS
from tests.integrator_bus import (
    ROOT,
    SecuredBus,
    deadline_events,
    npm_ready,
    provision_streams,
    publish_events,
    start_secured_bus,
    unit_events,
)
from tests.support import DEFAULT_TIMEOUT, patience

REFUSED_WITHIN = 0.5
SUBTREE = "integrator-egov-h801"
PAST = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class History:
    bus: SecuredBus
    sent: list[tuple[str, dict[str, str]]]
    later: datetime  # the deadline events were recorded at or after this time


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """One secured server with the unit registrations (recorded in the past) and a missed
    deadline per commune (recorded now), published by their owning services."""
    bus = start_secured_bus(tmp_path_factory.mktemp("nats"))
    later = datetime.now(UTC) - timedelta(seconds=1)

    async def fill() -> list[tuple[str, dict[str, str]]]:
        await provision_streams(bus)
        sent = await publish_events(bus, unit_events(), at=PAST)
        sent += await publish_events(bus, deadline_events())
        await _dead_letter(bus, *sent[-1])
        return sent

    try:
        yield History(bus, asyncio.run(fill()), later)
    finally:
        bus.server.stop()


async def _dead_letter(bus: SecuredBus, subject: str, headers: dict[str, str]) -> None:
    """What a consumer that gave up on a message publishes (docs/events.md)."""
    notify = await bus.connect("svc-notify")
    dead = {
        **headers,
        "qcdc-deadletter-reason": "undeliverable: no focal e-mail",
        "qcdc-original-subject": subject,
        "Nats-Msg-Id": f"dl-notify-reports-{REPORTS.name}-2",
    }
    await notify.jetstream().publish("qcdc.v1.deadletter.notify.reports", b"{}", headers=dead)
    await notify.close()


@dataclass
class Session:
    nc: Client
    errors: list[str] = field(default_factory=list)

    async def violation(self, subject: str, action: str = "publish") -> None:
        expected = f'permissions violation for {action} to "{subject}"'.lower()
        await self.nc.flush()
        for _ in range(100):
            if any(expected in error.lower() for error in self.errors):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"no violation for {subject}: {self.errors}")


@pytest.fixture
async def sessions(history: History) -> AsyncIterator[dict[str, Session]]:
    opened: dict[str, Session] = {}
    for user in ("integrator-dash", SUBTREE):
        errors: list[str] = []

        async def on_error(exc: Exception, errors: list[str] = errors) -> None:
            errors.append(str(exc))

        prefix = history.bus.env(user).get("QCDC_NATS_INBOX_PREFIX", "_INBOX")
        nc = await history.bus.connect(user, error_cb=on_error, inbox_prefix=prefix.encode())
        opened[user] = Session(nc, errors)
    yield opened
    for session in opened.values():
        await session.nc.close()


def _name(user: str, purpose: str) -> str:
    """The documented convention: integrator-<name>-<purpose>."""
    return f"{user}-{purpose}-{uuid.uuid4().hex[:8]}"


async def test_an_integrator_lists_streams_and_reads_history_every_way(
    history: History, sessions: dict[str, Session]
) -> None:
    js = sessions["integrator-dash"].nc.jetstream(timeout=patience(5))
    streams = {info.config.name: info.state.messages for info in await js.streams_info()}
    assert streams == {PLANS.name: 5, REPORTS.name: 2, NOTIFY.name: 0, DEAD_LETTER.name: 1}
    assert await js.find_stream_name_by_subject("qcdc.v1.token.issued.T89") == PLANS.name
    assert (await js.stream_info(PLANS.name)).state.messages == 5

    # Ordered consumer (push, flow control): named, since the unnamed create is refused.
    ordered = await js.subscribe(
        "qcdc.v1.unit.>",
        ordered_consumer=True,
        config=ConsumerConfig(name=_name("integrator-dash", "ordered")),
    )
    subjects = [(await ordered.next_msg(timeout=patience(5))).subject for _ in range(5)]
    assert subjects == [subject for subject, _ in history.sent[:5]]
    await ordered.unsubscribe()

    # A durable on a subtree with two filters, read and acked.
    durable = _name("integrator-dash", "h801")
    reader = await js.pull_subscribe(
        "",
        durable=durable,
        stream=PLANS.name,
        config=ConsumerConfig(
            filter_subjects=["qcdc.v1.*.*.T89.H801", "qcdc.v1.*.*.T89.H801.>"],
            ack_policy=AckPolicy.EXPLICIT,
        ),
    )
    batch = await reader.fetch(5, timeout=patience(2))
    assert [m.subject.removeprefix("qcdc.v1.unit.registered.") for m in batch] == [
        "T89.H801",
        "T89.H801.X80101",
    ]
    for msg in batch:
        await msg.ack_sync()
    assert (await js.consumer_info(PLANS.name, durable)).num_ack_pending == 0

    # History from a point in time, and from a sequence.
    since = await js.pull_subscribe(
        "qcdc.v1.deadline.>",
        durable=_name("integrator-dash", "since"),
        stream=REPORTS.name,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=history.later
        ),
    )
    assert len(await since.fetch(5, timeout=patience(2))) == 2
    from_seq = await js.pull_subscribe(
        "qcdc.v1.unit.>",
        durable=_name("integrator-dash", "seq"),
        stream=PLANS.name,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=4),
    )
    assert [m.metadata.sequence.stream for m in await from_seq.fetch(5, timeout=patience(2))] == [
        4,
        5,
    ]
    assert (await js.get_msg(PLANS.name, 1)).subject == "qcdc.v1.unit.registered.T89"


async def test_an_integrator_publishes_deletes_and_purges_nothing(
    history: History, sessions: dict[str, Session]
) -> None:
    session = sessions["integrator-dash"]
    js = session.nc.jetstream(timeout=REFUSED_WITHIN)
    with pytest.raises(nats.errors.TimeoutError):
        await js.publish("qcdc.v1.unit.registered.T89", b"{}")
    await session.violation("qcdc.v1.unit.registered.T89")
    for attempt, subject in [
        (js.delete_stream(PLANS.name), f"$JS.API.STREAM.DELETE.{PLANS.name}"),
        (js.purge_stream(PLANS.name), f"$JS.API.STREAM.PURGE.{PLANS.name}"),
        (js.delete_msg(PLANS.name, 1), f"$JS.API.STREAM.MSG.DELETE.{PLANS.name}"),
        (js.delete_consumer(PLANS.name, "x"), f"$JS.API.CONSUMER.DELETE.{PLANS.name}.x"),
    ]:
        with pytest.raises(nats.errors.TimeoutError):
            await attempt
        await session.violation(subject)
    admin = await history.bus.connect("admin")
    assert (await admin.jetstream().stream_info(PLANS.name)).state.messages == 5
    await admin.close()


async def test_no_integrator_reaches_a_services_consumer(
    history: History, sessions: dict[str, Session]
) -> None:
    """The unnamed (legacy ephemeral) create subject takes the consumer's name from the
    request body, so it could rewrite ``notify-reports``: it is refused, and so is every
    API subject naming a service's consumer."""
    admin = await history.bus.connect("admin")
    service = "notify-reports"
    await admin.jetstream().add_consumer(
        REPORTS.name, ConsumerConfig(durable_name=service, filter_subject="qcdc.v1.report.>")
    )
    session = sessions["integrator-dash"]
    body = {"stream_name": REPORTS.name, "config": {"name": service, "filter_subject": ">"}}
    for subject in [
        f"$JS.API.CONSUMER.CREATE.{REPORTS.name}",
        f"$JS.API.CONSUMER.CREATE.{REPORTS.name}.{service}",
        f"$JS.API.CONSUMER.CREATE.{REPORTS.name}.{service}.qcdc.v1.deadline.>",
        f"$JS.API.CONSUMER.INFO.{REPORTS.name}.{service}",
        f"$JS.API.CONSUMER.MSG.NEXT.{REPORTS.name}.{service}",
        f"$JS.ACK.{REPORTS.name}.{service}.1.1.1.1.0",
    ]:
        with pytest.raises(nats.errors.TimeoutError):
            await session.nc.request(subject, json.dumps(body).encode(), timeout=REFUSED_WITHIN)
        await session.violation(subject)
    info = await admin.jetstream().consumer_info(REPORTS.name, service)
    assert info.config.filter_subject == "qcdc.v1.report.>"
    await admin.close()


async def test_a_subtree_integrator_reads_its_subtree_only(
    history: History, sessions: dict[str, Session]
) -> None:
    session = sessions[SUBTREE]
    js = session.nc.jetstream(timeout=patience(5))
    assert {s.config.name for s in await js.streams_info()} >= {PLANS.name, REPORTS.name}
    got: list[str] = []
    for pattern in ["qcdc.v1.*.*.T89.H801", "qcdc.v1.*.*.T89.H801.>"]:
        name = _name(SUBTREE, "units")
        reader = await js.pull_subscribe(pattern, durable=name, stream=PLANS.name)
        got += [m.subject for m in await reader.fetch(5, timeout=patience(2))]
    assert got == ["qcdc.v1.unit.registered.T89.H801", "qcdc.v1.unit.registered.T89.H801.X80101"]

    refused = session.nc.jetstream(timeout=REFUSED_WITHIN)
    for pattern in ["qcdc.v1.unit.>", "qcdc.v1.*.*.T89.>", "qcdc.v1.*.*.T89.H802.>"]:
        name = _name(SUBTREE, "wide")
        with pytest.raises(nats.errors.TimeoutError):
            await refused.pull_subscribe(
                pattern, durable=name, stream=PLANS.name, config=ConsumerConfig(name=name)
            )
        await session.violation(f"$JS.API.CONSUMER.CREATE.{PLANS.name}.{name}.{pattern}")
    # Unfiltered forms carry no filter the server could check: several filters, the
    # legacy durable subject (add_consumer with durable_name only), reading by sequence.
    wide = _name(SUBTREE, "multi")
    with pytest.raises(nats.errors.TimeoutError):
        await refused.add_consumer(
            PLANS.name,
            ConsumerConfig(name=wide, filter_subjects=["qcdc.v1.*.*.T89.H801", "qcdc.v1.>"]),
        )
    await session.violation(f"$JS.API.CONSUMER.CREATE.{PLANS.name}.{wide}")
    with pytest.raises(nats.errors.TimeoutError):
        await refused.add_consumer(
            PLANS.name, ConsumerConfig(durable_name=wide, filter_subject="qcdc.v1.*.*.T89.H801.>")
        )
    await session.violation(f"$JS.API.CONSUMER.DURABLE.CREATE.{PLANS.name}.{wide}")
    with pytest.raises(nats.errors.TimeoutError):
        await refused.get_msg(PLANS.name, 1)
    await session.violation(f"$JS.API.STREAM.MSG.GET.{PLANS.name}")


async def test_a_subtree_integrator_listens_on_its_subtree_and_own_inbox_only(
    history: History, sessions: dict[str, Session]
) -> None:
    session = sessions[SUBTREE]
    heard: asyncio.Queue[str] = asyncio.Queue()

    async def on_message(msg: Msg) -> None:
        await heard.put(msg.subject)

    await session.nc.subscribe("qcdc.v1.*.*.T89.H801.>", cb=on_message)
    for subject in ["qcdc.v1.>", "_INBOX.>", "qcdc.v1.deadletter.>"]:
        await session.nc.subscribe(subject)
        await session.violation(subject, "subscription")
    await publish_events(history.bus, deadline_events(step=1))
    assert (
        await asyncio.wait_for(heard.get(), DEFAULT_TIMEOUT)
        == "qcdc.v1.deadline.missed.T89.H801.X80101"
    )
    assert heard.empty()  # H802's commune was published too, and not heard


NODE_DIR = ROOT / "tests" / "node"


def _node(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    skip = npm_ready(script.parent)
    if skip:
        pytest.skip(skip)
    return subprocess.run(
        ["node", str(script)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=patience(120),
        check=False,
    )


def test_a_nodejs_client_reads_every_stream_and_changes_nothing(history: History) -> None:
    done = _node(NODE_DIR / "foreign_reader.mjs", history.bus.env("integrator-dash"))
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, (report, done.stderr)
    assert report["problems"] == []
    assert set(report["streams"]) == {PLANS.name, REPORTS.name, NOTIFY.name, DEAD_LETTER.name}
    sent_ids = [headers["ce-id"] for _, headers in history.sent]
    assert set(sent_ids) <= set(report["ids"])  # deadline events of other tests may follow
    assert report["streams"][PLANS.name]["messages"] == 5
    assert report["streams"][DEAD_LETTER.name]["messages"] == 1
    for refusal in [report["publish"], *report["deletes"].values()]:
        assert refusal.startswith("refused") and "Permissions Violation" in refusal, refusal


UNITS_YAML = """\
- {code: T89, name: "Ủy ban nhân dân tỉnh An Bình", kind: province}
- {code: H801, name: "Ủy ban nhân dân huyện Tân Phú", kind: district, parent_code: T89}
"""


def test_qcdc_nats_config_makes_subtree_integrators_and_compose_loads_them(
    tmp_path: Path,
) -> None:
    """``--integrator NAME:UNIT`` from the CLI, and the Compose server config accepts the
    generated users with their deny lists (``nats-server -t``)."""
    units = tmp_path / "units.yaml"
    units.write_text(UNITS_YAML, encoding="utf-8")
    deploy = tmp_path / "nats"
    deploy.mkdir()
    shutil.copy(ROOT / "deploy" / "nats" / "nats-server.conf", deploy)
    args = ["nats", "config", "--units", str(units), "--out", str(deploy / "generated")]
    both = ["--integrator", "dash", "--integrator", "egov-h801:H801"]
    made = CliRunner().invoke(app, [*args, *both])
    assert made.exit_code == 0, made.output
    env = nats_auth.read_env_file(deploy / "generated" / "credentials" / f"{SUBTREE}.env")
    assert env["QCDC_NATS_INBOX_PREFIX"] == f"_INBOX.{SUBTREE}"
    assert env["QCDC_SUBTREE"] == "T89.H801"
    auth = (deploy / "generated" / "auth.conf").read_text(encoding="utf-8")
    assert f'"$JS.API.CONSUMER.CREATE.{PLANS.name}.*.qcdc.v1.*.*.T89.H801.>"' in auth
    checked = subprocess.run(
        [str(nats_server_binary()), "-c", str(deploy / "nats-server.conf"), "-t"],
        capture_output=True,
        text=True,
        timeout=patience(30),
        check=False,
    )
    assert checked.returncode == 0, checked.stderr

    for refused, reason in [
        ("egov:H999", "no unit H999"),
        ("bad.name", "integrator name"),
        ("dash", "given twice"),
    ]:
        again = CliRunner().invoke(app, [*args, "--integrator", "dash", "--integrator", refused])
        assert again.exit_code == 1 and reason in again.output, again.output


async def test_qcdc_up_secure_hands_a_nodejs_client_a_working_read_only_credential(
    tmp_path: Path,
) -> None:
    """The users `qcdc up --secure` generates include ``integrator-local``: on a server run
    with exactly that configuration, the Node.js client reads every stream and changes
    nothing."""
    ports = EmbeddedPorts(nats=free_port(), plans=0, reports=0, notify=0, smtp=0)
    system = EmbeddedSystem(tmp_path / "var", ports, secure=True)
    server = NatsServer(tmp_path / "nats", ports.nats, authorization=system._authorization())
    server.start()
    try:
        login = system.login("integrator-local")
        bus = SecuredBus(server, {"admin": system.login("admin")["QCDC_NATS_PASSWORD"]})
        await provision_streams(bus)
        bus.passwords["svc-plans"] = system.login("svc-plans")["QCDC_NATS_PASSWORD"]
        sent = await publish_events(bus, unit_events())
        done = await asyncio.to_thread(
            _node, NODE_DIR / "foreign_reader.mjs", {"QCDC_NATS_URL": server.url, **login}
        )
    finally:
        server.stop()
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, (report, done.stderr)
    assert report["ids"] == [headers["ce-id"] for _, headers in sent]
    assert report["publish"].startswith("refused")


async def test_a_push_consumer_cannot_republish_history_onto_event_subjects(
    history: History, sessions: dict[str, Session]
) -> None:
    """Permissions cannot see a push consumer's ``deliver_subject`` (it is in the request's
    body): one aimed at an event subject is accepted, yet nats-server delivers nothing
    there and no stream stores anything. A control consumer on the integrator's inbox
    gets the same history meanwhile, so the absence is not a matter of waiting."""
    nc = sessions["integrator-dash"].nc
    js = nc.jetstream(timeout=patience(5))
    admin = await history.bus.connect("admin")
    before = (await admin.jetstream().stream_info(REPORTS.name)).state.messages
    heard: list[str] = []

    async def on_event(msg: Msg) -> None:
        heard.append(msg.subject)

    await nc.subscribe("qcdc.v1.report.>", cb=on_event)  # interest on the target subject
    target = "qcdc.v1.report.submitted.T89.H802"
    aimed = _name("integrator-dash", "aimed")
    await js.add_consumer(PLANS.name, ConsumerConfig(name=aimed, deliver_subject=target))
    control = await js.subscribe(
        "qcdc.v1.unit.>",
        stream=PLANS.name,
        config=ConsumerConfig(name=_name("integrator-dash", "control")),
    )
    for _ in range(5):
        await control.next_msg(timeout=DEFAULT_TIMEOUT)
    await nc.flush()
    assert (await js.consumer_info(PLANS.name, aimed)).delivered.consumer_seq == 0
    assert heard == []
    assert (await admin.jetstream().stream_info(REPORTS.name)).state.messages == before
    await admin.close()
