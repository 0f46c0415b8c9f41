"""Inspections and recommendations in the portal, on real HTTP in front of the real services
(plans and reports in-process on a real nats-server, SQLite and PostgreSQL).

Home Affairs inspects two units and requires two actions of one of them; that unit finds
its follow-ups in its work list, each leading to the follow-up form (never to the report
form, which the reports service would refuse), reports one done through the portal; Home
Affairs returns it with a reason, then closes it. The board, the unit's page and the public
page count it (the public page without any text an official wrote and without personal
data). A recommendation's answer obligation leads to the answer form, and the answer and
the implementation go through it. A report submitted to either obligation (HTTP or the
bus) is refused, naming the route that meets it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import nats

from services.natsd import NatsServer
from tests.integration.test_staff_conferences import (
    PLAN,
    UNITS,
    System,
    _csrf,
    _row,
    ict,
    portal_server,
    signed_in,
    system,
)
from tests.support import eventually

__all__ = ["system"]  # the fixture, shared with the staff conference tests

KEY = {"schedule_key": "six_month", "receiving_unit": "SNV"}
TOPIC = "Kiểm tra việc thực hiện Quy chế dân chủ ở cơ sở năm 2023"
CONCLUSION = "Cơ bản thực hiện tốt; ông Trần Văn B, chánh văn phòng, chịu trách nhiệm."
FINDING = "Chưa niêm yết công khai dự toán tại trụ sở."
FOLLOW_UP = "Đã niêm yết; liên hệ bà Lê Thị C (lethic@stp.example.vn)."


async def _submitted(client: httpx.AsyncClient, path: str, form: dict[str, str]) -> str:
    """Post a page's ``form`` and follow the redirect: the page it leads to."""
    response = await client.post(path, data=form, follow_redirects=True)
    assert response.status_code == 200, response.text
    return response.text


