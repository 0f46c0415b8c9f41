"""Each generated NATS credential can do exactly what it should on a real nats-server, and
the server refuses the rest (asserted from the client's error, not from our own code).

What a refusal looks like to nats-py 2.16 (checked here):
- a core publish outside the permissions is dropped by the server, which sends
  ``-ERR 'Permissions Violation for Publish to "<subject>"'``; nats-py hands it, lower-cased,
  to the connection's error callback and the connection stays open;
- a JetStream publish outside the permissions gets no PubAck at all: ``js.publish``
  raises ``nats.errors.TimeoutError`` after its timeout, and the error callback gets the
  same violation;
- a subscription outside the permissions is refused the same way ("…for Subscription to …").
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
import pytest
import yaml
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, PubAck
from typer.testing import CliRunner

from services import nats_auth
from services.cli import app
from services.nats_principals import principals
from services.natsd import NatsServer, free_port, nats_server_binary
from shared.bus.streams import ALL_STREAMS, PORTAL_SUBJECTS, REPORTS, provision
from tests.integrator_bus import REGISTRY

REFUSED_WITHIN = 0.5  # a JetStream publish that gets no PubAck in this time was refused


@dataclass
class Secured:
    server: NatsServer
    passwords: dict[str, str]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """One secured server for the module (each test connects its own clients), with the
    streams provisioned by the admin credential."""
    bundle = nats_auth.credentials(principals(REGISTRY, integrators=["dash"]), existing={})
    server = NatsServer(
        tmp_path_factory.mktemp("nats"),
        free_port(),
        authorization=nats_auth.render_authorization(bundle),
    )
    server.start()
    secured = Secured(server, {c.user: c.password for c in bundle})
    asyncio.run(_provision(secured))
    yield secured
    server.stop()


async def _provision(secured: Secured) -> None:
    admin = await Connection.open(secured, "admin")
    await provision(admin.nc.jetstream())
    await admin.nc.close()


@dataclass
class Connection:
    nc: Client
    errors: list[str] = field(default_factory=list)

    @classmethod
    async def open(cls, secured: Secured, user: str) -> Connection:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        nc = await nats.connect(
            secured.server.url,
            user=user,
            password=secured.passwords[user],
            error_cb=on_error,
            allow_reconnect=False,
        )
        return cls(nc, errors)

    async def publish_acked(self, subject: str) -> PubAck:
        return await self.nc.jetstream().publish(subject, b"{}", timeout=5)

    async def refused(self, subject: str) -> str:
        """Core-publish ``subject``, then wait for the server's violation for it."""
        await self.nc.publish(subject, b"{}")
        return await self.violation("publish", subject)

    async def hear(self, *subjects: str) -> asyncio.Queue[Msg]:
        """Every message on ``subjects`` from now on, in the order they arrive."""
        heard: asyncio.Queue[Msg] = asyncio.Queue()
        for subject in subjects:
            await self.nc.subscribe(subject, cb=heard.put)
        await self.nc.flush()
        return heard

    async def out_of_reach(self, consumer: str) -> None:
        """Another principal's consumer on the REPORTS stream: no info about it, hence no
        reading or acking with it; the server says why."""
        with pytest.raises(nats.errors.TimeoutError):
            await self.nc.jetstream().consumer_info(REPORTS.name, consumer, timeout=REFUSED_WITHIN)
        await self.violation("publish", f"$JS.API.CONSUMER.INFO.{REPORTS.name}.{consumer}")

    async def violation(self, action: str, subject: str) -> str:
        """The server's error for ``subject``; it arrives asynchronously (not always
        before the next PONG), so wait for it a little."""
        expected = f'permissions violation for {action} to "{subject}"'.lower()
        await self.nc.flush()
        for _ in range(100):
            found = [e for e in self.errors if expected in e.lower()]
            if found:
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no violation for {action} {subject}: {self.errors}")


Connect = Callable[[str], Awaitable[Connection]]


@pytest.fixture
async def connect(secured: Secured) -> AsyncIterator[Connect]:
    """Connects as a given user; closes every connection after the test."""
    opened: list[Connection] = []

    async def open_as(user: str) -> Connection:
        connection = await Connection.open(secured, user)
        opened.append(connection)
        return connection

    yield open_as
    for connection in opened:
        await connection.nc.close()


