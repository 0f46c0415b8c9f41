"""The operator's tools, run as the operator runs them (``python -m services …``) against a
real nats-server, SQLite databases, notify and an SMTP server: ``qcdc doctor`` names what is
wrong in plain words, and ``qcdc deadletters`` shows a dead letter and, once its cause is
fixed, sends it back so that its message goes out exactly once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from nats.js.client import JetStreamContext

from services.natsd import NatsServer
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared.bus.envelope import encode
from shared.bus.streams import DEAD_LETTER
from shared.bus.streams import PLANS as PLANS_STREAM
from shared.events import (
    Contacts,
    Event,
    ReportSubmitted,
    UnitRegistered,
)
from shared.service import ServiceDefinition
from tests import builders
from tests.support import InProcessService, SmtpInbox, eventually, patience, service_settings

UNIT = "X00001"


def _qcdc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=patience(60),
        check=False,
    )


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("QCDC_")}


def _units() -> list[UnitRegistered]:
    return [
        UnitRegistered(
            unit_path=["T89", "SNV"],
            code="SNV",
            name="Sở Nội vụ",
            kind="department",
            tags=["home_affairs"],
            contacts=Contacts(focal_email="vanphong@snv.demo.gov.vn"),
        ),
        UnitRegistered(
            unit_path=["T89", UNIT],
            code=UNIT,
            name="Ủy ban nhân dân xã Một",
            kind="commune",
            reports_to_code="SNV",
            contacts=Contacts(focal_email="xamot@demo.gov.vn"),
        ),
    ]


def _submitted() -> ReportSubmitted:
    return builders.submitted(UNIT, report_id="r-1", receipt_number=f"{UNIT}-2023-0001")


async def _publish(js: JetStreamContext, event: Event) -> None:
    subject, headers, body = encode(event, source="/qcdc/tests", correlation_id="operator")
    await js.publish(subject, body, headers=headers)


async def _migrate(definition: ServiceDefinition, data_dir: Path) -> None:
    runtime = definition.runtime(definition.settings_type(data_dir=str(data_dir)))
    await runtime.migrate()
    await runtime.engine.dispose()


def _step_back(database: Path, migrations: Path) -> None:
    """As if the code had been upgraded and its new migration not yet applied."""
    config = Config()
    config.set_main_option("script_location", str(migrations))
    head = ScriptDirectory.from_config(config).get_revision("head")
    assert head is not None and isinstance(head.down_revision, str)
    with sqlite3.connect(database) as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (head.down_revision,))


async def _caught_up(js: JetStreamContext, stream: str) -> bool:
    return all(
        c.num_pending == 0 and c.num_ack_pending == 0 for c in await js.consumers_info(stream)
    )


@pytest.fixture
async def notify(
    nats_server: NatsServer, tmp_path: Path, smtp_inbox: SmtpInbox
) -> AsyncIterator[InProcessService]:
    settings = service_settings(
        NOTIFY,
        nats_url=nats_server.url,
        data_dir=str(tmp_path),
        smtp_port=smtp_inbox.port,
        # The first failure is final: the message goes to the dead letters at once.
        consumer_max_deliver=1,
    )
    service = await InProcessService(NOTIFY, settings).start()
    yield service
    await service.stop()


async def test_doctor_and_dead_letters_as_an_operator_uses_them(
    nats_server: NatsServer,
    tmp_path: Path,
    smtp_inbox: SmtpInbox,
    notify: InProcessService,
    js: JetStreamContext,
) -> None:
    env = {
        "QCDC_NATS_URL": nats_server.url,
        "QCDC_DATA_DIR": str(tmp_path),
        "QCDC_SMTP_PORT": str(smtp_inbox.port),
    }
    for definition in (PLANS, REPORTS):
        await _migrate(definition, tmp_path)
    healthy = _qcdc(env, "doctor")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "All is well" in healthy.stdout

    # A receipt for a unit notify does not know yet: given up on, dead-lettered.
    await _publish(js, _submitted())

    async def dead_lettered() -> bool:
        return (await js.stream_info(DEAD_LETTER.name)).state.messages == 1

    await eventually(dead_lettered)
    _step_back(tmp_path / "reports.db", REPORTS.migrations)
    unwell = _qcdc(env, "doctor")
    assert unwell.returncode == 1
    assert "✗ dead letters: 1 waiting" in unwell.stdout
    assert "no contacts known yet for unit X00001" in unwell.stdout
    assert "✗ reports database: migrations pending" in unwell.stdout
    assert "✓ plans database" in unwell.stdout

    listed = _qcdc(env, "deadletters", "list", "--json")
    [letter] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert letter["event_type"] == "qcdc.report.submitted.v1"
    assert letter["retried"] is False
    shown = _qcdc(env, "deadletters", "show", str(letter["sequence"]))
    assert f'"receipt_number": "{UNIT}-2023-0001"' in shown.stdout

    # The cause fixed: notify learns the units; the letter is sent back, twice by mistake.
    for unit in _units():
        await _publish(js, unit)
    await eventually(lambda: _caught_up(js, PLANS_STREAM.name))
    for _ in range(2):
        sent_back = _qcdc(env, "deadletters", "retry", str(letter["sequence"]))
        assert sent_back.returncode == 0, sent_back.stderr
    await smtp_inbox.wait_for(lambda mails: any(UNIT in m.subject for m in mails))
    await eventually(lambda: _caught_up(js, DEAD_LETTER.name))
    receipts = [m for m in smtp_inbox.items if "xamot@demo.gov.vn" in m.recipients]
    assert len(receipts) == 1
    again = json.loads(_qcdc(env, "deadletters", "list", "--json").stdout.splitlines()[0])
    assert again["retried"] is True

    nats_server.stop()
    no_bus = _qcdc(env, "doctor")
    assert no_bus.returncode == 1
    assert "✗ NATS: NATS at" in no_bus.stdout and "does not answer" in no_bus.stdout
