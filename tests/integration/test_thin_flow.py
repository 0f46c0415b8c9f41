"""The thin flow through all three services, in-process, on a real bus, real HTTP and SMTP,
on SQLite and on PostgreSQL: units and a plan → obligations → a report → a receipt e-mail."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.natsd import NatsServer
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared.clock import ManualClock
from tests.bodies import report_body
from tests.integration.scenario import obligated_codes, register_units_and_issue_plan
from tests.stack import start_services, stop_services
from tests.support import BusSpy, SmtpInbox, eventually

LAST_ON_TIME = datetime(2023, 6, 9, 16, 59, 59, tzinfo=UTC)  # 09/06/2023 23:59:59 ICT
FIRST_LATE = datetime(2023, 6, 9, 17, 0, 0, tzinfo=UTC)  # 10/06/2023 00:00:00 ICT
RECEIPT = "[Xác nhận]"


@pytest.fixture
async def system(
    nats_server: NatsServer, database_urls: dict[str, str], smtp_inbox: SmtpInbox
) -> AsyncIterator[dict[str, Any]]:
    clock = ManualClock(LAST_ON_TIME)
    mail = {"notify": {"smtp_port": smtp_inbox.port, "delivery_poll_seconds": 0.05}}
    services = await start_services(
        (PLANS, REPORTS, NOTIFY), database_urls, clock, mail, nats_url=nats_server.url
    )
    yield {"clock": clock, **services}
    await stop_services(services)


async def _open_obligation(reports: httpx.AsyncClient, unit: str) -> dict[str, Any]:
    async def probe() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await reports.get("/obligations")).json()
        return found if {o["unit_code"] for o in found} >= obligated_codes() else []

    obligations = await eventually(probe)
    return next(o for o in obligations if o["unit_code"] == unit)


async def test_report_over_http_gives_a_vietnamese_receipt_to_the_unit(
    system: dict[str, Any], smtp_inbox: SmtpInbox, bus_spy: BusSpy
) -> None:
    async with system["plans"].client() as plans, system["reports"].client() as reports:
        await register_units_and_issue_plan(plans)
        obligation = await _open_obligation(reports, "STP")
        assert obligation["due_at"] == "2023-06-09T16:59:59.999999Z"
        response = await reports.post(
            "/reports",
            json=report_body(
                obligation["id"], "STP", narrative={"1": "Đã quán triệt Quy chế dân chủ."}
            ),
            headers={"X-Correlation-Id": "corr-thin-flow", "Idempotency-Key": "stp-2023-6m"},
        )
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["on_time"] is True

    # Issuing the plan also mails every assignee; the receipt is the one marked "[Xác nhận]".
    mail = (await smtp_inbox.wait_for_subject(RECEIPT))[0]
    assert mail.recipients == ["dauMoi@stp.anbinh.demo.gov.vn"]
    assert receipt["receipt_number"] in mail.subject
    assert "báo cáo 6 tháng" in mail.subject
    assert "Kính gửi: Sở Tư pháp" in mail.text
    assert "Hạn nộp: trước ngày 10/06/2023" in mail.text
    assert "Kỳ số liệu: từ ngày 15/12/2022 đến ngày 08/06/2023" in mail.text
    assert "Thời điểm tiếp nhận: 23:59 09/06/2023" in mail.text
    assert "Tình trạng: Đúng hạn" in mail.text

    def receipt_delivered(_items: list[Any]) -> list[Any]:
        return [
            seen
            for seen in bus_spy.of_type("qcdc.notification.delivered.v1")
            if json.loads(seen.data)["event_type"] == "qcdc.report.submitted.v1"
        ]

    await bus_spy.wait_for(lambda items: bool(receipt_delivered(items)))
    delivered = receipt_delivered(bus_spy.items)
    submitted = bus_spy.of_type("qcdc.report.submitted.v1")
    assert len(submitted) == 1
    assert submitted[0].subject == "qcdc.v1.report.submitted.T89.STP"
    for seen in (submitted[0], delivered[0]):
        assert seen.headers["ce-correlationid"] == "corr-thin-flow"
        assert seen.headers["Nats-Msg-Id"] == seen.headers["ce-id"]
        assert seen.headers["ce-specversion"] == "1.0"
        assert seen.headers["content-type"] == "application/json"
    body = json.loads(submitted[0].data)
    assert body["receipt_number"] == receipt["receipt_number"]
    assert body["obligation"]["unit_code"] == "STP"


async def test_a_report_at_midnight_ict_on_the_deadline_day_is_late(
    system: dict[str, Any], smtp_inbox: SmtpInbox
) -> None:
    async with system["plans"].client() as plans, system["reports"].client() as reports:
        await register_units_and_issue_plan(plans)
        obligation = await _open_obligation(reports, "X30337")
        system["clock"].set(FIRST_LATE)
        response = await reports.post(
            "/reports", json={"obligation_id": obligation["id"], "unit_code": "X30337"}
        )
    assert response.status_code == 201
    assert response.json()["on_time"] is False
    mail = (await smtp_inbox.wait_for_subject(RECEIPT))[0]
    assert "Tình trạng: Quá hạn" in mail.text
    assert mail.recipients == ["vanphong@myhoahung.demo.gov.vn"]


async def test_a_retried_submission_returns_the_same_receipt(system: dict[str, Any]) -> None:
    async with system["plans"].client() as plans, system["reports"].client() as reports:
        await register_units_and_issue_plan(plans)
        obligation = await _open_obligation(reports, "STP")
        body = {"obligation_id": obligation["id"], "unit_code": "STP"}
        first = await reports.post("/reports", json=body, headers={"Idempotency-Key": "k-1"})
        again = await reports.post("/reports", json=body, headers={"Idempotency-Key": "k-1"})
        other = await reports.post("/reports", json=body, headers={"Idempotency-Key": "k-2"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json() == first.json()
    assert other.json()["version"] == 2
    assert other.json()["receipt_number"] != first.json()["receipt_number"]


async def test_bad_requests_get_a_clear_4xx(system: dict[str, Any]) -> None:
    async with system["plans"].client() as plans, system["reports"].client() as reports:
        await register_units_and_issue_plan(plans)
        obligation = await _open_obligation(reports, "STP")
        bad_code = await plans.post(
            "/units", json={"code": "bad code!", "name": "X", "kind": "commune"}
        )
        unknown_parent = await plans.post(
            "/units",
            json={"code": "X1", "name": "Xã Một", "kind": "commune", "parent_code": "NOPE"},
        )
        duplicate = await plans.post(
            "/units", json={"code": "STP", "name": "Sở Tư pháp", "kind": "department"}
        )
        wrong_unit = await reports.post(
            "/reports", json={"obligation_id": obligation["id"], "unit_code": "X30337"}
        )
        no_obligation = await reports.post(
            "/reports", json={"obligation_id": "missing", "unit_code": "STP"}
        )
        unknown_field = await reports.post(
            "/reports", json={"obligation_id": obligation["id"], "unit_code": "STP", "x": 1}
        )
    assert bad_code.status_code == 422
    assert bad_code.json()["error"]["errors"][0]["field"] == "code"
    assert unknown_parent.status_code == 422
    assert unknown_parent.json()["error"]["field"] == "parent_code"
    assert duplicate.status_code == 409
    assert wrong_unit.status_code == 422
    assert "belongs to unit STP" in wrong_unit.json()["error"]["message"]
    assert no_obligation.status_code == 404
    assert unknown_field.status_code == 422
    assert unknown_field.json()["error"]["errors"][0]["field"] == "x"
