"""Closed doors over HTTP (QCDC_AUTH=tokens): who calls is settled before the body is read,
and a token reads only what its unit may see."""

from __future__ import annotations

from typing import Any

from tests.integration.test_auth import _as, _known, secured  # noqa: F401
from tests.integration.test_plan_lifecycle import PROVINCE_PLAN
from tests.support import eventually


async def test_without_a_token_a_malformed_body_is_a_401_and_audited_as_anonymous(
    secured: dict[str, Any],  # noqa: F811
) -> None:
    plans, reports, notify = secured["plans"], secured["reports"], secured["notify"]
    admin = secured["tokens"]["admin"]
    await _known(plans, admin)
    await _known(reports, admin)
    malformed = b'{"doc_number": "1/KH", "title": '  # cut short: not JSON
    answers = []
    for service, path in ((plans, "/plans"), (reports, "/reports"), (notify, "/subscriptions")):
        async with _as(service, None) as anonymous:
            answers.append(
                await anonymous.post(
                    path, content=malformed, headers={"Content-Type": "application/json"}
                )
            )
    async with _as(plans, None) as anonymous:
        # A wrong scheme is no token either, and an unknown path is not a way to learn routes.
        basic = await anonymous.post(
            "/plans", content=b"[", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}
        )
        unknown_path = await anonymous.get("/no-such-route")
        health = await anonymous.get("/healthz")
    async with _as(plans, admin) as client:
        with_token = await client.post(
            "/plans", content=malformed, headers={"Content-Type": "application/json"}
        )
        audit = (await client.get("/audit", params={"outcome": "unauthenticated"})).json()

    for answer in [*answers, basic, unknown_path]:
        assert answer.status_code == 401, answer.text
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert "Authorization: Bearer" in answer.json()["error"]["message"]
    assert health.status_code == 200
    assert with_token.status_code == 422  # the same body, now someone may send it
    anonymous_entries = [a for a in audit if a["token_id"] == "anonymous"]
    assert {a["action"] for a in anonymous_entries} >= {
        "POST /plans",
        "GET /no-such-route",
    }
    assert all(a["unit_code"] == "-" for a in anonymous_entries)


async def _province_plan_with_stp_report(state: dict[str, Any]) -> dict[str, Any]:
    """The province's plan issued, STP's focal e-mail known to notify, STP's report in."""
    plans, reports, tokens = state["plans"], state["reports"], state["tokens"]
    for service in (plans, reports, state["notify"]):
        for token in tokens.values():
            if token is not tokens["short"]:
                await _known(service, token)
    async with _as(plans, tokens["admin"]) as admin:
        patched = await admin.patch(
            "/units/T89-STP", json={"contacts": {"focal_email": "vanthu@stp.example.vn"}}
        )
        assert patched.status_code == 200, patched.text
    async with _as(plans, tokens["planner"]) as planner:
        draft = await planner.post("/plans", json=PROVINCE_PLAN)
        assert (await planner.post(f"/plans/{draft.json()['id']}/issue")).status_code == 200
    async with _as(reports, tokens["stp"]) as stp:

        async def stp_obligation() -> Any:
            found = (await stp.get("/obligations", params={"unit": "T89-STP"})).json()
            return next((o for o in found if o["schedule_key"] == "six_month"), None)

        obligation = await eventually(stp_obligation)
        sent = await stp.post(
            "/reports", json={"obligation_id": obligation["id"], "unit_code": "T89-STP"}
        )
        assert sent.status_code == 201, sent.text
    return {"obligation": obligation, "report": sent.json()}


