"""What the benchmarks share: the machine they ran on, scratch databases, percentiles."""

from __future__ import annotations

import os
import platform
import statistics
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from tests.postgres import as_admin, async_url

POSTGRES_DSN = os.environ.get(
    "QCDC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def machine() -> dict[str, object]:
    """Enough to tell two machines' figures apart, and whether this one was busy."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_1m_at_start": round(os.getloadavg()[0], 2),
    }


def percentiles(values: Sequence[float], *points: int) -> dict[str, float]:
    """``{"p50": …}`` for each point, in the values' unit, rounded to 4 decimals."""
    if not values:
        return {f"p{p}": float("nan") for p in points}
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else []
    return {f"p{p}": round(cuts[p - 1] if cuts else values[0], 4) for p in points}


@asynccontextmanager
async def scratch_database(kind: str, folder: Path, name: str = "bench") -> AsyncIterator[str]:
    """A fresh, empty database for one benchmark run (SQLite file or PostgreSQL database),
    dropped afterwards; yields its async SQLAlchemy URL."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{folder}/{name}-{uuid.uuid4().hex[:8]}.db"
        return
    database = f"qcdc_bench_{name}_{uuid.uuid4().hex[:8]}"
    await as_admin(POSTGRES_DSN, f'CREATE DATABASE "{database}"')
    try:
        yield async_url(POSTGRES_DSN, database)
    finally:
        await as_admin(POSTGRES_DSN, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
