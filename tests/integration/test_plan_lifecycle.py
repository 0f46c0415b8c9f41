"""Plan lifecycle across the plans and reports services on a real bus: sub-plans cascade,
amendments change obligations, requests open thematic obligations, history is kept."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.natsd import NatsServer
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared.clock import ManualClock
from tests.bodies import (
    difficulty_body,
    district_plan,
    plan_body,
    province_units,
    schedule_entry,
    unit_below,
)
from tests.stack import issue_plan, start_services, stop_services
from tests.support import BusSpy, InProcessService, eventually

PROVINCE, HOME_AFFAIRS = province_units("T89-SNV")
UNITS: list[dict[str, Any]] = [
    {**PROVINCE, "tags": ["province_committee"]},
    HOME_AFFAIRS,
    unit_below("T89-STP", "Sở Tư pháp", "department", "T89-SNV"),
    unit_below("H801", "Ủy ban nhân dân huyện Tân Phú", "district", "T89-SNV"),
    unit_below("H802", "Ủy ban nhân dân huyện Long Hưng", "district", "T89-SNV"),
    unit_below("X80101", "Ủy ban nhân dân xã Tân An", "commune", "H801", parent_code="H801"),
    unit_below("X80102", "Ủy ban nhân dân thị trấn Tân Phú", "commune", "H801", parent_code="H801"),
    unit_below("X80201", "Ủy ban nhân dân xã Long Hòa", "commune", "H802", parent_code="H802"),
]

ANNUAL = schedule_entry(
    key="annual", kind="annual", period_end="2023-11-18", due_before="2023-11-20"
)
PROVINCE_PLAN: dict[str, Any] = plan_body(
    content_areas=[{"code": "3", "title": "Thực hiện Quy chế dân chủ ở xã, phường, thị trấn"}],
    assignees={"kinds": ["department", "district"], "kinds_via_parent": ["commune"]},
    schedule=[schedule_entry(), ANNUAL],
    sub_plan={"required": True, "due_before": "2023-03-01"},
)


@pytest.fixture
async def services(
    nats_server: NatsServer, database_urls: dict[str, str]
) -> AsyncIterator[dict[str, InProcessService]]:
    # The plans are for 2023: the services live early that year (a request or an
    # amendment may not set a deadline that has passed).
    clock = ManualClock(datetime(2023, 1, 20, 2, 0, tzinfo=UTC))
    running = await start_services((PLANS, REPORTS), database_urls, clock, nats_url=nats_server.url)
    yield running
    await stop_services(running)


async def _issue_province_plan(plans: httpx.AsyncClient) -> dict[str, Any]:
    for unit in UNITS:
        assert (await plans.post("/units", json=unit)).status_code == 201
    draft = await plans.post("/plans", json=PROVINCE_PLAN)
    assert draft.status_code == 201, draft.text
    issued = await plans.post(f"/plans/{draft.json()['id']}/issue", headers={"X-Actor": "snv"})
    assert issued.status_code == 200, issued.text
    plan: dict[str, Any] = issued.json()
    return plan


async def issue_province_and_district_plans(plans: httpx.AsyncClient) -> dict[str, Any]:
    """The province's plan and district H801's sub-plan of it, both issued; the sub-plan."""
    parent = await _issue_province_plan(plans)
    return await issue_plan(plans, district_plan(parent["id"]))


async def _obligations(reports: httpx.AsyncClient, count: int, **params: str) -> list[Any]:
    async def probe() -> list[Any]:
        found: list[Any] = (await reports.get("/obligations", params=params)).json()
        return found if len(found) == count else []

    return list(await eventually(probe))


async def test_communes_are_reached_through_their_districts(
    services: dict[str, InProcessService],
) -> None:
    async with services["plans"].client() as plans:
        plan = await _issue_province_plan(plans)
    assert sorted(plan["assignees"]) == ["H801", "H802", "T89-SNV", "T89-STP"]
    assert plan["schedule"][0]["receiving_unit"] == "T89-SNV"


async def test_a_district_sub_plan_is_registered_and_leaves_the_missing_list(
    services: dict[str, InProcessService], bus_spy: BusSpy
) -> None:
    async with services["plans"].client() as plans, services["reports"].client() as reports:
        parent = await _issue_province_plan(plans)
        before = (await plans.get(f"/plans/{parent['id']}/sub-plans")).json()
        too_late = await plans.post("/plans", json=district_plan(parent["id"], "2023-06-10"))
        refused = await plans.post(f"/plans/{too_late.json()['id']}/issue")
        draft = await plans.post("/plans", json=district_plan(parent["id"]))
        issued = await plans.post(f"/plans/{draft.json()['id']}/issue")
        after = (await plans.get(f"/plans/{parent['id']}/sub-plans")).json()
        commune_obligations = await _obligations(reports, 2, plan_id=draft.json()["id"])
    assert refused.status_code == 422
    assert "no time left to consolidate" in refused.json()["error"]["message"]
    assert issued.status_code == 200, issued.text
    assert sorted(issued.json()["assignees"]) == ["X80101", "X80102"]
    assert sorted(before["missing"]) == ["H801", "H802", "T89-SNV", "T89-STP"]
    assert sorted(after["missing"]) == ["H802", "T89-SNV", "T89-STP"]
    assert [r["unit_code"] for r in after["registered"]] == ["H801"]
    registered = await bus_spy.wait_for_type("qcdc.subplan.registered.v1")
    assert registered[0].subject == "qcdc.v1.subplan.registered.T89.H801"
    body = json.loads(registered[0].data)
    assert body["parent_plan_id"] == parent["id"] and body["plan_id"] == draft.json()["id"]
    assert {o["receiving_unit"] for o in commune_obligations} == {"H801"}
    assert {o["due_at"] for o in commune_obligations} == {"2023-06-04T16:59:59.999999Z"}


async def test_an_amendment_moves_a_deadline_and_adds_an_assignee_in_reports(
    services: dict[str, InProcessService], bus_spy: BusSpy
) -> None:
    async with services["plans"].client() as plans, services["reports"].client() as reports:
        plan = await _issue_province_plan(plans)
        # H801, H802, T89-STP owe two reports each; Home Affairs receives them.
        await _obligations(reports, 6, plan_id=plan["id"])
        amended = await plans.post(
            f"/plans/{plan['id']}/amendments",
            json={
                "reason": "Lùi hạn báo cáo 6 tháng; giao thêm xã Long Hòa",
                "deadlines": {"six_month": "2023-06-20"},
                "add_units": ["X80201"],
            },
            headers={"X-Actor": "snv"},
        )
        assert amended.status_code == 200, amended.text
        obligations = await _obligations(reports, 8, plan_id=plan["id"])
        history = (await plans.get(f"/plans/{plan['id']}/history")).json()
    six_month = [o for o in obligations if o["schedule_key"] == "six_month"]
    assert {o["due_at"] for o in six_month} == {"2023-06-19T16:59:59.999999Z"}
    annual = [o for o in obligations if o["schedule_key"] == "annual"]
    assert {o["due_at"] for o in annual} == {"2023-11-19T16:59:59.999999Z"}
    assert {o["unit_code"] for o in obligations} == {"H801", "H802", "T89-STP", "X80201"}
    assert amended.json()["status"] == "amended"
    assert [h["action"] for h in history] == ["drafted", "issued", "amended"]
    assert history[-1]["actor"] == "snv"
    event = json.loads((await bus_spy.wait_for_type("qcdc.plan.amended.v1"))[0].data)
    assert [a["code"] for a in event["added_assignees"]] == ["X80201"]
    assert event["schedule_changes"][0]["new_due_at"] == "2023-06-19T16:59:59.999999Z"


async def test_removing_an_assignee_waives_what_it_has_not_submitted(
    services: dict[str, InProcessService],
) -> None:
    async with services["plans"].client() as plans, services["reports"].client() as reports:
        plan = await _issue_province_plan(plans)
        obligations = await _obligations(reports, 6, plan_id=plan["id"])
        submitted = next(
            o for o in obligations if o["unit_code"] == "H802" and o["schedule_key"] == "six_month"
        )
        response = await reports.post(
            "/reports", json={"obligation_id": submitted["id"], "unit_code": "H802"}
        )
        assert response.status_code == 201
        amended = await plans.post(
            f"/plans/{plan['id']}/amendments", json={"reason": "Sáp nhập", "remove_units": ["H802"]}
        )
        assert amended.status_code == 200, amended.text

        async def waived() -> list[Any]:
            found: list[Any] = (await reports.get("/obligations", params={"unit": "H802"})).json()
            return found if any(o["status"] == "waived" for o in found) else []

        h802 = {o["schedule_key"]: o for o in await eventually(waived)}
    assert h802["annual"]["status"] == "waived"
    assert "removed from plan 123/KH-UBND by amendment 1" in h802["annual"]["waived_reason"]
    assert h802["six_month"]["status"] == "submitted"


async def test_a_thematic_request_opens_obligations_to_the_requester(
    services: dict[str, InProcessService], bus_spy: BusSpy
) -> None:
    async with services["plans"].client() as plans, services["reports"].client() as reports:
        await _issue_province_plan(plans)
        request = {
            "requesting_unit": "T89-SNV",
            "kind": "thematic",
            "topic": "Kết quả tổ chức Hội nghị cán bộ, công chức, viên chức năm 2023",
            "units": ["T89-STP", "X80101"],
            "period_start": "2023-01-01",
            "period_end": "2023-03-31",
            "due_before": "2023-04-15",
        }
        outside = await plans.post("/report-requests", json={**request, "requesting_unit": "H802"})
        made = await plans.post("/report-requests", json=request)
        assert made.status_code == 201, made.text
        request_id = made.json()["request_id"]

        async def probe() -> list[Any]:
            found: list[Any] = [
                o
                for o in (await reports.get("/obligations")).json()
                if o["request_id"] == request_id
            ]
            return found if len(found) == 2 else []

        obligations = await eventually(probe)
    assert outside.status_code == 422
    assert "neither under H802 nor reports to it" in outside.json()["error"]["message"]
    assert {o["receiving_unit"] for o in obligations} == {"T89-SNV"}
    assert {o["report_kind"] for o in obligations} == {"thematic"}
    assert {o["due_at"] for o in obligations} == {"2023-04-14T16:59:59.999999Z"}
    seen = await bus_spy.wait_for_type("qcdc.request.issued.v1")
    assert seen[0].subject == "qcdc.v1.request.issued.T89.T89-SNV"


async def test_difficulties_are_raised_and_answered(
    services: dict[str, InProcessService], bus_spy: BusSpy
) -> None:
    async with services["plans"].client() as plans:
        plan = await _issue_province_plan(plans)
        raised = await plans.post(
            "/difficulties",
            json=difficulty_body(
                plan["id"], "X80101", "Chưa có hướng dẫn họp trực tuyến.\nĐề nghị Sở hướng dẫn."
            ),
        )
        wrong_area = await plans.post(
            "/difficulties",
            json=difficulty_body(plan["id"], "X80101", "x", content_area="9"),
        )
        answered = await plans.post(
            f"/difficulties/{raised.json()['difficulty_id']}/answer",
            json={"answered_by": "T89-SNV", "answer": "Sở Nội vụ sẽ ban hành hướng dẫn."},
        )
        listed = (await plans.get("/difficulties", params={"plan_id": plan["id"]})).json()
    assert raised.status_code == 201 and answered.status_code == 200
    assert wrong_area.status_code == 422 and wrong_area.json()["error"]["field"] == "content_area"
    assert listed[0]["answer"] == "Sở Nội vụ sẽ ban hành hướng dẫn."
    assert listed[0]["description"].count("\n") == 1
    event = (await bus_spy.wait_for_type("qcdc.difficulty.raised.v1"))[0]
    assert event.subject == "qcdc.v1.difficulty.raised.T89.H801.X80101"


async def test_a_plan_rolls_over_into_a_new_year_as_a_draft(
    services: dict[str, InProcessService],
) -> None:
    async with services["plans"].client() as plans:
        plan = await _issue_province_plan(plans)
        copy = await plans.post(f"/plans/{plan['id']}/roll-over", json={"year": 2024})
    assert copy.status_code == 201
    body = copy.json()
    assert body["status"] == "draft" and body["year"] == 2024
    assert body["title"] == "Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2024"
    assert [e["due_before"] for e in body["schedule"]] == ["2024-06-10", "2024-11-20"]
    assert body["sub_plan"]["due_before"] == "2024-03-01"
