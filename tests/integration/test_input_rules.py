"""Rules on what comes in, over real HTTP with API tokens, a real bus, SMTP and databases
(SQLite and PostgreSQL): dates and codes that hold together, indicator bounds, Idempotency-
Keys that belong to the submitting unit, and difficulties answered only where they were
raised to, every answer kept."""

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
from shared.auth import Role
from shared.clock import ManualClock
from tests.bodies import difficulty_body, district_plan, report_body
from tests.integration.test_plan_lifecycle import PROVINCE_PLAN, UNITS
from tests.stack import (
    as_token,
    console_tokens,
    issue_plan,
    register_units_at_console,
    start_services,
    stop_services,
    until_known,
)
from tests.support import (
    BusSpy,
    InProcessService,
    SmtpInbox,
    eventually,
)

NOW = datetime(2023, 2, 1, 2, 0, tzinfo=UTC)
FOCAL = {"T89-SNV": "noivu@anbinh.gov.vn", "T89-STP": "tuphap@anbinh.gov.vn"}
TOKENS = (
    ("admin", "T89", Role.ADMINISTRATOR),
    ("planner", "T89", Role.PLANNER),
    ("district_planner", "H801", Role.PLANNER),
    ("stp", "T89-STP", Role.SUBMITTER),
    ("h801", "H801", Role.SUBMITTER),
    ("snv", "T89-SNV", Role.REVIEWER),
    ("h802", "H802", Role.REVIEWER),
)


@pytest.fixture
async def province(
    nats_server: NatsServer,
    database_urls: dict[str, str],
    smtp_inbox: SmtpInbox,
    bus_spy: BusSpy,
) -> AsyncIterator[dict[str, Any]]:
    clock = ManualClock(NOW)
    extra: dict[str, dict[str, Any]] = {
        "notify": {"smtp_port": smtp_inbox.port, "delivery_poll_seconds": 0.05}
    }
    running = await start_services(
        (PLANS, REPORTS, NOTIFY),
        database_urls,
        clock,
        extra,
        nats_url=nats_server.url,
        auth="tokens",
    )
    plans = running["plans"]
    await register_units_at_console(plans, UNITS, FOCAL)
    tokens = await console_tokens(plans, [(name, code, role, 365) for name, code, role in TOKENS])
    for service in (running["plans"], running["reports"]):
        for token in tokens.values():
            await until_known(service, token)
    async with as_token(plans, tokens["planner"]) as planner:
        plan = await issue_plan(planner, PROVINCE_PLAN)
    yield {
        "tokens": tokens,
        "plan_id": plan["id"],
        "inbox": smtp_inbox,
        "bus": bus_spy,
        **running,
    }
    await stop_services(running)


def _as(service: InProcessService, token: Any) -> httpx.AsyncClient:
    return as_token(service, token)


async def _obligation(reports: InProcessService, token: Any, unit: str) -> dict[str, Any]:
    async with _as(reports, token) as client:

        async def found() -> Any:
            listed = (await client.get("/obligations", params={"unit": unit})).json()
            return next((o for o in listed if o["schedule_key"] == "six_month"), None)

        obligation: dict[str, Any] = await eventually(found)
        return obligation


def _field(response: httpx.Response) -> str | None:
    """The field a refusal names (the JSON error shape of shared/http.py)."""
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["message"]
    field: str | None = error.get("field") or (error.get("errors") or [{}])[0].get("field")
    return field


async def _audit(service: InProcessService, token: Any) -> list[dict[str, Any]]:
    async with _as(service, token) as admin:
        response = await admin.get("/audit", params={"limit": 1000})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


# --- Idempotency-Key ----------------------------------------------------------------------