async def _set_up(system: System) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Units, the plan, an inspection of STP and BVT with two actions required of STP, and a
    recommendation to STP. Returns the plan id, the inspection and the recommendation."""
    async with system.plans.client() as plans:
        for unit in UNITS:
            assert (await plans.post("/units", json=unit)).status_code == 201
        draft = await plans.post("/plans", json=PLAN)
        plan_id = draft.json()["id"]
        assert (await plans.post(f"/plans/{plan_id}/issue")).status_code == 200
    system.clock.set(ict(2023, 2, 20))
    async with system.reports.client() as reports:

        async def owed() -> bool:
            found = await reports.get("/obligations", params={"plan_id": plan_id, **KEY})
            return found.status_code == 200 and len(found.json()) >= 3

        await eventually(owed)
        body = {
            "kind": "inspection",
            "topic": TOPIC,
            "inspecting_unit": "SNV",
            "inspected_units": ["STP", "BVT"],
            "planned_start": "2023-02-13",
            "planned_end": "2023-02-24",
            "plan_id": plan_id,
        }
        scheduled = await reports.post("/inspections", json=body)
        assert scheduled.status_code == 201, scheduled.text
        inspection = scheduled.json()
        findings = {
            "inspected_unit": "STP",
            "conducted_on": "2023-02-17",
            "conclusion": CONCLUSION,
            "findings": [
                {
                    "content": FINDING,
                    "actions": [
                        {"content": "Niêm yết dự toán tại trụ sở.", "due_on": "2023-03-15"},
                        {"content": "Công khai quyết toán năm 2022.", "due_on": "2023-04-30"},
                    ],
                }
            ],
        }
        recorded = await reports.post(f"/inspections/{inspection['id']}/findings", json=findings)
        assert recorded.status_code == 201, recorded.text
        inspection["units"] = [recorded.json()]
        recommendation = await reports.post(
            "/recommendations",
            json={
                "source_organisation": "Ban Thường trực Ủy ban MTTQ Việt Nam tỉnh An Bình",
                "topic": "Tiếp công dân tại Sở",
                "content": "Đề nghị Sở công khai lịch tiếp công dân.",
                "addressed_unit": "STP",
                "received_on": "2023-02-20",
            },
        )
        assert recommendation.status_code == 201, recommendation.text
    return plan_id, inspection, recommendation.json()


async def test_a_follow_up_reported_through_the_portal_is_returned_then_closed_and_counted(
    system: System, nats_server: NatsServer, tmp_path: Path
) -> None:
    plan_id, inspection, recommendation = await _set_up(system)
    [niem_yet, cong_khai] = inspection["units"][0]["findings"][0]["actions"]
    follow_up = niem_yet["obligation_id"]

    # Neither the answer nor the follow-up is met by a report, over HTTP or on the bus: each
    # refusal names the route that meets it.
    routes = {
        recommendation["obligation_id"]: f"POST /recommendations/{recommendation['id']}/answer",
        follow_up: f"POST /inspection-actions/{niem_yet['id']}/follow-ups",
    }
    client = await nats.connect(nats_server.url)
    try:
        async with system.reports.client() as reports:
            for obligation_id, route in routes.items():
                body = {"obligation_id": obligation_id, "unit_code": "STP"}
                refused = await reports.post("/reports", json=body)
                assert refused.status_code == 422, refused.text
                assert route in refused.json()["error"]["message"]
                reply = await client.request(
                    "qcdc.v1.rpc.report.submit.T89.STP", json.dumps(body).encode(), timeout=10
                )
                error = json.loads(reply.data)["error"]
                assert (error["field"], route in error["message"]) == ("obligation_id", True)
    finally:
        await client.close()

    async with (
        portal_server(system, tmp_path) as url,
        signed_in(url, "STP", "submitter") as stp,
        signed_in(url, "SNV", "reviewer") as snv,
    ):
        # The unit's work list leads each kind of obligation to its own form.
        home = (await stp.get("/")).text
        assert f'href="/khac-phuc/{follow_up}">Báo cáo khắc phục' in home
        assert f'href="/kien-nghi/{recommendation["obligation_id"]}">Trả lời kiến nghị' in home
        assert f"/nop/{follow_up}" not in home
        assert f"/nop/{recommendation['obligation_id']}" not in home
        obligation_page = (await stp.get(f"/nghia-vu/{follow_up}")).text
        assert f'href="/khac-phuc/{follow_up}"' in obligation_page
        assert "/nop/" not in obligation_page and "Nộp báo cáo" not in obligation_page
        answer_page = (await stp.get(f"/nghia-vu/{recommendation['obligation_id']}")).text
        assert f'href="/kien-nghi/{recommendation["obligation_id"]}"' in answer_page
        assert "/nop/" not in answer_page
        # A follow-up page of another kind is not found.
        assert (await stp.get(f"/kien-nghi/{follow_up}")).status_code == 404

        # The commune reports through the follow-up form: empty first, then done.
        path = f"/khac-phuc/{follow_up}"
        page = await stp.get(path)
        assert page.status_code == 200 and "Chưa khắc phục xong" in page.text
        empty = await stp.post(path, data={"csrf": _csrf(page.text), "content": " "})
        assert empty.status_code == 422
        assert "Hãy ghi nội dung báo cáo khắc phục." in empty.text
        form = {"csrf": _csrf(page.text), "content": FOLLOW_UP, "done": "1"}
        sent = await _submitted(stp, path, form)
        assert "Đã gửi báo cáo khắc phục." in sent
        assert "Đã báo cáo khắc phục xong, chờ xem xét" in sent
        # No form is offered to report again while the inspecting unit decides.
        assert 'name="content"' not in sent

        # Home Affairs sees what it received (in its inbox too, leading to the follow-up
        # page), and returns it (a reason is required).
        inbox = (await snv.get("/hop-thu")).text
        assert f'href="/khac-phuc/{follow_up}">Xem xét' in inbox
        assert "Khắc phục sau kiểm tra, khảo sát" in inbox
        listing = await snv.get("/kiem-tra")
        assert listing.status_code == 200, listing.text
        row = _row(listing.text, f"action-{niem_yet['id']}")
        assert "Đã báo cáo khắc phục xong" in row and "Xem xét" in row
        assert "Chưa khắc phục xong" in _row(listing.text, f"action-{cong_khai['id']}")
        page = await snv.get(path)
        assert FOLLOW_UP in page.text  # the inspecting unit reads the report itself
        decide = f"{path}/quyet-dinh"
        csrf = _csrf(page.text)
        no_reason = await snv.post(decide, data={"csrf": csrf, "decision": "return"})
        assert no_reason.status_code == 422 and "Hãy ghi rõ lý do trả lại." in no_reason.text
        form = {"csrf": csrf, "decision": "return", "reason": "Chưa có biên bản niêm yết."}
        returned = await _submitted(snv, decide, form)
        assert "Đã trả lại, yêu cầu tiếp tục khắc phục." in returned
        assert "Chưa có biên bản niêm yết." in returned
        # The commune sees the reason, and reports again; Home Affairs closes it, on time.
        again = await stp.get(path)
        assert "Chưa có biên bản niêm yết." in again.text
        assert 'name="content"' in again.text
        form = {"csrf": _csrf(again.text), "content": "Đã bổ sung biên bản.", "done": "1"}
        assert (await stp.post(path, data=form)).status_code == 303
        system.clock.set(ict(2023, 3, 20))  # the decision comes after the deadline
        form = {"csrf": csrf, "decision": "close", "note": "Đạt yêu cầu."}
        closed = await _submitted(snv, decide, form)
        assert "Đã khắc phục xong (đúng hạn)" in closed

        # The board and the unit's page: STP inspected once, done, 2 actions required,
        # 1 closed on time, 0 late, 1 open whose deadline is 30/04/2023; BVT scheduled only.
        board = await snv.get("/theo-doi", params={"plan_id": plan_id, **KEY})
        assert board.status_code == 200, board.text
        cells = re.findall(r"<td>(.*?)</td>", _row(board.text, "inspection-STP"))
        assert cells == ["1", "1", "2", "1", "0", "1", "30/04/2023"]
        cells = re.findall(r"<td>(.*?)</td>", _row(board.text, "inspection-BVT"))
        assert cells == ["1", "0", "0", "0", "0", "0", "–"]
        unit_page = await snv.get("/don-vi/STP")
        cells = re.findall(r"<td>(.*?)</td>", _row(unit_page.text, "inspection-STP"))
        assert cells == ["1", "1", "2", "1", "0", "1", "30/04/2023"]

        # The recommendation: answered, then implemented, through the answer form.
        answer_path = f"/kien-nghi/{recommendation['obligation_id']}"
        page = await stp.get(answer_path)
        assert "Chờ trả lời" in page.text and "Gửi văn bản trả lời" in page.text
        form = {"csrf": _csrf(page.text), "text": "Sở đã công khai lịch tiếp công dân."}
        answered = await _submitted(stp, answer_path, form)
        assert "Đã trả lời (đúng hạn), đang thực hiện" in answered
        assert "Gửi báo cáo thực hiện" in answered
        form = {"csrf": _csrf(page.text), "text": "Đã niêm yết tại trụ sở.", "completed": "1"}
        implemented = await _submitted(stp, answer_path, form)
        assert "Đã trả lời (đúng hạn), đã thực hiện xong" in implemented
        assert 'name="text"' not in implemented

        # The public page: the inspection done at STP and its actions, nothing an official
        # wrote, no person, no address; the answered recommendation, without its texts.
        public = await snv.get("/cong-khai")
        assert public.status_code == 200, public.text
        table = public.text.split('id="public-inspection-table"')[1].split("</table>")[0]
        assert re.search(
            r"<td>Kiểm tra</td><td>" + TOPIC + r"</td><td>Sở Nội vụ</td>"
            r"<th scope=\"row\">Sở Tư pháp</th><td>17/02/2023</td><td>2</td><td>1</td>",
            table,
        ), table
        assert "Bệnh viện" not in table  # not inspected yet: nothing done to show
        for private in (CONCLUSION, FINDING, FOLLOW_UP, "Trần Văn B", "Lê Thị C", "@"):
            assert private not in public.text, private
        assert "Tiếp công dân tại Sở" in public.text
        assert "Sở đã công khai lịch tiếp công dân." not in public.text
