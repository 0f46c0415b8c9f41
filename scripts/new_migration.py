"""Developer aid: autogenerate the next alembic migration of a service from its tables.

Usage: python scripts/new_migration.py <service> "<message>" <revision id>
It migrates a scratch SQLite database to head, then compares it with the service's tables.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from shared.db import create_engine, migrate


async def main(service: str, message: str, revision: str) -> None:
    location = Path("services") / service / "adapters" / "migrations"
    engine = create_engine(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/scratch.db")
    await migrate(engine, location)

    def _generate(connection: sa.Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(location))
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True, rev_id=revision)

    async with engine.begin() as conn:
        await conn.run_sync(_generate)
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
