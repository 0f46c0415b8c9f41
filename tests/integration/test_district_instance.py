"""A district runs its own reports service (its subtree, its own database) on the provincial
bus: its communes submit to it, it reviews them, its own report reaches the province."""

from __future__ import annotations

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
from tests.bodies import report_body
from tests.integration.test_plan_lifecycle import issue_province_and_district_plans
from tests.stack import clients, obligation_of
from tests.support import InProcessService, eventually, patience, service_settings


@pytest.fixture
async def instances(
    nats_server: NatsServer, tmp_path: Path, postgres_url_factory: Any
) -> AsyncIterator[dict[str, InProcessService]]:
    settings = {
        "plans": service_settings(
            PLANS, nats_url=nats_server.url, database_url=f"sqlite+aiosqlite:///{tmp_path}/plans.db"
        ),
        "province": service_settings(
            REPORTS,
            nats_url=nats_server.url,
            database_url=await postgres_url_factory(),
            delegated=["H801"],
            data_dir=str(tmp_path / "p"),
        ),
        "district": service_settings(
            REPORTS,
            nats_url=nats_server.url,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/h801.db",
            scope="H801",
            scope_path="T89.H801",
            data_dir=str(tmp_path / "d"),
        ),
    }
    running = {}
    for name, setting in settings.items():
        definition = PLANS if name == "plans" else REPORTS
        running[name] = await InProcessService(definition, setting).start()
    yield running
    for service in running.values():
        await service.stop()


async def _obligation(client: httpx.AsyncClient, unit: str) -> dict[str, Any]:
    return await obligation_of(client, unit)


async def test_a_district_instance_takes_its_communes_and_the_province_sees_the_district(
    instances: dict[str, InProcessService],
) -> None:
    three = (instances["plans"], instances["province"], instances["district"])
    async with clients(*three) as (plans, province, district):
        await issue_province_and_district_plans(plans)

        # The commune submits to its district's instance; the province's refuses it.
        commune = await _obligation(district, "X80101")
        # Both instances learn the plan from the bus, each at its own pace.
        await _obligation(province, "X80101")
        refused = await province.post(
            "/reports", json={"obligation_id": commune["id"], "unit_code": "X80101"}
        )
        taken = await district.post(
            "/reports",
            json=report_body(
                commune["id"],
                "X80101",
                indicators={"reception_sessions": 4, "citizens_received": 30},
            ),
        )
        reviewed = await district.post(
            f"/reports/{taken.json()['report_id']}/accept", json={"reviewer_unit": "H801"}
        )

        # The district's own report, with its communes' totals, goes to Home Affairs.
        own = await _obligation(district, "H801")
        sent = await district.post(
            "/reports",
            json=report_body(
                own["id"], "H801", indicators={"reception_sessions": 4, "citizens_received": 30}
            ),
        )

        # The province mirrors it and can review it as Home Affairs does.
        async def mirrored() -> Any:
            found = (await province.get(f"/obligations/{own['id']}/reports")).json()
            return found if found else None

        copies = await eventually(mirrored)
        at_province = (await province.get(f"/obligations/{own['id']}")).json()
        # A province department's own report stays with the province's instance.
        stp = await _obligation(province, "T89-STP")
        nc = await nats.connect(instances["plans"].settings.nats_url)
        try:
            over_bus = json.loads(
                (
                    await nc.request(
                        "qcdc.v1.rpc.report.submit.T89.H801.X80102",
                        json.dumps(
                            {
                                "obligation_id": (await _obligation(district, "X80102"))["id"],
                                "unit_code": "X80102",
                            }
                        ).encode(),
                        timeout=patience(10),
                    )
                ).data
            )
        finally:
            await nc.close()
        stp_at_district = await district.post(
            "/reports", json={"obligation_id": stp["id"], "unit_code": "T89-STP"}
        )

    assert refused.status_code == 422
    assert "taken by another instance" in refused.json()["error"]["message"]
    assert taken.status_code == 201 and taken.json()["receipt_number"].startswith("BC-H801-")
    assert reviewed.status_code == 200
    assert sent.status_code == 201
    assert copies[0]["receipt_number"] == sent.json()["receipt_number"]
    assert copies[0]["indicators"] == {"reception_sessions": 4, "citizens_received": 30}
    assert at_province["status"] == "submitted"
    assert stp_at_district.status_code == 422
    assert over_bus["receipt_number"].startswith("BC-H801-")
