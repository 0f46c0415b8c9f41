"""Routes are defined at module level and declare what they depend on, so a test replaces a
dependency with ``app.dependency_overrides``: the caller, the settings, the unit of work.

Each service's real app runs in process (httpx's ASGI transport) in the open development
mode, on a migrated SQLite database, without the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.notify.bootstrap import SERVICE as NOTIFY
from services.reports.bootstrap import SERVICE as REPORTS
from services.reports.entrypoints.dependencies import get_settings as reports_settings
from services.reports.settings import ReportsSettings
from shared.auth import Principal, Role
from shared.dependencies import get_uow
from shared.security import caller
from shared.service import ServiceDefinition


async def _app(definition: ServiceDefinition, database: Path) -> AsyncIterator[FastAPI]:
    url = f"sqlite+aiosqlite:///{database}"
    runtime = definition.runtime(definition.settings_type(database_url=url, auth="open"))
    await runtime.migrate()
    try:
        yield definition.app(runtime)
    finally:
        await runtime.engine.dispose()


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")


@pytest.fixture
async def notify(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async for app in _app(NOTIFY, tmp_path / "notify.sqlite3"):
        yield app


@pytest.fixture
async def reports(tmp_path: Path) -> AsyncIterator[FastAPI]:
    async for app in _app(REPORTS, tmp_path / "reports.sqlite3"):
        yield app


async def test_the_caller_is_a_dependency_a_test_replaces(notify: FastAPI) -> None:
    async with _client(notify) as client:
        assert (await client.get("/deliveries")).status_code == 200  # open mode: everyone
        integrator = Principal("tk-test", "T89", ("T89",), Role.INTEGRATOR)
        notify.dependency_overrides[caller] = lambda: integrator
        refused = await client.get("/deliveries")
    assert refused.status_code == 403
    assert "an integrator token reads events" in refused.json()["error"]["message"]


async def test_the_settings_are_a_dependency_a_test_replaces(reports: FastAPI) -> None:
    small = ReportsSettings(database_url="sqlite+aiosqlite://", attachment_max_bytes=10)
    reports.dependency_overrides[reports_settings] = lambda: small
    async with _client(reports) as client:
        answer = await client.put(
            "/reports/rp-1/attachments/bien-ban.pdf",
            content=b"%PDF-" + b"x" * 100,
            headers={"content-type": "application/pdf"},
        )
    assert answer.status_code == 413
    assert "larger than 10 bytes" in answer.json()["error"]["message"]


async def test_the_unit_of_work_is_a_dependency_a_test_replaces(reports: FastAPI) -> None:
    opened: list[str] = []

    async def counted_uow() -> AsyncIterator[object]:
        runtime = reports.state.runtime
        async with runtime.uow() as uow:
            opened.append("uow")
            yield uow

    reports.dependency_overrides[get_uow] = counted_uow
    async with _client(reports) as client:
        missing = await client.get("/reports/rp-none")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "no report rp-none"
    assert opened == ["uow"]