async def test_without_credentials_nobody_connects(secured: Secured) -> None:
    for user, password in [(None, None), ("svc-plans", "not-the-password")]:
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(
                secured.server.url, user=user, password=password, allow_reconnect=False
            )


async def test_the_admin_provisions_and_a_service_cannot(
    secured: Secured, connect: Connect
) -> None:
    admin = await connect("admin")
    await provision(admin.nc.jetstream())  # again: create or update, both allowed
    names = {(await admin.nc.jetstream().stream_info(s.name)).config.name for s in ALL_STREAMS}
    assert names == {s.name for s in ALL_STREAMS}

    reports = await connect("svc-reports")
    with pytest.raises(nats.errors.TimeoutError):  # it may read stream info, not change it
        await provision(reports.nc.jetstream(timeout=REFUSED_WITHIN))
    await reports.violation("publish", f"$JS.API.STREAM.UPDATE.{ALL_STREAMS[0].name}")


async def test_plans_publishes_plan_events_and_not_report_events(connect: Connect) -> None:
    plans = await connect("svc-plans")
    ack = await plans.publish_acked("qcdc.v1.plan.issued.T89")
    assert ack.stream == "QCDC_PLANS"
    await plans.publish_acked("qcdc.v1.unit.registered.T89.H801.X80101")

    with pytest.raises(nats.errors.TimeoutError):
        await plans.nc.jetstream().publish(
            "qcdc.v1.report.submitted.T89.H801", b"{}", timeout=REFUSED_WITHIN
        )
    await plans.violation("publish", "qcdc.v1.report.submitted.T89.H801")
    await plans.refused("qcdc.v1.notification.delivered.T89")


async def test_the_province_reports_and_notify_keep_to_their_own_subjects(
    connect: Connect,
) -> None:
    reports = await connect("svc-reports")
    for subject in [
        "qcdc.v1.report.submitted.T89.H801.X80101",  # the province reviews a district's
        "qcdc.v1.deadline.missed.T89.H802",
        "qcdc.v1.consolidation.published.T89",
    ]:
        assert (await reports.publish_acked(subject)).stream == "QCDC_REPORTS"
    await reports.refused("qcdc.v1.plan.issued.T89")

    notify = await connect("svc-notify")
    assert (await notify.publish_acked("qcdc.v1.notification.delivered.T89")).seq > 0
    await notify.refused("qcdc.v1.report.submitted.T89.H801")


async def test_a_district_publishes_only_under_its_own_path(connect: Connect) -> None:
    district = await connect("district-H801")
    for subject in [
        "qcdc.v1.report.submitted.T89.H801.X80101",
        "qcdc.v1.report.submitted.T89.H801",
        "qcdc.v1.report.accepted.T89.H801.X80101",
        "qcdc.v1.deadline.approaching.T89.H801.X80101",
        "qcdc.v1.consolidation.published.T89.H801",
        "qcdc.v1.deadletter.reports-H801.reports",
    ]:
        assert (await district.publish_acked(subject)).seq > 0, subject

    with pytest.raises(nats.errors.TimeoutError):
        await district.nc.jetstream().publish(
            "qcdc.v1.report.submitted.T89.H802.X80201", b"{}", timeout=REFUSED_WITHIN
        )
    message = await district.violation("publish", "qcdc.v1.report.submitted.T89.H802.X80201")
    assert message.startswith("nats: permissions violation for publish")
    for subject in [
        "qcdc.v1.plan.issued.T89",
        "qcdc.v1.report.submitted.T89",  # the province itself
        "qcdc.v1.report.submitted.T89.H802",
        "qcdc.v1.deadletter.reports.reports",  # the province instance's dead letters
        "qcdc.v1.rpc.report.submit.T89.H802.X80201",
    ]:
        await district.refused(subject)
    assert not district.nc.is_closed  # refusals do not cost the connection


async def test_a_district_says_only_the_event_names_it_owns(connect: Connect) -> None:
    """Event names are granted one by one from the catalogue: a name nobody defined is
    refused under the district's own path, and so is a review of the district's own report
    (Home Affairs, on the province's instance, reviews it)."""
    district = await connect("district-H801")
    for subject in [
        "qcdc.v1.report.bogus.T89.H801",
        "qcdc.v1.report.bogus.T89.H801.X80101",
        "qcdc.v1.deadline.forgotten.T89.H801",
        "qcdc.v1.consolidation.retracted.T89.H801",
        "qcdc.v1.report.accepted.T89.H801",
        "qcdc.v1.report.returned.T89.H801",
    ]:
        with pytest.raises(nats.errors.TimeoutError):
            await district.nc.jetstream().publish(subject, b"{}", timeout=REFUSED_WITHIN)
        await district.violation("publish", subject)
    for subject in [
        "qcdc.v1.report.returned.T89.H801.X80101",
        "qcdc.v1.deadline.missed.T89.H801",
        "qcdc.v1.consolidation.published.T89.H801",
    ]:
        assert (await district.publish_acked(subject)).seq > 0, subject


