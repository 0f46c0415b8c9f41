"""The idempotent consumer on a real nats-server: dead letters with reasons, the consumer
going on after them, bounded retries, and no second effect for a redelivered event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client

from services.natsd import NatsServer
from services.notify.bootstrap import SERVICE as NOTIFY
from shared.bus.envelope import encode
from shared.events import (
    Contacts,
    ReportSubmitted,
    UnitRegistered,
)
from tests import builders
from tests.stack import sqlite_urls, start_services, stop_services
from tests.support import BusSpy, InProcessService, SmtpInbox

DEAD_LETTERS = "qcdc.v1.deadletter.notify.reports"


def _unit(code: str, email: str) -> UnitRegistered:
    return UnitRegistered(
        unit_path=["T89", code],
        code=code,
        name=f"Sở {code}",
        kind="department",
        parent_code="T89",
        contacts=Contacts(focal_email=email),
    )


def _submitted(unit: str, receipt: str) -> ReportSubmitted:
    return builders.submitted(
        unit,
        report_id=f"r-{receipt}",
        receipt_number=receipt,
        obligation_id="o-1",
        submitted_at=datetime(2023, 6, 1, 3, 0, tzinfo=UTC),
    )


async def publish(
    nc: Client,
    event: UnitRegistered | ReportSubmitted,
    event_id: str | None = None,
    msg_id: str | None = None,
) -> str:
    subject, headers, body = encode(event, source="/test", correlation_id="c-1", event_id=event_id)
    if msg_id:
        headers["Nats-Msg-Id"] = msg_id
    await nc.jetstream().publish(subject, body, headers=headers)
    return headers["ce-id"]


@pytest.fixture
async def notify(
    nats_server: NatsServer, tmp_path: Path, smtp_inbox: SmtpInbox
) -> AsyncIterator[InProcessService]:
    running = await start_services(
        (NOTIFY,),
        sqlite_urls(tmp_path),
        nats_url=nats_server.url,
        smtp_port=smtp_inbox.port,
        consumer_max_deliver=3,
        delivery_poll_seconds=0.05,
    )
    yield running["notify"]
    await stop_services(running)


async def test_malformed_messages_are_dead_lettered_with_a_reason_and_the_next_is_handled(
    notify: InProcessService, nc: Client, bus_spy: BusSpy, smtp_inbox: SmtpInbox
) -> None:
    js = nc.jetstream()
    await publish(nc, _unit("STP", "stp@demo.gov.vn"))
    good_subject, good_headers, _ = encode(
        _submitted("STP", "BC-1"), source="/t", correlation_id="c"
    )
    await js.publish(good_subject, b"{not json", headers={**good_headers, "Nats-Msg-Id": "m1"})
    await js.publish(good_subject, b"{}", headers={"Nats-Msg-Id": "m2"})
    await js.publish(
        "qcdc.v1.report.submitted.T89.OTHER",
        _submitted("STP", "BC-1").model_dump_json().encode(),
        headers={**good_headers, "Nats-Msg-Id": "m3", "ce-id": "m3"},
    )
    await publish(nc, _submitted("STP", "BC-2"))

    mail = await smtp_inbox.wait_for(lambda items: len(items) >= 1)
    assert "BC-2" in mail[0].subject
    dead = await bus_spy.wait_for(
        lambda items: len([s for s in items if s.subject == DEAD_LETTERS]) >= 3
    )
    reasons = [s.headers["qcdc-deadletter-reason"] for s in dead if s.subject == DEAD_LETTERS]
    assert any("body is not a valid ReportSubmitted" in r for r in reasons)
    assert any("missing CloudEvents header(s): ce-specversion, ce-id" in r for r in reasons)
    assert any("does not match the event's unit path" in r for r in reasons)
    originals = {s.headers["qcdc-original-subject"] for s in dead if s.subject == DEAD_LETTERS}
    assert "qcdc.v1.report.submitted.T89.OTHER" in originals
    stored = await js.get_last_msg("QCDC_DEADLETTER", DEAD_LETTERS)
    assert stored.headers is not None and "qcdc-deadletter-reason" in stored.headers


async def test_a_failing_handler_is_retried_then_dead_lettered(
    notify: InProcessService, nc: Client, bus_spy: BusSpy, smtp_inbox: SmtpInbox
) -> None:
    # No UnitRegistered for UNKNOWN: the receipt cannot be addressed; after three attempts
    # the event goes to the dead letters, and a later event is still handled.
    await publish(nc, _submitted("UNKNOWN", "BC-9"))
    dead = await bus_spy.wait_for(lambda items: any(s.subject == DEAD_LETTERS for s in items))
    letter = next(s for s in dead if s.subject == DEAD_LETTERS)
    assert letter.headers["qcdc-deliveries"] == "3"
    assert "gave up after 3 attempts" in letter.headers["qcdc-deadletter-reason"]
    assert "no contacts known yet for unit UNKNOWN" in letter.headers["qcdc-deadletter-reason"]
    assert json.loads(letter.data)["receipt_number"] == "BC-9"
    await publish(nc, _unit("STP", "stp@demo.gov.vn"))
    await publish(nc, _submitted("STP", "BC-10"))
    mail = await smtp_inbox.wait_for(lambda items: len(items) >= 1)
    assert "BC-10" in mail[0].subject


async def test_an_event_delivered_twice_has_one_effect(
    notify: InProcessService, nc: Client, bus_spy: BusSpy, smtp_inbox: SmtpInbox
) -> None:
    await publish(nc, _unit("STP", "stp@demo.gov.vn"))
    event = _submitted("STP", "BC-3")
    # The same event (same ce-id) published again past JetStream's dedupe, as a replay
    # after the duplicate window would: the inbox must drop it.
    first = await publish(nc, event, msg_id="first-publish")
    await publish(nc, event, event_id=first, msg_id="replayed-publish")
    await publish(nc, _submitted("STP", "BC-4"))
    mail = await smtp_inbox.wait_for(lambda items: len(items) >= 2)
    await bus_spy.wait_for_type("qcdc.notification.delivered.v1", count=2)
    subjects = sorted(m.subject for m in mail)
    assert len(subjects) == 2
    assert "BC-3" in subjects[0] and "BC-4" in subjects[1]
