"""Recommendations after supervision over the real bus: plans, reports and notify in-process
on a real nats-server, notify mailing a real SMTP server. The units come from the plans
service's registry; a recommendation registered over HTTP goes out on
``qcdc.v1.recommendation.registered.<path>`` with its CloudEvents headers, and the addressed
commune is mailed; its answer goes out too, and the unit that registered it is mailed the
answer (in open mode the commune registers what it received, so both mails go to it)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from services.natsd import NatsServer, free_port
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared.clock import ManualClock
from shared.vntime import ICT
from tests.integration.test_plan_lifecycle import UNITS
from tests.stack import start_services, stop_services
from tests.support import BusSpy, InProcessService, SmtpInbox, created_once_known

COMMUNE = "X80101"
FOCAL = "vanphong@tanan.gov.vn"
REGISTERED = "qcdc.recommendation.registered.v1"
ANSWERED = "qcdc.recommendation.answered.v1"


@dataclass
class System:
    plans: InProcessService
    reports: InProcessService
    inbox: SmtpInbox


@pytest.fixture
async def system(nats_server: NatsServer, database_urls: dict[str, str]) -> AsyncIterator[System]:
    inbox = SmtpInbox(asyncio.get_running_loop(), free_port())
    inbox.start()
    clock = ManualClock(datetime(2023, 3, 6, 9, 0, tzinfo=ICT).astimezone(UTC))
    extra: dict[str, dict[str, Any]] = {
        "reports": {"clock_interval_seconds": 3600},
        "notify": {"smtp_port": inbox.port, "delivery_poll_seconds": 0.05},
    }
    running = await start_services(
        (PLANS, REPORTS, NOTIFY), database_urls, clock, extra, nats_url=nats_server.url
    )
    yield System(running["plans"], running["reports"], inbox)
    await stop_services(running)
    inbox.stop()


async def test_a_recommendation_and_its_answer_travel_the_bus_and_reach_the_commune(
    system: System, bus_spy: BusSpy
) -> None:
    async with system.plans.client() as plans:
        for unit in UNITS:
            contacts = {"focal_email": FOCAL} if unit["code"] == COMMUNE else {}
            response = await plans.post("/units", json={**unit, "contacts": contacts})
            assert response.status_code == 201, response.text
    body = {
        "source_organisation": "Ban Thường trực Ủy ban MTTQ Việt Nam xã Tân An",
        "topic": "Công khai thu, chi quỹ đầu tư xây dựng",
        "content": "Đề nghị niêm yết công khai theo quý.",
        "addressed_unit": COMMUNE,
        "received_on": "2023-03-06",
    }
    async with system.reports.client() as reports:
        # The reports service knows the units once their UnitRegistered have arrived.
        found = await created_once_known(reports, "/recommendations", body)
        answer = {"answer": "Ủy ban nhân dân xã tiếp thu, niêm yết từ quý II."}
        response = await reports.post(f"/recommendations/{found['id']}/answer", json=answer)
        assert response.status_code == 200, response.text

    (seen,) = await bus_spy.wait_for_type(REGISTERED)
    assert seen.subject == f"qcdc.v1.recommendation.registered.T89.H801.{COMMUNE}"
    assert seen.headers["ce-source"] == "/qcdc/reports"
    assert seen.headers["Nats-Msg-Id"] == seen.headers["ce-id"]
    event = json.loads(seen.data)
    assert (event["recommendation_id"], event["obligation_id"]) == (
        found["id"],
        found["obligation_id"],
    )
    (answered,) = await bus_spy.wait_for_type(ANSWERED)
    assert json.loads(answered.data)["on_time"] is True

    (mail,) = await system.inbox.wait_for_subject("[Kiến nghị sau giám sát]")
    assert FOCAL in mail.recipients
    assert "trả lời trước hết ngày 05/04/2023" in mail.subject
    (reply,) = await system.inbox.wait_for_subject("[Trả lời kiến nghị]")
    assert FOCAL in reply.recipients and "niêm yết từ quý II" in reply.text
