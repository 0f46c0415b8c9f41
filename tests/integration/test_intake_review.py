"""Report intake and review on a real bus and real HTTP: indicator rules, versions,
attachments, submissions over NATS request-reply, accept and return across two levels."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from services.natsd import NatsServer
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from tests.bodies import district_plan, report_body
from tests.integration.test_plan_lifecycle import _issue_province_plan
from tests.stack import obligation_of, start_services, stop_services
from tests.support import BusSpy, InProcessService, patience

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
async def services(
    nats_server: NatsServer, database_urls: dict[str, str]
) -> AsyncIterator[dict[str, InProcessService]]:
    small = {"reports": {"attachment_max_bytes": 1024}}
    running = await start_services(
        (PLANS, REPORTS), database_urls, extra=small, nats_url=nats_server.url
    )
    yield running
    await stop_services(running)


async def _obligation_of(reports: httpx.AsyncClient, unit: str, key: str = "six_month") -> Any:
    return await obligation_of(reports, unit, key)


async def _department_obligation(plans: httpx.AsyncClient, reports: httpx.AsyncClient) -> Any:
    """Issue the province's plan: the six-month obligation it gives the department T89-STP."""
    await _issue_province_plan(plans)
    return await _obligation_of(reports, "T89-STP")


async def test_indicator_rules_give_field_level_errors(
    services: dict[str, InProcessService],
) -> None:
    async with services["plans"].client() as plans, services["reports"].client() as reports:
        obligation = await _department_obligation(plans, reports)
        response = await reports.post(
            "/reports",
            json={
                "obligation_id": obligation["id"],
                "unit_code": "T89-STP",
                "indicators": {
                    "complaints_received": 3,
                    "complaints_resolved": 5,
                    "citizens_received": -1,
                    "made_up": 1,
                },
            },
        )
    assert response.status_code == 422
    errors = {e["field"]: e["message"] for e in response.json()["error"]["errors"]}
    assert set(errors) == {
        "indicators.complaints_resolved",
        "indicators.citizens_received",
        "indicators.made_up",
    }
    assert "exceeds" in errors["indicators.complaints_resolved"]
    assert errors["indicators.citizens_received"] == "must not be negative"


async def test_versions_review_and_return_across_two_levels(
    services: dict[str, InProcessService], bus_spy: BusSpy
) -> None:
    async with services["plans"].client() as plans, services["reports"].client() as reports:
        parent = await _issue_province_plan(plans)
        district = (await plans.post("/plans", json=district_plan(parent["id"]))).json()
        assert (await plans.post(f"/plans/{district['id']}/issue")).status_code == 200
        commune = await _obligation_of(reports, "X80101")
        first = (
            await reports.post(
                "/reports", json={"obligation_id": commune["id"], "unit_code": "X80101"}
            )
        ).json()
        second = (
            await reports.post(
                "/reports",
                json=report_body(commune["id"], "X80101", indicators={"reception_sessions": 12}),
            )
        ).json()
        stale = await reports.post(
            f"/reports/{first['report_id']}/accept", json={"reviewer_unit": "H801"}
        )
        wrong_reviewer = await reports.post(
            f"/reports/{second['report_id']}/accept", json={"reviewer_unit": "T89-SNV"}
        )
        returned = await reports.post(
            f"/reports/{second['report_id']}/return",
            json={"reviewer_unit": "H801", "reason": "Thiếu số liệu tiếp công dân quý II"},
        )
        reopened = (await reports.get(f"/obligations/{commune['id']}")).json()
        third = (
            await reports.post(
                "/reports", json={"obligation_id": commune["id"], "unit_code": "X80101"}
            )
        ).json()
        accepted = await reports.post(
            f"/reports/{third['report_id']}/accept", json={"reviewer_unit": "H801"}
        )
        versions = (await reports.get(f"/obligations/{commune['id']}/reports")).json()
        # The district's own report is reviewed by Home Affairs.
        own = await _obligation_of(reports, "H801")
        own_report = (
            await reports.post("/reports", json={"obligation_id": own["id"], "unit_code": "H801"})
        ).json()
        by_snv = await reports.post(
            f"/reports/{own_report['report_id']}/accept", json={"reviewer_unit": "T89-SNV"}
        )
    assert (first["version"], second["version"], third["version"]) == (1, 2, 3)
    assert stale.status_code == 422 and "replaced by version 2" in stale.json()["error"]["message"]
    assert wrong_reviewer.status_code == 422
    assert wrong_reviewer.json()["error"]["field"] == "reviewer_unit"
    assert returned.status_code == 200 and returned.json()["status"] == "returned"
    assert reopened["status"] == "returned"
    assert accepted.json()["status"] == "accepted"
    assert [v["status"] for v in versions] == ["submitted", "returned", "accepted"]
    assert by_snv.status_code == 200
    back = json.loads((await bus_spy.wait_for_type("qcdc.report.returned.v1"))[0].data)
    assert back["reason"] == "Thiếu số liệu tiếp công dân quý II"
    assert back["reviewed_by_unit"] == "H801"
    accepted_events = await bus_spy.wait_for_type("qcdc.report.accepted.v1", count=2)
    assert {e.subject for e in accepted_events} == {
        "qcdc.v1.report.accepted.T89.H801.X80101",
        "qcdc.v1.report.accepted.T89.H801",
    }


