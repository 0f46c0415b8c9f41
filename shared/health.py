"""Readiness: may this service be sent work now, and if not, why not.

Ready means: the database answers and is migrated to the head this code expects, NATS is
connected, and JetStream holds the service's streams and every durable consumer it binds.
Each check is bounded in time, so a probe answers even while a part hangs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from shared.outage import database_outage
from shared.runtime import Runtime

CHECK_TIMEOUT_S = 3.0
"""A part that has not answered in this time is "not ready"."""


@dataclass
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)
    """Each part: "ok", or what is wrong with it."""
    reasons: list[str] = field(default_factory=list)
    retry_after: int | None = None

    @property
    def ready(self) -> bool:
        return not self.reasons

    def fail(self, part: str, state: str, reason: str) -> None:
        self.checks[part] = state
        self.reasons.append(reason)

    def body(self, service: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "service": service,
            "status": "ready" if self.ready else "not ready",
            "checks": self.checks,
        }
        if self.reasons:
            body["reasons"] = self.reasons
        return body


@cache
def migration_heads(script_location: Path) -> frozenset[str]:
    """The revisions this code migrates to (read once: the files do not change)."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


async def readiness(runtime: Runtime) -> Readiness:
    found = Readiness()
    await asyncio.gather(_database(runtime, found), _bus(runtime, found))
    return found


async def _database(runtime: Runtime, found: Readiness) -> None:
    """One query: the migration version answers "reachable" and "migrated" at once."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), runtime.engine.connect() as conn:
            answer = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            versions = set(answer.scalars())
    except TimeoutError:
        found.retry_after = 5
        found.fail("database", "down", f"the database did not answer within {CHECK_TIMEOUT_S:g} s")
        return
    except Exception as exc:
        retry_after = database_outage(exc)
        if retry_after is None:
            reason = f"the migration version cannot be read ({type(exc).__name__})"
            found.fail("database", "not migrated", reason)
            return
        found.retry_after = retry_after
        found.fail("database", "down", "the database is unreachable")
        return
    heads = migration_heads(runtime.migrations)
    if versions != heads:
        found.fail(
            "database",
            "not migrated",
            f"the database is at revision {', '.join(sorted(versions)) or 'none'}, "
            f"this code expects {', '.join(sorted(heads))}",
        )
        return
    found.checks["database"] = "ok"


async def _bus(runtime: Runtime, found: Readiness) -> None:
    if not runtime.broker.connection.is_connected:
        found.fail("nats", "down", "NATS is not connected")
        found.checks["streams"] = found.checks["consumers"] = "unknown"
        return
    found.checks["nats"] = "ok"
    js = runtime.jetstream()
    # The streams its consumers read (the ones its NATS credential may ask about).
    streams = sorted({durable.stream for durable in runtime.durables})
    missing_streams = await _missing(js.stream_info, [(s,) for s in streams])
    if missing_streams:
        names = ", ".join(s for (s,) in missing_streams)
        found.fail("streams", "missing", f"stream(s) not found or not answering: {names}")
    else:
        found.checks["streams"] = "ok"
    missing = await _missing(js.consumer_info, [(d.stream, d.name) for d in runtime.durables])
    if missing:
        names = ", ".join(name for _, name in missing)
        found.fail("consumers", "missing", f"durable consumer(s) not found: {names}")
    else:
        found.checks["consumers"] = "ok"


async def _missing(ask: Any, each: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    async def one(args: tuple[str, ...]) -> bool:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await ask(*args)
        except Exception:
            return False
        return True

    answers = await asyncio.gather(*(one(args) for args in each))
    return [args for args, ok in zip(each, answers, strict=True) if not ok]
