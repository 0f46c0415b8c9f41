"""Pooled PostgreSQL connections are not pinged before each use (a ping is three round trips
per transaction); when the server drops them, nothing accepted is lost: a submission goes
through on a fresh connection, and any other request answers 503 "retry" at most once. A
pooled connection the driver already saw closed is replaced at checkout, not drawn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from services.natsd import NatsServer
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared.db import create_engine
from tests.conftest import POSTGRES_DSN
from tests.integration.scenario import register_units_and_issue_plan
from tests.support import InProcessService, eventually, service_settings


async def _drop_connections_to(database_url: str) -> int:
    """What a restart of PostgreSQL does to the service's pooled connections."""
    database = database_url.rsplit("/", 1)[-1]
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        dropped = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await admin.close()
    return int(dropped)


@pytest.mark.postgres
@pytest.mark.parametrize("database_urls", ["postgresql"], indirect=True)
async def test_dropped_connections_lose_no_submission(
    nats_server: NatsServer, database_urls: dict[str, str], tmp_path: Path
) -> None:
    services = []
    for definition in (PLANS, REPORTS):
        settings = service_settings(
            definition, nats_url=nats_server.url, database_url=database_urls[definition.name]
        )
        services.append(await InProcessService(definition, settings).start())
    plans, reports = services
    try:
        async with plans.client() as plans_api, reports.client() as reports_api:
            await register_units_and_issue_plan(plans_api)

            async def opened() -> list[dict[str, str]]:
                found: list[dict[str, str]] = (await reports_api.get("/obligations")).json()
                return found if len(found) >= 2 else []

            first, second = (await eventually(opened))[:2]
            assert await _drop_connections_to(database_urls["reports"]) > 0
            submitted = await reports_api.post(
                "/reports",
                json={"obligation_id": first["id"], "unit_code": first["unit_code"]},
                headers={"Idempotency-Key": "after-restart"},
            )
            assert submitted.status_code == 201, submitted.text

            assert await _drop_connections_to(database_urls["reports"]) > 0
            answers = [(await reports_api.get(f"/obligations/{second['id']}")) for _ in range(3)]
            codes = [answer.status_code for answer in answers]
            assert codes.count(503) <= 1 and codes[-1] == 200, codes
            if 503 in codes:
                refused = answers[codes.index(503)]
                assert refused.headers["Retry-After"] == "1"
                assert "retry" in refused.json()["error"]["message"]
            stored = await reports_api.get(f"/obligations/{first['id']}")
            assert stored.json()["status"] == "submitted"
    finally:
        for service in reversed(services):
            await service.stop()


@pytest.mark.postgres
async def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout(
    postgres_url_factory: Callable[[], Awaitable[str]],
) -> None:
    """No request draws a connection the driver already saw closed: it is replaced, not
    failed (the 503 above is left for connections that die while in use)."""
    url = await postgres_url_factory()
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            pooled = (await conn.get_raw_connection()).driver_connection
            assert pooled is not None
        assert await _drop_connections_to(url) == 1
        await eventually(lambda: _closed(pooled))  # the driver reads the server's goodbye
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT 1")) == 1
            replaced = (await conn.get_raw_connection()).driver_connection
        assert replaced is not pooled
    finally:
        await engine.dispose()


async def _closed(connection: Any) -> bool:
    return bool(connection.is_closed())