async def test_attachments_are_checked_hashed_and_kept(
    services: dict[str, InProcessService],
) -> None:
    async with services["plans"].client() as plans, services["reports"].client() as reports:
        obligation = await _department_obligation(plans, reports)
        report = (
            await reports.post(
                "/reports", json={"obligation_id": obligation["id"], "unit_code": "T89-STP"}
            )
        ).json()
        url = f"/reports/{report['report_id']}/attachments"
        stored = await reports.put(
            f"{url}/bao-cao-6-thang.pdf", content=PDF, headers={"content-type": "application/pdf"}
        )
        not_pdf = await reports.put(
            f"{url}/x.pdf", content=b"hello", headers={"content-type": "application/pdf"}
        )
        exe = await reports.put(
            f"{url}/x.exe", content=b"MZ", headers={"content-type": "application/x-msdownload"}
        )
        too_big = await reports.put(
            f"{url}/big.pdf",
            content=b"%PDF-" + b"0" * 2000,
            headers={"content-type": "application/pdf"},
        )
        escape = await reports.put(
            f"{url}/..%2F..%2Fetc%2Fpasswd",
            content=PDF,
            headers={"content-type": "application/pdf"},
        )
    assert stored.status_code == 201, stored.text
    assert stored.json()["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert stored.json()["size"] == len(PDF)
    data_dir = services["reports"].settings.data_dir
    sha = hashlib.sha256(PDF).hexdigest()
    assert (Path(data_dir) / "attachments" / sha[:2] / sha).read_bytes() == PDF
    assert not_pdf.status_code == 422 and not_pdf.json()["error"]["field"] == "content"
    assert exe.status_code == 422 and exe.json()["error"]["field"] == "content_type"
    assert too_big.status_code == 413
    assert escape.status_code in (404, 422)


async def test_submission_over_nats_request_reply_is_idempotent(
    services: dict[str, InProcessService], nats_server: NatsServer
) -> None:
    async with services["plans"].client() as plans, services["reports"].client() as reports:
        obligation = await _department_obligation(plans, reports)
    nc = await nats.connect(nats_server.url)
    try:
        body = json.dumps(
            {
                "obligation_id": obligation["id"],
                "unit_code": "T89-STP",
                "idempotency_key": "bus-1",
                "indicators": {"conferences_held": 1},
            }
        ).encode()
        subject = "qcdc.v1.rpc.report.submit.T89.T89-STP"
        first = json.loads((await nc.request(subject, body, timeout=patience(10))).data)
        again = json.loads((await nc.request(subject, body, timeout=patience(10))).data)
        changed_body = json.loads(body) | {"indicators": {"conferences_held": 2}}
        changed = json.loads(
            (
                await nc.request(subject, json.dumps(changed_body).encode(), timeout=patience(10))
            ).data
        )
        wrong_path = json.loads(
            (
                await nc.request("qcdc.v1.rpc.report.submit.T89.H802", body, timeout=patience(10))
            ).data
        )
        malformed = json.loads((await nc.request(subject, b"{", timeout=patience(10))).data)
    finally:
        await nc.close()
    assert first["receipt_number"] == again["receipt_number"]
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert changed["error"]["field"] == "idempotency_key"  # never the old receipt
    assert "subject does not carry this unit's path" in wrong_path["error"]["message"]
    assert malformed["error"]["message"] == "the request is not valid"
    async with services["reports"].client() as reports:
        versions = (await reports.get(f"/obligations/{obligation['id']}/reports")).json()
    assert len(versions) == 1
    assert versions[0]["indicators"] == {"conferences_held": 1}
    # The receipt's time reads the same over the bus as over HTTP (RFC 3339, UTC, "Z").
    assert first["submitted_at"] == versions[0]["submitted_at"]
    assert first["submitted_at"].endswith("Z")
