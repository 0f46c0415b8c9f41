"""``qcdc doctor``: is this deployment able to work? Plain words, and a non-zero exit if not.

It checks what an operator would otherwise check by hand, each from its source: NATS
answers; every stream exists with the limits the code declares; each durable consumer's
backlog; dead letters waiting; each service's database reachable and migrated to head;
the mail relay answers. It reads the same settings as the services (``QCDC_*``), so run
it where a service runs (on ``qcdc up``: beside it, same data folder).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import sqlalchemy as sa
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from services.bus_tools import BusToolError, dead_letters, operator_connection
from shared.bus.streams import ALL_STREAMS, StreamSpec
from shared.db import create_engine
from shared.service import ServiceDefinition
from shared.settings import ServiceSettings

SERVICES = ("plans", "reports", "notify")
LAG_WARNING = 1000
"""Messages pending for one consumer above which the doctor calls it behind."""


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Finding:
    status: Status
    what: str
    detail: str

    def line(self) -> str:
        mark = {Status.OK: "✓", Status.WARNING: "!", Status.PROBLEM: "✗"}[self.status]
        return f"{mark} {self.what}: {self.detail}"


def _ok(what: str, detail: str) -> Finding:
    return Finding(Status.OK, what, detail)


def _problem(what: str, detail: str) -> Finding:
    return Finding(Status.PROBLEM, what, detail)


# --- the bus ------------------------------------------------------------------------------


async def _stream_findings(nc: Client, spec: StreamSpec, replicas: int = 1) -> list[Finding]:
    js = nc.jetstream()
    what = f"stream {spec.name}"
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        return [_problem(what, "missing; create it with `qcdc bus provision`")]
    wanted, found = spec.config(replicas), info.config
    differences = [
        name
        for name in ("subjects", "storage", "max_age", "duplicate_window", "num_replicas")
        if _normal(getattr(found, name)) != _normal(getattr(wanted, name))
    ]
    state = f"{info.state.messages} messages, {info.state.bytes} bytes"
    findings = [
        Finding(
            Status.WARNING if differences else Status.OK,
            what,
            f"{state}; limits differ from the code's: {', '.join(differences)} "
            "(`qcdc bus provision` sets them)"
            if differences
            else f"{state}, limits as declared",
        )
    ]
    for consumer in await js.consumers_info(spec.name):
        findings.append(_consumer_finding(spec.name, consumer))
    return findings


def _normal(value: object) -> object:
    if isinstance(value, list):
        return sorted(value)
    if isinstance(value, float):
        return round(value)
    return value


def _consumer_finding(stream: str, consumer: object) -> Finding:
    name = getattr(consumer, "name", "?")
    pending = getattr(consumer, "num_pending", 0) or 0
    in_flight = getattr(consumer, "num_ack_pending", 0) or 0
    detail = f"{pending} waiting, {in_flight} being handled"
    if pending > LAG_WARNING:
        return Finding(Status.WARNING, f"consumer {stream}/{name}", f"behind: {detail}")
    return _ok(f"consumer {stream}/{name}", detail)


async def _dead_letter_finding(nc: Client) -> Finding:
    waiting = [d for d in await dead_letters(nc) if not d.retried]
    if not waiting:
        return _ok("dead letters", "none waiting")
    latest = waiting[-1]
    return _problem(
        "dead letters",
        f"{len(waiting)} waiting (latest #{latest.sequence}, {latest.consumer}: "
        f"{latest.reason[:120]}); see `qcdc deadletters list`",
    )


async def bus_findings(settings: ServiceSettings) -> list[Finding]:
    try:
        async with operator_connection(settings) as nc:
            findings = [_ok("NATS", f"answers at {settings.nats_url}")]
            for spec in ALL_STREAMS:
                findings += await _stream_findings(nc, spec, settings.stream_replicas)
            findings.append(await _dead_letter_finding(nc))
            return findings
    except BusToolError as exc:
        return [_problem("NATS", f"{exc}; is nats-server running?")]


# --- the databases ------------------------------------------------------------------------


def _definition(service: str) -> ServiceDefinition:
    module = importlib.import_module(f"services.{service}.bootstrap")
    definition: ServiceDefinition = module.SERVICE
    return definition


def _heads(migrations: Path) -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrations))
    return set(ScriptDirectory.from_config(config).get_heads())


def _sqlite_file(url: str) -> Path | None:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


async def database_finding(service: str) -> Finding:
    definition = _definition(service)
    settings = definition.settings_type()
    url = settings.resolved_database_url(service)
    what = f"{service} database"
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.exists():
        return _problem(what, f"{sqlite_file} does not exist (wrong data folder?)")
    # A reader: the running service's writes must not keep the doctor waiting (SQLite).
    engine = create_engine(url, reader=True)
    try:
        async with engine.connect() as conn:
            current = set(await conn.run_sync(_current_revisions))
    except Exception as exc:
        return _problem(what, f"not reachable: {exc.__class__.__name__}: {str(exc)[:200]}")
    finally:
        await engine.dispose()
    heads = _heads(definition.migrations)
    if current != heads:
        shown = ", ".join(sorted(current)) or "none"
        return _problem(
            what,
            f"migrations pending: at {shown}, code at {', '.join(sorted(heads))} "
            f"(`qcdc migrate {service}`)",
        )
    return _ok(what, f"reachable, migrated to {', '.join(sorted(heads))}")


def _current_revisions(connection: sa.Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_heads()


# --- the mail relay -----------------------------------------------------------------------


async def mail_relay_finding() -> Finding:
    import aiosmtplib

    settings = _definition("notify").settings_type()
    host, port = getattr(settings, "smtp_host", ""), getattr(settings, "smtp_port", 0)
    what = "mail relay"
    try:
        smtp = aiosmtplib.SMTP(hostname=host, port=port, timeout=5, start_tls=False)
        await smtp.connect()
        await smtp.noop()
        await smtp.quit()
    except Exception as exc:
        return _problem(what, f"{host}:{port} does not answer: {exc.__class__.__name__}: {exc}")
    return _ok(what, f"{host}:{port} answers")


# --- all of it ----------------------------------------------------------------------------


async def examine(services: Iterable[str] = SERVICES) -> list[Finding]:
    services = list(services)
    findings = await bus_findings(ServiceSettings())
    findings += await asyncio.gather(*(database_finding(s) for s in services))
    if "notify" in services:
        findings.append(await mail_relay_finding())
    return findings


def healthy(findings: Iterable[Finding]) -> bool:
    return all(f.status is not Status.PROBLEM for f in findings)
