"""The seed's 2023 plan, imported with the operators' commands and issued against both
layouts: the fictional three-level province of 2023 and a real two-level province of 2025."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from vietnam_provinces import Province, Ward

from services.natsd import NatsServer
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared.clock import ManualClock
from tests.support import BusSpy, InProcessService, eventually, service_settings

ROOT = Path(__file__).resolve().parents[2]
SEED_PLAN = ROOT / "data" / "plans" / "2023-quy-che-dan-chu.yaml"
THREE_LEVEL = ROOT / "data" / "units" / "demo-three-level.yaml"
LAST_ON_TIME = {
    "six_month": "2023-06-09T16:59:59.999999Z",  # "trước ngày 10/6/2023"
    "annual": "2023-11-19T16:59:59.999999Z",  # "trước ngày 20/11/2023"
}


@pytest.fixture
async def plans(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[InProcessService]:
    settings = service_settings(
        PLANS, nats_url=nats_server.url, database_url=f"sqlite+aiosqlite:///{tmp_path}/plans.db"
    )
    service = await InProcessService(PLANS, settings).start()
    yield service
    await service.stop()


async def qcdc(service: InProcessService, *arguments: str) -> str:
    """Run a qcdc command against the running service's database, as an operator would."""
    env = {**os.environ, "QCDC_DATABASE_URL": service.settings.database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services",
        *arguments,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, (out + err).decode()
    return out.decode()


async def issued_plan(bus_spy: BusSpy) -> dict[str, Any]:
    seen = await bus_spy.wait_for_type("qcdc.plan.issued.v1")
    assert len(seen) == 1
    event: dict[str, Any] = json.loads(seen[0].data)
    return event


def deadlines(event: dict[str, Any]) -> dict[str, str]:
    return {e["key"]: e["due_at"].replace("+00:00", "Z") for e in event["schedule"]}


async def test_against_the_three_level_province(plans: InProcessService, bus_spy: BusSpy) -> None:
    await qcdc(plans, "units", "import", str(THREE_LEVEL))
    await qcdc(plans, "plans", "import", str(SEED_PLAN), "--province", "T89", "--issue")
    event = await issued_plan(bus_spy)

    units = yaml.safe_load(THREE_LEVEL.read_text(encoding="utf-8"))
    rows = units["units"] if isinstance(units, dict) else units
    expected = {
        r["code"] for r in rows if r["kind"] in ("department", "public_service_unit", "district")
    }
    assignees = {a["code"] for a in event["assignees"]}
    assert assignees == expected
    assert len(assignees) == sum(
        1 for r in rows if r["kind"] in ("department", "public_service_unit", "district")
    )
    assert {a["kind"] for a in event["assignees"]} == {
        "department",
        "public_service_unit",
        "district",
    }
    assert deadlines(event) == LAST_ON_TIME
    assert {e["receiving_unit"] for e in event["schedule"]} == {"T89-SNV"}
    assert event["issuing_unit"] == "T89"
    titles = [a["title"] for a in event["content_areas"]]
    assert len(titles) == 6
    assert titles[0].startswith("Tăng cường sự lãnh đạo, chỉ đạo của cấp ủy, chính quyền")
    assert titles[2] == "Thực hiện Quy chế dân chủ ở xã, phường, thị trấn"


async def test_against_a_real_two_level_province(plans: InProcessService, bus_spy: BusSpy) -> None:
    await qcdc(plans, "units", "import-admin", "--province", "12")
    await qcdc(plans, "plans", "import", str(SEED_PLAN), "--province", "12", "--issue")
    event = await issued_plan(bus_spy)

    async with plans.client() as client:
        registered = (await client.get("/units", params={"under": "12"})).json()
    province = next(p for p in Province.iter_all() if p.code.value == 12)
    communes = {f"{int(w.code):05d}" for w in Ward.iter_by_province(province.code)}
    departments = {
        u["code"] for u in registered if u["kind"] in ("department", "public_service_unit")
    }
    assignees = {a["code"] for a in event["assignees"]}
    assert {a["code"] for a in event["assignees"] if a["kind"] == "commune"} == communes
    assert assignees == departments | communes
    assert len(assignees) == len(departments) + 38
    assert deadlines(event) == LAST_ON_TIME
    assert {e["receiving_unit"] for e in event["schedule"]} == {"12-SNV"}


async def test_the_seed_plan_opens_the_expected_obligations_with_before_deadlines(
    nats_server: NatsServer, tmp_path: Path, plans: InProcessService
) -> None:
    clock = ManualClock(datetime(2023, 6, 9, 16, 59, 59, tzinfo=UTC))  # 09/06 23:59:59 ICT
    settings = service_settings(
        REPORTS, nats_url=nats_server.url, database_url=f"sqlite+aiosqlite:///{tmp_path}/reports.db"
    )
    reports = await InProcessService(REPORTS, settings, clock).start()
    try:
        await qcdc(plans, "units", "import", str(THREE_LEVEL))
        await qcdc(plans, "plans", "import", str(SEED_PLAN), "--province", "T89", "--issue")
        rows = yaml.safe_load(THREE_LEVEL.read_text(encoding="utf-8"))
        owing = {
            r["code"]
            for r in rows
            if r["kind"] in ("department", "public_service_unit", "district")
            and r["code"] != "T89-SNV"
        }  # Home Affairs receives, it does not owe itself
        # Part II.4: every department and public service unit, Home Affairs included, owes
        # its annual staff conference.
        holding = {r["code"] for r in rows if r["kind"] in ("department", "public_service_unit")}
        async with reports.client() as client:

            async def all_open() -> list[Any]:
                found: list[Any] = (await client.get("/obligations")).json()
                return found if len(found) == 2 * len(owing) + len(holding) else []

            everything = await eventually(all_open)
            obligations = [o for o in everything if o["schedule_key"] != "staff_conference"]
            conferences = [o for o in everything if o["schedule_key"] == "staff_conference"]
            six_month = {o["unit_code"]: o for o in obligations if o["schedule_key"] == "six_month"}
            on_time = await client.post(
                "/reports", json={"obligation_id": six_month["H801"]["id"], "unit_code": "H801"}
            )
            clock.set(datetime(2023, 6, 9, 17, 0, 0, tzinfo=UTC))  # 10/06 00:00:00 ICT
            late = await client.post(
                "/reports", json={"obligation_id": six_month["H802"]["id"], "unit_code": "H802"}
            )
    finally:
        await reports.stop()
    assert {o["unit_code"] for o in obligations} == owing
    assert {o["unit_code"] for o in conferences} == holding
    assert {o["due_at"] for o in conferences} == {"2023-03-31T16:59:59.999999Z"}  # before 1/4
    assert {o["due_at"] for o in six_month.values()} == {LAST_ON_TIME["six_month"]}
    assert {o["receiving_unit"] for o in obligations} == {"T89-SNV"}
    assert on_time.json()["on_time"] is True
    assert late.json()["on_time"] is False
