"""Each service's alembic migrations build exactly the tables its code declares, on SQLite
and on PostgreSQL, and go all the way down again: a column added to the code but not to a
migration (or the reverse) fails here, not in an operator's upgrade."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from services.notify.adapters import db as notify_db
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.adapters import db as plans_db
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.adapters import db as reports_db
from services.reports.bootstrap import SERVICE as REPORTS
from shared.db import migrate
from shared.service import ServiceDefinition

SERVICES: dict[str, tuple[ServiceDefinition, sa.MetaData]] = {
    "plans": (PLANS, plans_db.metadata),
    "reports": (REPORTS, reports_db.metadata),
    "notify": (NOTIFY, notify_db.metadata),
}


def _differences(connection: sa.Connection, metadata: sa.MetaData) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": False}
    )
    diffs = compare_metadata(context, metadata)
    return [d for d in diffs if not _is_alembic_version(d)]


def _downgrade_to_base(connection: sa.Connection, definition: ServiceDefinition) -> list[str]:
    config = Config()
    config.set_main_option("script_location", str(definition.migrations))
    config.attributes["connection"] = connection
    command.downgrade(config, "base")
    return sorted(set(sa.inspect(connection).get_table_names()) - {"alembic_version"})


def _is_alembic_version(diff: Any) -> bool:
    return isinstance(diff, tuple) and getattr(diff[1], "name", None) == "alembic_version"


@pytest.mark.parametrize("name", SERVICES)
async def test_migrations_build_what_the_code_declares(
    name: str, database_urls: dict[str, str]
) -> None:
    definition, metadata = SERVICES[name]
    settings = definition.settings_type(database_url=database_urls[name])
    async with definition.offline(settings) as runtime:
        async with runtime.engine.connect() as connection:
            diffs = await connection.run_sync(_differences, metadata)
        async with runtime.engine.begin() as connection:
            left = await connection.run_sync(_downgrade_to_base, definition)
    assert diffs == []
    assert left == []


def _upgrade(connection: sa.Connection, definition: ServiceDefinition, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(definition.migrations))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


LEGACY_OBLIGATION = sa.text(
    "INSERT INTO obligations (id, plan_id, schedule_key, report_kind, unit_code, unit_path, "
    "receiving_unit, period_start, period_end, due_at, status, opened_at, owned) VALUES "
    "('o-1', 'p-1', 'six_month', 'six_month', 'T89-STP', :path, 'T89-SNV', :start, :end, "
    ":due, 'submitted', :due, :owned)"
)
LEGACY_REPORT = sa.text(
    "INSERT INTO reports (id, obligation_id, version, receipt_number, idempotency_key, "
    "submitted_at, on_time, narrative, indicators) VALUES "
    "('r-1', 'o-1', 1, 'BC-2023-000001', 'k-1', :due, :on_time, :empty, :empty)"
)


async def test_keys_given_before_0009_stay_the_units_own(database_urls: dict[str, str]) -> None:
    """A retry after the upgrade still finds the receipt a unit was given before it."""
    settings = REPORTS.settings_type(database_url=database_urls["reports"])
    runtime = REPORTS.runtime(settings)
    due = datetime(2023, 6, 9, 16, 59, tzinfo=UTC)
    try:
        async with runtime.engine.begin() as connection:
            await connection.run_sync(_upgrade, REPORTS, "0007")
            values = {"path": '["T89", "T89-STP"]', "start": date(2022, 12, 15)}
            await connection.execute(
                LEGACY_OBLIGATION, {**values, "end": date(2023, 6, 8), "due": due, "owned": True}
            )
            await connection.execute(LEGACY_REPORT, {"due": due, "on_time": True, "empty": "{}"})
            await connection.run_sync(_upgrade, REPORTS, "head")
            keys = (await connection.execute(sa.select(reports_db.idempotency_keys))).all()
            left = await connection.scalar(sa.select(reports_db.reports.c.idempotency_key))
            areas = await connection.scalar(sa.select(reports_db.obligations.c.content_areas))
    finally:
        await runtime.engine.dispose()
    assert [(k.unit_code, k.idempotency_key, k.report_id) for k in keys] == [
        ("T89-STP", "k-1", "r-1")
    ]
    assert left is None and areas is None


@pytest.mark.postgres
async def test_replicas_starting_together_migrate_one_at_a_time(
    postgres_url_factory: Any,
) -> None:
    """Two replicas of reports migrating one empty PostgreSQL database at once: both reach
    head (without the lock, the second fails creating tables the first already made)."""
    url = await postgres_url_factory()
    engines = [create_async_engine(url) for _ in range(2)]
    try:
        await asyncio.gather(*(migrate(engine, REPORTS.migrations) for engine in engines))
        async with engines[0].connect() as connection:
            diffs = await connection.run_sync(_differences, reports_db.metadata)
        assert diffs == []
    finally:
        for engine in engines:
            await engine.dispose()
