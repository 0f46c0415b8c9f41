"""A whole system for the browser tests: nats-server, the three services with tokens
required (QCDC_AUTH=tokens) on SQLite, the portal on real HTTP, and one Chromium.

Module-scoped (one event loop for the module): starting the services and the browser once
keeps the browser tests' time small. Debian's Chromium (``/usr/bin/chromium``, installed by
``make browser``) is driven by Playwright with its executable path set; Playwright's own
browser downloads are never used."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from services.natsd import NatsServer, free_port
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.adapters.repositories import UnitRepository
from services.plans.bootstrap import SERVICE as PLANS
from services.plans.handlers import tokens as token_handlers
from services.plans.handlers import units as unit_handlers
from services.portal.entrypoints.http import create_portal_app
from services.portal.settings import PortalSettings
from services.reports.bootstrap import SERVICE as REPORTS
from shared.auth import CONSOLE, Role
from shared.clock import ManualClock
from shared.events import Contacts
from tests.browser.idp import AUDIENCE, CLIENT_ID, TestProvider
from tests.support import (
    DEFAULT_TIMEOUT,
    InProcessService,
    eventually,
    patience,
    service_settings,
)

CHROMIUM = Path(os.environ.get("QCDC_CHROMIUM", "/usr/bin/chromium"))
NOW = datetime(2023, 2, 1, 2, 0, tzinfo=UTC)

# A two-level province (since 1 July 2025): communes report to Home Affairs directly.
UNITS: list[dict[str, Any]] = [
    {"code": "T89", "name": "Ủy ban nhân dân tỉnh An Bình", "kind": "province"},
    {"code": "T89-SNV", "name": "Sở Nội vụ", "kind": "department", "parent_code": "T89",
     "tags": ["home_affairs"]},
    {"code": "X001", "name": "Ủy ban nhân dân xã Tân An", "kind": "commune", "parent_code": "T89",
     "reports_to_code": "T89-SNV"},
    {"code": "X002", "name": "Ủy ban nhân dân phường Hòa Bình", "kind": "commune",
     "parent_code": "T89", "reports_to_code": "T89-SNV"},
    {"code": "X003", "name": "Ủy ban nhân dân xã Đông Hưng", "kind": "commune",
     "parent_code": "T89", "reports_to_code": "T89-SNV"},
]  # fmt: skip

PLAN: dict[str, Any] = {
    "doc_number": "123/KH-UBND",
    "title": "Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2023",
    "issuing_unit": "kind:province",
    "province": "T89",
    "issued_on": "2023-01-16",
    "year": 2023,
    "content_areas": [
        {"code": "3", "title": "Thực hiện Quy chế dân chủ ở xã, phường, thị trấn"},
        {"code": "5", "title": "Giám sát và phản biện xã hội của Mặt trận Tổ quốc"},
    ],
    "assignees": {"kinds_via_parent": ["commune"]},
    "schedule": [
        {
            "key": "six_month",
            "kind": "six_month",
            "title": "Báo cáo kết quả thực hiện 06 tháng",
            "period_start": "2022-12-15",
            "period_end": "2023-06-08",
            "due_before": "2023-06-10",
            "receiving_unit": "tag:home_affairs",
        }
    ],
    # Communes hold no staff conference by default; here they do, so that a commune's
    # conference page is shown and checked (kinds are data).
    "staff_conference": {"required": True, "unit_kinds": ["commune"]},
}


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
    portal: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None
    try:
        for definition in (PLANS, REPORTS, NOTIFY):
            settings = service_settings(
                definition,
                nats_url=nats.url,
                auth="tokens",
                database_url=f"sqlite+aiosqlite:///{root}/{definition.name}.db",
                data_dir=str(root),
                oidc_issuer=idp.issuer,
                oidc_audience=AUDIENCE,
            )
            services[definition.name] = await InProcessService(definition, settings, clock).start()
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
        app = create_portal_app(settings)
        portal = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=settings.http_port, log_config=None)
        )
        task = asyncio.create_task(portal.serve())
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while not portal.started:
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError("the portal did not start")
            await asyncio.sleep(0.02)
        yield System(
            portal_url=f"http://127.0.0.1:{settings.http_port}",
            idp=idp,
            plan_id=plan_id,
            tokens=tokens,
            services=services,
            obligations=obligations,
        )
    finally:
        if portal is not None and task is not None:
            portal.should_exit = True
            await task
        for service in services.values():
            await service.stop()
        nats.stop()
        idp.stop()


async def _console(plans: InProcessService) -> dict[str, str]:
    """Units and tokens, as the operator creates them at the console."""
    async with plans.runtime.uow() as uow:
        for unit in UNITS:
            await unit_handlers.add_unit(
                unit_handlers.RegisterUnit(
                    code=unit["code"],
                    name=unit["name"],
                    kind=unit["kind"],
                    parent_code=unit.get("parent_code"),
                    reports_to_code=unit.get("reports_to_code"),
                    contacts=Contacts(),
                    tags=tuple(unit.get("tags", ())),
                ),
                UnitRepository(uow.session),
                uow,
            )
        await uow.commit()
    tokens: dict[str, str] = {}
    for name, code, role in (
        ("admin", "T89", Role.ADMINISTRATOR),
        ("planner", "T89", Role.PLANNER),
        ("reviewer", "T89-SNV", Role.REVIEWER),
        ("commune", "X001", Role.SUBMITTER),
        ("commune2", "X002", Role.SUBMITTER),
        ("commune3", "X003", Role.SUBMITTER),
        ("public", "T89", Role.INTEGRATOR),
    ):
        async with plans.runtime.uow() as uow:
            created = await token_handlers.create_token(
                token_handlers.CreateToken(code, role, 365), uow, caller=CONSOLE
            )
        tokens[name] = created.token
    return tokens


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
        draft = await client.post("/plans", json=PLAN)
        assert draft.status_code == 201, draft.text
        plan_id: str = draft.json()["id"]
        issued = await client.post(f"/plans/{plan_id}/issue")
        assert issued.status_code == 200, issued.text
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