async def test_a_district_hears_and_answers_only_its_own_submissions(connect: Connect) -> None:
    district = await connect("district-H801")

    async def answer(msg: Msg) -> None:
        await msg.respond(b'{"receipt_number": "BC-H801-1"}')  # allowed: a reply, once

    await district.nc.subscribe("qcdc.v1.rpc.report.submit.T89.H801.>", cb=answer)
    await district.nc.subscribe("qcdc.v1.rpc.report.submit.>")
    await district.violation("subscription", "qcdc.v1.rpc.report.submit.>")

    admin = await connect("admin")
    reply = await admin.nc.request("qcdc.v1.rpc.report.submit.T89.H801.X80101", b"{}", timeout=5)
    assert reply.data == b'{"receipt_number": "BC-H801-1"}'
    # An inbox nobody asked it to answer is not a reply: refused.
    await district.refused("_INBOX.somebody-else")


async def test_a_district_uses_its_own_consumers_and_not_the_provinces(connect: Connect) -> None:
    district = await connect("district-H801")
    await district.publish_acked("qcdc.v1.report.submitted.T89.H801.X80101")
    js = district.nc.jetstream()
    own = await js.pull_subscribe(
        "qcdc.v1.report.>",
        durable="reports-H801-reports",
        stream=REPORTS.name,
        config=ConsumerConfig(durable_name="reports-H801-reports"),
    )
    messages = await own.fetch(1, timeout=5)
    await messages[0].ack_sync()

    await district.out_of_reach("reports-reports")


async def test_an_integrator_reads_everything_and_publishes_nothing(connect: Connect) -> None:
    integrator = await connect("integrator-dash")
    heard = await integrator.hear("qcdc.v1.>")
    plans = await connect("svc-plans")
    await plans.publish_acked("qcdc.v1.plan.amended.T89")
    assert (await asyncio.wait_for(heard.get(), 5)).subject == "qcdc.v1.plan.amended.T89"

    reports = await connect("svc-reports")
    await reports.publish_acked("qcdc.v1.report.returned.T89.H802.X80201")
    js = integrator.nc.jetstream()
    assert (await js.stream_info(REPORTS.name)).state.messages >= 1
    reader = await js.pull_subscribe(
        "qcdc.v1.report.>", durable="integrator-dash", stream=REPORTS.name
    )
    history = await reader.fetch(1, timeout=5)
    assert history[0].subject.startswith("qcdc.v1.report.")
    await history[0].ack_sync()

    await integrator.refused("qcdc.v1.report.submitted.T89.H801")
    with pytest.raises(nats.errors.TimeoutError):
        await js.publish("qcdc.v1.report.submitted.T89.H801.X80101", b"{}", timeout=REFUSED_WITHIN)
    await integrator.out_of_reach("notify-reports")


async def test_the_portal_hears_reports_and_publishes_nothing(connect: Connect) -> None:
    portal = await connect("svc-portal")
    heard = await portal.hear(*PORTAL_SUBJECTS)
    reports = await connect("svc-reports")
    await reports.publish_acked("qcdc.v1.report.accepted.T89.H802.X80201")
    assert (await asyncio.wait_for(heard.get(), 5)).subject.startswith("qcdc.v1.report.accepted")

    await portal.refused("qcdc.v1.report.submitted.T89.H801")
    await portal.nc.subscribe("qcdc.v1.plan.>")
    await portal.violation("subscription", "qcdc.v1.plan.>")