async def test_an_idempotency_key_belongs_to_the_unit_that_submitted_with_it(
    province: dict[str, Any],
) -> None:
    reports, tokens = province["reports"], province["tokens"]
    stp_obligation = await _obligation(reports, tokens["stp"], "T89-STP")
    h801_obligation = await _obligation(reports, tokens["h801"], "H801")
    body = {
        "obligation_id": stp_obligation["id"],
        "unit_code": "T89-STP",
        "submitted_by": "van.thu@stp.anbinh.gov.vn",
        "narrative": {"3": "Tiếp công dân định kỳ."},
        "indicators": {"complaints_received": 3, "complaints_resolved": 2},
    }
    key = {"Idempotency-Key": "k-1"}

    async with _as(reports, tokens["stp"]) as stp:
        first = await stp.post("/reports", json=body, headers=key)
        again = await stp.post("/reports", json=body, headers=key)
        changed_body = {**body, "indicators": {"complaints_received": 3, "complaints_resolved": 3}}
        changed = await stp.post("/reports", json=changed_body, headers=key)
    async with _as(reports, tokens["h801"]) as h801:
        stolen = await h801.post("/reports", json=body, headers=key)
        own = await h801.post(
            "/reports",
            json=report_body(h801_obligation["id"], "H801", submitted_by="vanphong@tanphu.gov.vn"),
            headers=key,
        )
    async with _as(reports, tokens["stp"]) as stp:
        versions = (await stp.get(f"/obligations/{stp_obligation['id']}/reports")).json()

    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json() == first.json()
    assert _field(changed) == "idempotency_key"
    assert "different submission" in changed.json()["error"]["message"]
    assert stolen.status_code == 403
    assert "receipt" not in stolen.text and first.json()["receipt_number"] not in stolen.text
    assert own.status_code == 201, own.text
    assert own.json()["report_id"] != first.json()["report_id"]
    # The changed body stored nothing: one version, with the first body's values.
    assert [v["indicators"] for v in versions] == [body["indicators"]]

    audit = await _audit(reports, tokens["admin"])
    assert any(
        a["outcome"] == "forbidden" and a["unit_code"] == "H801" and a["action"] == "POST /reports"
        for a in audit
    )
    replays = [a for a in audit if a["action"] == "report.submission_replayed"]
    assert [(a["unit_code"], a["target"]) for a in replays] == [
        ("T89-STP", first.json()["report_id"])
    ]


# --- dates and codes ----------------------------------------------------------------------


async def test_dates_and_codes_that_do_not_hold_together_are_refused_naming_the_field(
    province: dict[str, Any],
) -> None:
    plans, reports, tokens = province["plans"], province["reports"], province["tokens"]
    plan_id = province["plan_id"]
    async with _as(plans, tokens["district_planner"]) as district:
        early = await district.post(
            "/plans", json={**district_plan(plan_id), "issued_on": "2023-01-10"}
        )
    late_period = {
        **PROVINCE_PLAN,
        "schedule": [{**PROVINCE_PLAN["schedule"][0], "period_end": "2023-06-10"}],
    }
    async with _as(plans, tokens["planner"]) as planner:
        draft = await planner.post("/plans", json=late_period)
        period_after_deadline = await planner.post(f"/plans/{draft.json()['id']}/issue")
    async with _as(plans, tokens["admin"]) as admin:
        sub_plan_before_parent = await admin.post(
            f"/plans/{plan_id}/sub-plans",
            json={"unit_code": "T89-STP", "doc_number": "7/KH-STP", "issued_on": "2023-01-02"},
        )
    request = {
        "requesting_unit": "T89-SNV",
        "kind": "thematic",
        "topic": "Tình hình tiếp công dân quý I",
        "units": ["T89-STP"],
        "period_start": "2023-01-01",
        "period_end": "2023-03-31",
        "due_before": "2023-04-10",
        "plan_id": plan_id,
    }
    async with _as(plans, tokens["snv"]) as snv:
        unknown_indicator = await snv.post(
            "/report-requests",
            json={**request, "indicators": ["reception_sessions", "happiness_index"]},
        )
        unknown_area = await snv.post("/report-requests", json={**request, "content_areas": ["9"]})
        request_period = await snv.post(
            "/report-requests", json={**request, "period_end": "2023-04-10"}
        )
        fine = await snv.post(
            "/report-requests", json={**request, "indicators": ["reception_sessions"]}
        )

    obligation = await _obligation(reports, tokens["stp"], "T89-STP")
    base = {"obligation_id": obligation["id"], "unit_code": "T89-STP", "submitted_by": "a@b.vn"}
    async with _as(reports, tokens["stp"]) as stp:
        narrative = await stp.post("/reports", json={**base, "narrative": {"7": "Không có."}})
        empty_by = await stp.post("/reports", json={**base, "submitted_by": ""})
        blank_by = await stp.post("/reports", json={**base, "submitted_by": "   "})
        huge = await stp.post(
            "/reports", json={**base, "indicators": {"citizens_received": 10**30}}
        )
        part_alone = await stp.post(
            "/reports", json={**base, "indicators": {"complaints_resolved": 0}}
        )
        versions = (await stp.get(f"/obligations/{obligation['id']}/reports")).json()

    assert _field(early) == "issued_on"
    assert "before the plan it implements" in early.json()["error"]["message"]
    assert _field(period_after_deadline) == "schedule.0.period_end"
    assert _field(sub_plan_before_parent) == "issued_on"
    assert _field(unknown_indicator) == "indicators.1"
    assert "happiness_index" in unknown_indicator.json()["error"]["message"]
    assert _field(unknown_area) == "content_areas.0"
    assert _field(request_period) == "period_end"
    assert fine.status_code == 201, fine.text
    assert _field(narrative) == "narrative.7"
    assert _field(empty_by) == "submitted_by"
    assert _field(blank_by) == "submitted_by"
    assert _field(huge) == "indicators.citizens_received"
    assert "at most 100.000.000" in huge.text
    assert _field(part_alone) == "indicators.complaints_received"
    assert "required" in part_alone.text
    assert versions == []  # nothing refused was stored


