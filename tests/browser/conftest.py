"""A whole system for the browser tests: nats-server, the three services with tokens
required (QCDC_AUTH=tokens) on SQLite, the portal on real HTTP, and one Chromium.

Module-scoped (one event loop for the module): starting the services and the browser once
keeps the browser tests' time small. Debian's Chromium (``/usr/bin/chromium``, installed by
``make browser``) is driven by Playwright with its executable path set; Playwright's own
browser downloads are never used."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.natsd import NatsServer, free_port
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from services.portal.settings import PortalSettings
from services.reports.bootstrap import SERVICE as REPORTS
from shared.auth import Role
from shared.clock import ManualClock
from tests.bodies import plan_body, province_units, schedule_entry, unit_below
from tests.browser.idp import AUDIENCE, CLIENT_ID, TestProvider
from tests.stack import (
    Grant,
    console_tokens,
    issue_plan,
    register_units_at_console,
    serving_portal,
    start_services,
    stop_services,
)
from tests.support import (
    InProcessService,
    eventually,
    patience,
)

CHROMIUM = Path(os.environ.get("QCDC_CHROMIUM", "/usr/bin/chromium"))
NOW = datetime(2023, 2, 1, 2, 0, tzinfo=UTC)

# A two-level province (since 1 July 2025): communes report to Home Affairs directly.
COMMUNES = {
    "X001": "Ủy ban nhân dân xã Tân An",
    "X002": "Ủy ban nhân dân phường Hòa Bình",
    "X003": "Ủy ban nhân dân xã Đông Hưng",
}
UNITS: list[dict[str, Any]] = [
    *province_units("T89-SNV"),
    *(unit_below(code, name, "commune", "T89-SNV") for code, name in COMMUNES.items()),
]

PLAN: dict[str, Any] = plan_body(
    content_areas=[
        {"code": "3", "title": "Thực hiện Quy chế dân chủ ở xã, phường, thị trấn"},
        {"code": "5", "title": "Giám sát và phản biện xã hội của Mặt trận Tổ quốc"},
    ],
    assignees={"kinds_via_parent": ["commune"]},
    schedule=[schedule_entry(title="Báo cáo kết quả thực hiện 06 tháng")],
    # Communes hold no staff conference by default; here they do, so that a commune's
    # conference page is shown and checked (kinds are data).
    staff_conference={"required": True, "unit_kinds": ["commune"]},
)


SUBMITTERS = {"commune": "X001", "commune2": "X002", "commune3": "X003"}
GRANTS: list[Grant] = [
    ("admin", "T89", Role.ADMINISTRATOR, 365),
    ("planner", "T89", Role.PLANNER, 365),
    ("reviewer", "T89-SNV", Role.REVIEWER, 365),
    *((name, code, Role.SUBMITTER, 365) for name, code in SUBMITTERS.items()),
    ("public", "T89", Role.INTEGRATOR, 365),
]


@dataclass
class System:
    portal_url: str
    idp: TestProvider
    plan_id: str
    tokens: dict[str, str]
    services: dict[str, InProcessService]
    obligations: dict[str, str] = field(default_factory=dict)
    """Unit code → its six-month obligation."""


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    return CHROMIUM


# Playwright's own 30 s actions and 5 s assertions, scaled like every other wait.
PLAYWRIGHT_ACTION_MS = patience(30) * 1000
PLAYWRIGHT_EXPECT_MS = patience(5) * 1000


def _scale_waits(browser: Any) -> None:
    """Every context of ``browser`` and every ``expect`` wait as long as QCDC_TEST_PATIENCE
    says: on a busy machine a page takes longer to answer without anything being wrong."""
    from playwright.async_api import expect

    expect.set_options(timeout=PLAYWRIGHT_EXPECT_MS)
    open_context = browser.new_context

    async def new_context(**options: Any) -> Any:
        context = await open_context(**options)
        context.set_default_timeout(PLAYWRIGHT_ACTION_MS)
        return context

    browser.new_context = new_context


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser(chromium: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox cannot start as root (CI containers).
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox"]
        )
        _scale_waits(launched)
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    root = tmp_path_factory.mktemp("portal-system")
    nats = NatsServer(root / "nats", free_port())
    nats.start()
    idp = TestProvider(unit="X003", role="submitter")
    idp.start()
    clock = ManualClock(NOW)
    services: dict[str, InProcessService] = {}
    try:
        services = await start_services(
            (PLANS, REPORTS, NOTIFY),
            {
                name: f"sqlite+aiosqlite:///{root}/{name}.db"
                for name in ("plans", "reports", "notify")
            },
            clock,
            nats_url=nats.url,
            auth="tokens",
            data_dir=str(root),
            oidc_issuer=idp.issuer,
            oidc_audience=AUDIENCE,
        )
        tokens = await _console(services["plans"])
        plan_id = await _issue_plan(services["plans"], tokens["planner"])
        obligations = await _obligations(services["reports"], tokens["reviewer"], plan_id)
        for token in tokens.values():
            await _known(services["plans"], token, "/whoami")
            await _known(services["reports"], token, "/indicators")
        await _known(services["notify"], tokens["admin"], "/subscriptions")
        port = free_port()
        settings = PortalSettings(
            http_port=port,
            public_url=f"http://127.0.0.1:{port}",
            oidc_issuer=idp.issuer,
            oidc_client_id=CLIENT_ID,
            plans_url=services["plans"].url,
            reports_url=services["reports"].url,
            notify_url=services["notify"].url,
            nats_url=nats.url,
            data_dir=str(root),
            portal_secret="a secret for the browser tests only",
            public_token=tokens["public"],
        )
        async with serving_portal(settings) as portal_url:
            yield System(portal_url, idp, plan_id, tokens, services, obligations)
    finally:
        await stop_services(services)
        nats.stop()
        idp.stop()


async def _console(plans: InProcessService) -> dict[str, str]:
    """Units and tokens, as the operator creates them at the console."""
    await register_units_at_console(plans, UNITS)
    made = await console_tokens(plans, GRANTS)
    return {name: created.token for name, created in made.items()}


async def _known(service: InProcessService, token: str, probe: str) -> None:
    """Tokens reach every service over the bus: wait until this one knows it."""
    async with httpx.AsyncClient(
        base_url=service.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:

        async def ok() -> bool:
            return (await client.get(probe)).status_code == 200

        await eventually(ok)


async def _issue_plan(plans: InProcessService, planner: str) -> str:
    await _known(plans, planner, "/units")
    async with httpx.AsyncClient(
        base_url=plans.url, headers={"Authorization": f"Bearer {planner}"}
    ) as client:
        plan_id: str = (await issue_plan(client, PLAN))["id"]
    return plan_id


async def _obligations(reports: InProcessService, token: str, plan_id: str) -> dict[str, str]:
    await _known(reports, token, "/obligations")
    async with httpx.AsyncClient(
        base_url=reports.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:

        async def opened() -> dict[str, str] | None:
            found = (await client.get("/obligations", params={"plan_id": plan_id})).json()
            by_unit = {o["unit_code"]: o["id"] for o in found if o["schedule_key"] == "six_month"}
            return by_unit if {"X001", "X002", "X003"} <= set(by_unit) else None

        found: dict[str, str] = await eventually(opened)
    return found
