"""``qcdc reports …`` against a running reports service's database: submit, review,
consolidate; the events the commands cause leave through the service's outbox."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docx
import pytest

from services.natsd import NatsServer
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from tests.integration.test_plan_lifecycle import _issue_province_plan, _obligations
from tests.integration.test_seed_plan import qcdc
from tests.stack import sqlite_urls, start_services, stop_services
from tests.support import BusSpy, InProcessService


@pytest.fixture
async def services(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    running = await start_services(
        (PLANS, REPORTS), sqlite_urls(tmp_path), nats_url=nats_server.url
    )
    yield running
    await stop_services(running)


async def test_submit_review_and_consolidate_from_the_command_line(
    services: dict[str, InProcessService], bus_spy: BusSpy, tmp_path: Path
) -> None:
    reports = services["reports"]
    async with services["plans"].client() as plans, reports.client() as client:
        plan = await _issue_province_plan(plans)
        found = await _obligations(client, 6, plan_id=plan["id"])
    target = next(
        o for o in found if o["unit_code"] == "T89-STP" and o["schedule_key"] == "six_month"
    )
    submit = ["reports", "submit", "--obligation", target["id"], "--unit", "T89-STP"]
    submit += ["--indicator", "reception_sessions=5", "--key", "cli-1"]
    receipt = await qcdc(reports, *submit)
    again = await qcdc(reports, *submit)  # a retry sends the same submission with the same key
    assert receipt.split()[0] == again.split()[0]
    assert receipt.split()[0].startswith("BC-")
    report_id = receipt.split()[-1]
    returned = await qcdc(
        reports,
        "reports",
        "review",
        report_id,
        "--reviewer",
        "T89-SNV",
        "--return",
        "--reason",
        "Bổ sung số liệu",
    )
    assert "returned" in returned
    out = tmp_path / "tong-hop.docx"
    written = await qcdc(
        reports,
        "reports",
        "consolidate",
        "--plan",
        plan["id"],
        "--key",
        "six_month",
        "--receiving-unit",
        "T89-SNV",
        "--output",
        str(out),
    )
    assert str(out) in written
    document = docx.Document(io.BytesIO(out.read_bytes()))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    text = "\n".join([p.text for p in document.paragraphs] + cells)
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text
    seen = await bus_spy.wait_for_type("qcdc.report.returned.v1")
    assert seen[0].subject == "qcdc.v1.report.returned.T89.T89-STP"