# --- difficulties -------------------------------------------------------------------------


async def test_a_difficulty_is_answered_only_where_it_was_raised_to_and_keeps_every_answer(
    province: dict[str, Any],
) -> None:
    plans, tokens, bus = province["plans"], province["tokens"], province["bus"]
    inbox: SmtpInbox = province["inbox"]
    async with _as(plans, tokens["stp"]) as stp:
        raised = await stp.post(
            "/difficulties",
            json=difficulty_body(
                province["plan_id"], "T89-STP", "Chưa rõ cách tính số lượt tiếp công dân định kỳ."
            ),
        )
    assert raised.status_code == 201, raised.text
    difficulty_id = raised.json()["difficulty_id"]
    answer = "/difficulties/" + difficulty_id + "/answer"

    async with _as(plans, tokens["h802"]) as h802:
        other_unit = await h802.post(answer, json={"answered_by": "H802", "answer": "Không."})
    async with _as(plans, tokens["snv"]) as snv:
        in_anothers_name = await snv.post(answer, json={"answered_by": "H802", "answer": "X."})
    async with _as(plans, tokens["admin"]) as admin:
        from_above = await admin.post(answer, json={"answered_by": "T89-SNV", "answer": "Y."})
    async with _as(plans, tokens["stp"]) as stp:
        by_the_raiser = await stp.post(answer, json={"answered_by": "T89-STP", "answer": "Z."})
    async with _as(plans, tokens["snv"]) as snv:
        first = await snv.post(
            answer, json={"answered_by": "T89-SNV", "answer": "Tính theo sổ tiếp công dân."}
        )
        second = await snv.post(
            answer, json={"answered_by": "T89-SNV", "answer": "Bổ sung: tính cả tiếp đột xuất."}
        )
        thread = (await snv.get(f"/difficulties/{difficulty_id}")).json()

    assert [r.status_code for r in (other_unit, in_anothers_name, from_above, by_the_raiser)] == [
        403
    ] * 4
    assert "raised to unit T89-SNV" in in_anothers_name.json()["error"]["message"]
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["answer_number"], second.json()["answer_number"]) == (1, 2)
    assert thread["raised_to"] == "T89-SNV"
    assert [(a["number"], a["answered_by"], a["answer"]) for a in thread["answers"]] == [
        (1, "T89-SNV", "Tính theo sổ tiếp công dân."),
        (2, "T89-SNV", "Bổ sung: tính cả tiếp đột xuất."),
    ]

    (raised_event,) = await bus.wait_for_type("qcdc.difficulty.raised.v1")
    assert json.loads(raised_event.data)["raised_to"] == "T89-SNV"
    answered = await bus.wait_for_type("qcdc.difficulty.answered.v1", count=2)
    assert {seen.subject for seen in answered} == {"qcdc.v1.difficulty.answered.T89.T89-STP"}
    bodies = sorted((json.loads(seen.data) for seen in answered), key=lambda b: b["answer_number"])
    assert [(b["answer_number"], b["answered_by_unit"]) for b in bodies] == [
        (1, "T89-SNV"),
        (2, "T89-SNV"),
    ]

    mails = await inbox.wait_for_subject("[Trả lời vướng mắc]", count=2)
    assert {tuple(m.recipients) for m in mails} == {(FOCAL["T89-STP"],)}
    texts = " ".join(m.text for m in mails)
    assert "Sở Nội vụ trả lời khó khăn, vướng mắc của Sở Tư pháp" in texts
    assert "Tính theo sổ tiếp công dân." in texts and "trả lời lần 2" in texts

    audit = await _audit(plans, tokens["admin"])
    refused = {(a["unit_code"], a["outcome"]) for a in audit if "/answer" in a["action"]}
    assert {("H802", "forbidden"), ("T89-SNV", "forbidden"), ("T89", "forbidden")} <= refused
    assert ("T89-STP", "forbidden") in refused
    done = [a for a in audit if a["action"] == "difficulty.answered"]
    assert sorted(a["target"] for a in done) == [f"{difficulty_id} #1", f"{difficulty_id} #2"]
