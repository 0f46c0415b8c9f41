"""Each service's alembic migrations build exactly the tables its code declares, on SQLite
and on PostgreSQL, and go all the way down again: a column added to the code but not to a
migration (or the reverse) fails here, not in an operator's upgrade."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from services.notify.adapters import db as notify_db
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.adapters import db as plans_db
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.adapters import db as reports_db
from services.reports.bootstrap import SERVICE as REPORTS
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
