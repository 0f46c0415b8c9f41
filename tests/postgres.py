"""Scratch PostgreSQL databases for the tests and the benchmarks: made and dropped through
the server's maintenance database, with asyncpg alone (no service code)."""

from __future__ import annotations

import asyncpg


async def as_admin(dsn: str, statement: str) -> None:
    """Run one statement (CREATE or DROP DATABASE) on the maintenance database ``dsn``."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def async_url(dsn: str, database: str) -> str:
    """SQLAlchemy's asyncpg URL of ``database`` on the server of ``dsn``."""
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{database}"
