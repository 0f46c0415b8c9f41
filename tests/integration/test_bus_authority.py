"""Who may say what on the bus: the province's mirror applies a district's reports and
reviews only when they come from the instance that owns the unit concerned, and
dead-letters anything else with the reason (the server's permissions are tested in
test_nats_permissions.py; this bus is open, so the forgeries reach the mirror)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import nats

from shared.bus.consumer import ORIGINAL_SUBJECT_HEADER, REASON_HEADER
from shared.bus.envelope import encode
from shared.events import ObligationRef, ReportAccepted, ReportKind
from tests.bodies import report_body
from tests.integration.test_district_instance import _obligation, instances  # noqa: F401
from tests.integration.test_plan_lifecycle import issue_province_and_district_plans
from tests.stack import clients
from tests.support import BusSpy, InProcessService, eventually

DEAD_LETTERS = "qcdc.v1.deadletter.reports.reports"


def _forged_acceptance(obligation: dict[str, Any], report: dict[str, Any]) -> ReportAccepted:
    return ReportAccepted(
        unit_path=obligation["unit_path"],
        report_id=report["report_id"],
        receipt_number=report["receipt_number"],
        obligation=ObligationRef(
            obligation_id=obligation["id"],
            plan_id=obligation["plan_id"],
            schedule_key=obligation["schedule_key"],
            report_kind=ReportKind(obligation["report_kind"]),
            unit_code=obligation["unit_code"],
            receiving_unit=obligation["receiving_unit"],
            period_start=obligation["period_start"],
            period_end=obligation["period_end"],
            due_at=obligation["due_at"],
        ),
        reviewed_by_unit=obligation["receiving_unit"],
        reviewed_at=datetime.now(UTC),
    )


async def _districts_own_report(
    plans: httpx.AsyncClient, district: httpx.AsyncClient
) -> tuple[dict[str, Any], httpx.Response]:
    """District H801's own six-month obligation and its report, sent to its own instance."""
    await issue_province_and_district_plans(plans)
    own = await _obligation(district, "H801")
    sent = await district.post("/reports", json=report_body(own["id"], "H801"))
    return own, sent


async def test_a_forged_acceptance_of_a_districts_own_report_is_dead_lettered(
    instances: dict[str, InProcessService],  # noqa: F811
    bus_spy: BusSpy,
) -> None:
    three = (instances["plans"], instances["province"], instances["district"])
    async with clients(*three) as (plans, province, district):
        own, sent = await _districts_own_report(plans, district)
        assert sent.status_code == 201, sent.text

        async def mirrored() -> Any:
            found = (await province.get(f"/obligations/{own['id']}/reports")).json()
            return found or None

        await eventually(mirrored)
        # The district's own report goes to Home Affairs (the province's instance): the
        # district says it was accepted, then someone says it as the province.
        event = _forged_acceptance(own, sent.json())
        nc = await nats.connect(instances["plans"].settings.nats_url)
        try:
            js = nc.jetstream()
            for source in ("/qcdc/reports-H801", "/qcdc/reports"):
                subject, headers, body = encode(event, source=source, correlation_id="forged")
                await js.publish(subject, body, headers=headers)
        finally:
            await nc.close()

        letters = await bus_spy.wait_for(
            lambda items: len([s for s in items if s.subject == DEAD_LETTERS]) >= 2
        )
        after = (await province.get(f"/obligations/{own['id']}")).json()
        mirrored_report = (await province.get(f"/reports/{sent.json()['report_id']}")).json()

    reasons = [s.headers[REASON_HEADER] for s in letters if s.subject == DEAD_LETTERS]
    assert all("T89-SNV" in reason for reason in reasons), reasons
    assert any("from /qcdc/reports-H801" in r for r in reasons), reasons
    assert any("never published this review" in r for r in reasons), reasons
    originals = {s.headers[ORIGINAL_SUBJECT_HEADER] for s in letters if s.subject == DEAD_LETTERS}
    assert originals == {"qcdc.v1.report.accepted.T89.H801"}
    assert after["status"] == "submitted"
    assert mirrored_report["status"] == "submitted"


async def test_the_provinces_own_review_of_a_district_report_is_applied(
    instances: dict[str, InProcessService],  # noqa: F811
    bus_spy: BusSpy,
) -> None:
    """Home Affairs reviewing the district's report on the province's instance: its own
    event comes back to its mirror and is not dead-lettered."""
    three = (instances["plans"], instances["province"], instances["district"])
    async with clients(*three) as (plans, province, district):
        own, sent = await _districts_own_report(plans, district)

        async def mirrored() -> Any:
            found = (await province.get(f"/obligations/{own['id']}/reports")).json()
            return found or None

        await eventually(mirrored)
        accepted = await province.post(
            f"/reports/{sent.json()['report_id']}/accept", json={"reviewer_unit": "T89-SNV"}
        )
        await bus_spy.wait_for_type(ReportAccepted.ce_type())

        # The commune's report, reviewed by its district, is the district's word.
        commune = await _obligation(district, "X80101")
        taken = await district.post(
            "/reports", json={"obligation_id": commune["id"], "unit_code": "X80101"}
        )
        await district.post(
            f"/reports/{taken.json()['report_id']}/accept", json={"reviewer_unit": "H801"}
        )

        async def commune_accepted() -> Any:
            found = (await province.get(f"/obligations/{commune['id']}")).json()
            return found if found["status"] == "accepted" else None

        at_province = await eventually(commune_accepted)

    assert accepted.status_code == 200, accepted.text
    assert at_province["status"] == "accepted"
    assert not [s for s in bus_spy.items if s.subject.startswith("qcdc.v1.deadletter.")]