async def test_a_token_reads_its_subtree_and_what_is_addressed_to_it(
    secured: dict[str, Any],  # noqa: F811
) -> None:
    reports, tokens = secured["reports"], secured["tokens"]
    done = await _province_plan_with_stp_report(secured)
    obligation, report_id = done["obligation"], done["report"]["report_id"]

    seen: dict[str, set[str]] = {}
    for name in ("stp", "snv", "h802", "district_planner", "admin"):
        async with _as(reports, tokens[name]) as client:
            seen[name] = {o["unit_code"] for o in (await client.get("/obligations")).json()}
    async with _as(reports, tokens["h802"]) as h802:
        other_obligation = await h802.get(f"/obligations/{obligation['id']}")
        other_report = await h802.get(f"/reports/{report_id}")
        other_versions = await h802.get(f"/obligations/{obligation['id']}/reports")
    async with _as(reports, tokens["snv"]) as snv:
        addressed_report = await snv.get(f"/reports/{report_id}")
    async with _as(reports, tokens["stp"]) as stp:
        own_report = await stp.get(f"/reports/{report_id}")
    contacts = {}
    for name in ("stp", "h802", "admin"):
        async with _as(secured["plans"], tokens[name]) as client:
            contacts[name] = (await client.get("/units/T89-STP")).json()["contacts"]

    assert seen["stp"] == {"T89-STP"}
    assert seen["h802"] == {"H802"}  # its own; H801's and STP's are not its business
    assert "T89-STP" not in seen["district_planner"] and "H801" in seen["district_planner"]
    # Home Affairs receives every assignee's report: they are addressed to it.
    assert seen["snv"] >= {"T89-STP", "H801", "H802"}
    assert seen["admin"] >= seen["snv"]
    for refused in (other_obligation, other_report, other_versions):
        assert refused.status_code == 403, refused.text
        assert "neither in its units nor addressed to it" in refused.json()["error"]["message"]
    assert addressed_report.status_code == 200 and own_report.status_code == 200
    # The registry is everyone's; its people's addresses are the unit's and those above it.
    assert contacts["stp"]["focal_email"] == "vanthu@stp.example.vn"
    assert contacts["admin"]["focal_email"] == "vanthu@stp.example.vn"
    assert contacts["h802"]["focal_email"] is None


async def test_message_bodies_are_the_recipients_and_integrators_read_no_mailboxes(
    secured: dict[str, Any],  # noqa: F811
) -> None:
    notify, tokens = secured["notify"], secured["tokens"]
    await _province_plan_with_stp_report(secured)
    async with _as(notify, tokens["stp"]) as stp:

        async def receipt() -> Any:
            found = (await stp.get("/deliveries")).json()
            return next((d for d in found if d["event_type"] == "qcdc.report.submitted.v1"), None)

        delivery = await eventually(receipt)
        own_body = await stp.get(f"/deliveries/{delivery['key']}")
    listed: dict[str, list[str]] = {}
    bodies: dict[str, int] = {}
    for name in ("snv", "planner", "admin", "h802"):
        async with _as(notify, tokens[name]) as client:
            listed[name] = [d["key"] for d in (await client.get("/deliveries")).json()]
            bodies[name] = (await client.get(f"/deliveries/{delivery['key']}")).status_code
    async with _as(notify, tokens["integrator"]) as integrator:
        integrator_log = await integrator.get("/deliveries")
        integrator_body = await integrator.get(f"/deliveries/{delivery['key']}")
        integrator_subscriptions = await integrator.get("/subscriptions")

    assert delivery["recipient"] == "vanthu@stp.example.vn"
    assert own_body.status_code == 200 and "Số tiếp nhận" in own_body.json()["text"]
    assert delivery["key"] not in listed["snv"] and delivery["key"] not in listed["h802"]
    assert delivery["key"] in listed["planner"] and delivery["key"] in listed["admin"]
    # The province's planner sees the entry in its subtree, not the message; its
    # administrator does.
    assert bodies == {"snv": 403, "planner": 403, "admin": 200, "h802": 403}
    for refused in (integrator_log, integrator_body, integrator_subscriptions):
        assert refused.status_code == 403
        assert "reads events, not" in refused.json()["error"]["message"]