def test_the_generated_files_are_secret(tmp_path: Path) -> None:
    bundle = nats_auth.credentials(principals(REGISTRY), existing={})
    nats_auth.write_bundle(tmp_path / "out", bundle)
    files = [tmp_path / "out" / "auth.conf", *(tmp_path / "out" / "credentials").iterdir()]
    assert {f.stat().st_mode & 0o777 for f in files} == {0o600}
    env = nats_auth.read_env_file(tmp_path / "out" / "credentials" / "district-H801.env")
    assert env["QCDC_NATS_USER"] == "district-H801" and env["QCDC_SCOPE"] == "H801"
    assert env["QCDC_BUS_PROVISION"] == "false"
    again = nats_auth.credentials(
        principals(REGISTRY), nats_auth.existing_passwords(tmp_path / "out"), ["svc-notify"]
    )
    kept = {c.user: c.password for c in again}
    before = {c.user: c.password for c in bundle}
    assert kept["svc-plans"] == before["svc-plans"]
    assert kept["svc-notify"] != before["svc-notify"]


def test_the_compose_nats_config_loads_the_generated_users(tmp_path: Path) -> None:
    """deploy/nats/nats-server.conf includes what `qcdc nats config --out …/generated`
    writes beside it, and compose hands each service its generated env file."""
    root = Path(__file__).resolve().parents[2]
    deploy = tmp_path / "nats"
    deploy.mkdir()
    shutil.copy(root / "deploy" / "nats" / "nats-server.conf", deploy)
    conf = deploy / "nats-server.conf"
    assert _config_test(conf).returncode != 0  # without generated users it refuses to start
    bundle = nats_auth.credentials(principals(REGISTRY), existing={})
    nats_auth.write_bundle(deploy / "generated", bundle)
    checked = _config_test(conf)
    assert checked.returncode == 0, checked.stderr

    compose = yaml.safe_load((root / "compose.yaml").read_text(encoding="utf-8"))
    for name, user in [
        ("provision", "admin"),
        ("plans", "svc-plans"),
        ("reports", "svc-reports"),
        ("notify", "svc-notify"),
    ]:
        env_file = compose["services"][name]["env_file"]
        assert env_file == f"./deploy/nats/generated/credentials/{user}.env", name
        assert (deploy / "generated" / "credentials" / f"{user}.env").is_file()


def _config_test(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(nats_server_binary()), "-c", str(conf), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


UNITS_YAML = """\
- {code: T89, name: "Ủy ban nhân dân tỉnh An Bình", kind: province}
- {code: H801, name: "Ủy ban nhân dân huyện Tân Phú", kind: district, parent_code: T89}
- {code: X80101, name: "Ủy ban nhân dân xã Tân An", kind: commune, parent_code: H801}
- {code: X80201, name: "Ủy ban nhân dân xã Long Hòa", kind: commune, parent_code: T89}
"""


def test_qcdc_nats_config_from_a_registry_export(tmp_path: Path) -> None:
    units = tmp_path / "units.yaml"
    units.write_text(UNITS_YAML, encoding="utf-8")
    out = tmp_path / "generated"
    args = ["nats", "config", "--units", str(units), "--out", str(out)]
    first = CliRunner().invoke(app, [*args, "--district", "X80201", "--integrator", "dash"])
    assert first.exit_code == 0, first.output
    users = {p.stem for p in (out / "credentials").iterdir()}
    assert users == {
        "svc-plans",
        "svc-reports",
        "svc-notify",
        "district-H801",  # by kind
        "district-X80201",  # named: a two-level province delegates any subtree
        "integrator-dash",
        "svc-portal",
        "admin",
    }
    auth = (out / "auth.conf").read_text(encoding="utf-8")
    assert '"qcdc.v1.report.submitted.T89.X80201.>"' in auth
    assert '"qcdc.v1.report.*.' not in auth  # event names are listed, never a wildcard
    before = nats_auth.existing_passwords(out)

    again = CliRunner().invoke(app, [*args, "--rotate", "svc-notify"])
    assert again.exit_code == 0, again.output
    after = nats_auth.existing_passwords(out)
    assert set(after) == set(before) - {"district-X80201", "integrator-dash"}  # revoked
    assert {user for user in after if after[user] != before[user]} == {"svc-notify"}
    unknown = CliRunner().invoke(app, [*args, "--rotate", "integrator-dash"])
    assert unknown.exit_code == 1 and "no user integrator-dash" in unknown.output

    orphan = tmp_path / "subtree.yaml"
    orphan.write_text(UNITS_YAML.split("\n", 1)[1], encoding="utf-8")
    refused = CliRunner().invoke(app, ["nats", "config", "--units", str(orphan), "--out", str(out)])
    assert refused.exit_code == 1
    assert "parent T89 is not in the registry" in refused.output
