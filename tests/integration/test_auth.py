"""API tokens and roles over real HTTP (QCDC_AUTH=tokens): every boundary answers 401 or 403
with a reason, and every refusal and every action is in the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.natsd import NatsServer
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared.auth import Role
from shared.clock import ManualClock
from tests.integration.test_plan_lifecycle import PROVINCE_PLAN, UNITS
from tests.stack import (
    Grant,
    as_token,
    console_tokens,
    register_units_at_console,
    start_services,
    stop_services,
    until_known,
)
from tests.support import InProcessService, eventually

NOW = datetime(2023, 2, 1, 2, 0, tzinfo=UTC)
GRANTS: list[Grant] = [
    ("admin", "T89", Role.ADMINISTRATOR, 365),
    ("planner", "T89", Role.PLANNER, 365),
    ("district_planner", "H801", Role.PLANNER, 365),
    ("stp", "T89-STP", Role.SUBMITTER, 365),
    ("commune", "X80101", Role.SUBMITTER, 365),
    ("snv", "T89-SNV", Role.REVIEWER, 365),
    ("h802", "H802", Role.REVIEWER, 365),
    ("integrator", "T89", Role.INTEGRATOR, 365),
    ("short", "T89-STP", Role.SUBMITTER, 1),
]


@pytest.fixture
async def secured(
    nats_server: NatsServer, database_urls: dict[str, str]
) -> AsyncIterator[dict[str, Any]]:
    clock = ManualClock(NOW)
    running = await start_services(
        (PLANS, REPORTS, NOTIFY), database_urls, clock, nats_url=nats_server.url, auth="tokens"
    )
    await register_units_at_console(running["plans"], UNITS)
    tokens = await console_tokens(running["plans"], GRANTS)
    yield {"clock": clock, "tokens": tokens, **running}
    await stop_services(running)


def _as(service: InProcessService, token: Any | None) -> httpx.AsyncClient:
    return as_token(service, token)


async def _known(service: InProcessService, token: Any) -> None:
    # Known once it is not a 401 (an integrator is refused notify's mailboxes: 403).
    await until_known(service, token, refused_is_known=True)


async def test_every_role_boundary_is_refused_and_audited(secured: dict[str, Any]) -> None:
    plans, reports, tokens = secured["plans"], secured["reports"], secured["tokens"]
    for token in tokens.values():
        await _known(plans, token)
        await _known(reports, token)

    async with _as(plans, None) as anonymous:
        no_token = await anonymous.get("/units")
    async with _as(plans, tokens["district_planner"]) as district:
        foreign_plan = await district.post("/plans", json=PROVINCE_PLAN)
    async with _as(plans, tokens["planner"]) as planner:
        draft = await planner.post("/plans", json=PROVINCE_PLAN)
        issued = await planner.post(f"/plans/{draft.json()['id']}/issue")
    async with _as(plans, tokens["integrator"]) as integrator:
        integrator_reads = await integrator.get("/plans")
        integrator_writes = await integrator.post("/plans", json=PROVINCE_PLAN)

    async with _as(reports, tokens["stp"]) as stp:

        async def stp_obligation() -> Any:
            found = (await stp.get("/obligations", params={"unit": "T89-STP"})).json()
            return next((o for o in found if o["schedule_key"] == "six_month"), None)

        obligation = await eventually(stp_obligation)
        own = await stp.post(
            "/reports", json={"obligation_id": obligation["id"], "unit_code": "T89-STP"}
        )
    async with _as(reports, tokens["commune"]) as commune:
        for_another = await commune.post(
            "/reports", json={"obligation_id": obligation["id"], "unit_code": "T89-STP"}
        )
    report_id = own.json()["report_id"]
    async with _as(reports, tokens["h802"]) as h802:
        not_yours = await h802.post(f"/reports/{report_id}/accept", json={"reviewer_unit": "H802"})
    async with _as(reports, tokens["snv"]) as snv:
        accepted = await snv.post(f"/reports/{report_id}/accept", json={"reviewer_unit": "T89-SNV"})

    async with _as(plans, tokens["admin"]) as admin:
        revoked = await admin.delete(f"/tokens/{tokens['stp'].token_id}")
    async with _as(reports, tokens["stp"]) as stp:

        async def refused_after_revocation() -> Any:
            response = await stp.get("/obligations")
            return response if response.status_code == 401 else None

        after_revocation = await eventually(refused_after_revocation)
    secured["clock"].set(NOW + timedelta(days=2))
    async with _as(reports, tokens["short"]) as short:
        expired = await short.get("/obligations")

    assert no_token.status_code == 401
    assert "Authorization: Bearer" in no_token.json()["error"]["message"]
    assert foreign_plan.status_code == 403
    assert "cannot issue plans for unit T89" in foreign_plan.json()["error"]["message"]
    assert (draft.status_code, issued.status_code) == (201, 200)
    assert integrator_reads.status_code == 200 and integrator_writes.status_code == 403
    assert own.status_code == 201
    assert for_another.status_code == 403
    assert "cannot submit reports for unit T89-STP" in for_another.json()["error"]["message"]
    assert not_yours.status_code == 403
    assert accepted.status_code == 200
    assert revoked.status_code == 200
    assert after_revocation.json()["error"]["message"] == "this token was revoked"
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "this token has expired"

    async with _as(plans, tokens["admin"]) as admin:
        plans_audit = (await admin.get("/audit", params={"limit": 1000})).json()
        # A date without a time or offset, as an official types it: Vietnam's midnight.
        long_ago = await admin.get("/audit", params={"limit": 1000, "since": "2000-01-02"})
        to_come = await admin.get("/audit", params={"since": "2999-01-02T07:00:00"})
    assert long_ago.status_code == 200 and len(long_ago.json()) == len(plans_audit)
    assert to_come.status_code == 200 and to_come.json() == []
    async with _as(reports, tokens["admin"]) as admin:
        reports_audit = (await admin.get("/audit", params={"limit": 1000})).json()
    refusals = {(a["outcome"], a["unit_code"]) for a in plans_audit + reports_audit}
    assert ("unauthenticated", "-") in refusals
    assert ("forbidden", "H801") in refusals  # the district planner's plan for T89
    assert ("forbidden", "X80101") in refusals  # the commune submitting for STP
    assert ("forbidden", "H802") in refusals  # H802 reviewing what goes to Home Affairs
    assert ("unauthenticated", "T89-STP") in refusals or any(
        a["outcome"] == "unauthenticated" and "revoked" in a["reason"] for a in reports_audit
    )
    done = {a["action"] for a in plans_audit + reports_audit if a["outcome"] == "done"}
    assert {
        "plan.drafted",
        "plan.issued",
        "token.created",
        "token.revoked",
        "report.submitted",
        "report.accepted",
    } <= done


async def test_subscriptions_are_changed_only_for_ones_own_units(secured: dict[str, Any]) -> None:
    notify, tokens = secured["notify"], secured["tokens"]
    for name in ("admin", "commune", "snv", "integrator"):
        await _known(notify, tokens[name])
    mail = {"event_types": ["report.submitted"], "channel": "email"}

    async with _as(notify, tokens["commune"]) as commune:
        for_home_affairs = await commune.post(
            "/subscriptions", json={**mail, "unit_code": "T89-SNV", "address": "a@x.gov.vn"}
        )
    async with _as(notify, tokens["snv"]) as snv:
        own = await snv.post(
            "/subscriptions", json={**mail, "unit_code": "T89-SNV", "address": "snv@x.gov.vn"}
        )
    async with _as(notify, tokens["integrator"]) as integrator:
        read_only = await integrator.post(
            "/subscriptions", json={**mail, "unit_code": "T89", "address": "i@x.gov.vn"}
        )
    async with _as(notify, tokens["commune"]) as commune:
        someone_elses = await commune.delete(f"/subscriptions/{own.json()['id']}")
    async with _as(notify, tokens["admin"]) as admin:

        async def in_subtree() -> httpx.Response | None:
            # The commune's place in the tree reaches notify with the registry's events.
            response = await admin.post(
                "/subscriptions", json={**mail, "unit_code": "X80101", "address": "x@x.gov.vn"}
            )
            return response if response.status_code == 201 else None

        await eventually(in_subtree)
        removed = await admin.delete(f"/subscriptions/{own.json()['id']}")
        audit = (await admin.get("/audit", params={"limit": 100})).json()

    assert for_home_affairs.status_code == 403
    assert "cannot subscribe for unit T89-SNV" in for_home_affairs.json()["error"]["message"]
    assert own.status_code == 201
    assert read_only.status_code == 403
    assert someone_elses.status_code == 403
    assert removed.status_code == 200 and removed.json()["active"] is False
    entries = {(a["action"], a["outcome"], a["unit_code"]) for a in audit}
    assert ("subscription.created", "done", "T89-SNV") in entries
    assert ("subscription.created", "done", "T89") in entries
    assert ("subscription.deactivated", "done", "T89") in entries
    forbidden = [a for a in audit if a["outcome"] == "forbidden"]
    assert {a["unit_code"] for a in forbidden} >= {"X80101", "T89"}
