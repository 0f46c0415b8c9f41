"""The ``qcdc`` command line: run services, provision the bus, replay outboxes, start all.

This is the one module that knows every service, as the CLI's composition root; the
services themselves never import each other.

Building the command tree (for ``qcdc --help``, or to run any one command) imports this
module and every service's CLI module, so at the top they import only typer, the standard
library and light parts of ``shared``; what a command needs (a service's runtime, the
database, the bus, document writers) it imports when it runs. ``qcdc --help`` then costs a
fraction of a second instead of importing every service (tests/unit/test_cli_startup.py).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from services.nats_cli import nats_app
from services.plans.entrypoints.cli import plans_app, units_app
from services.plans.entrypoints.cli.tokens import tokens_app
from services.reports.entrypoints.cli import reports_app
from services.up_cli import down, refuse_a_missing_data_dir, status, up
from shared.clock import parse_instant
from shared.files import keep_private

if TYPE_CHECKING:
    from nats.aio.client import Client

    from shared.service import ServiceDefinition

HELP_ASKED = "qcdc.help_asked"


class _Root(TyperGroup):
    """Notes whether any help page is asked for, before the commands are resolved: the
    root callback checks the data folder only for a command that will run."""

    # ``ctx`` is typer's vendored click Context, which typer does not export by name.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[HELP_ASKED] = "--help" in args
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_Root,
    help="QCDC: Grassroots Democracy Regulation plans and reports.",
    no_args_is_help=True,
)
bus_app = typer.Typer(help="The NATS JetStream bus.", no_args_is_help=True)
outbox_app = typer.Typer(help="Services' outboxes.", no_args_is_help=True)
deadletters_app = typer.Typer(
    help="Messages a consumer could never handle: read them, send one back.", no_args_is_help=True
)
events_app = typer.Typer(help="Events on the bus.", no_args_is_help=True)
app.add_typer(bus_app, name="bus")
app.add_typer(outbox_app, name="outbox")
app.add_typer(units_app, name="units")
app.add_typer(plans_app, name="plans")
app.add_typer(reports_app, name="reports")
app.add_typer(tokens_app, name="tokens")
app.add_typer(nats_app, name="nats")
app.add_typer(deadletters_app, name="deadletters")
app.add_typer(events_app, name="events")


T = TypeVar("T")


class ServiceName(StrEnum):
    plans = "plans"
    reports = "reports"
    notify = "notify"


class ServedName(StrEnum):
    """What ``qcdc serve`` runs: the three services and the portal (which has no database)."""

    plans = "plans"
    reports = "reports"
    notify = "notify"
    portal = "portal"


def definition(name: ServiceName | str) -> ServiceDefinition:
    module = importlib.import_module(f"services.{ServiceName(name).value}.bootstrap")
    service: ServiceDefinition = module.SERVICE
    return service


@app.command()
def serve(service: Annotated[ServedName, typer.Argument(help="Which service to run.")]) -> None:
    """Run one service (migrations, HTTP API, bus consumers and outbox relay), or the portal."""
    if service is ServedName.portal:
        from services.portal.bootstrap import SERVICE as PORTAL

        PORTAL.serve()
        return
    definition(service.value).serve()


@app.command()
def migrate(service: ServiceName) -> None:
    """Apply the service's database migrations and exit."""
    import asyncio

    async def _run() -> None:
        runtime = definition(service).runtime()
        await runtime.migrate()
        await runtime.engine.dispose()

    asyncio.run(_run())
    typer.echo(f"{service.value}: database at head")


@bus_app.command("provision")
def provision(
    nats_url: Annotated[str | None, typer.Option(help="Default: QCDC_NATS_URL.")] = None,
) -> None:
    """Create or update the JetStream streams (file storage, dedupe window, years of history)."""
    import asyncio

    import nats

    from shared.bus.streams import ALL_STREAMS
    from shared.bus.streams import provision as provision_streams
    from shared.settings import ServiceSettings

    settings = ServiceSettings()
    servers = [u.strip() for u in (nats_url or settings.nats_url).split(",")]

    async def _run() -> None:
        nc = await nats.connect(
            servers=servers, user=settings.nats_user, password=settings.nats_password
        )
        try:
            await provision_streams(nc.jetstream(), replicas=settings.stream_replicas)
        finally:
            await nc.close()

    asyncio.run(_run())
    typer.echo("streams ready: " + ", ".join(spec.name for spec in ALL_STREAMS))


@bus_app.command("copy")
def copy(
    source: Annotated[
        str,
        typer.Option("--from", help="The old bus, e.g. nats://old-host:4222 (comma-separated)."),
    ],
    nats_url: Annotated[
        str | None, typer.Option(help="The new bus. Default: QCDC_NATS_URL.")
    ] = None,
) -> None:
    """Copy every stream's messages, in order, from another bus onto this one (provisioned
    first, with QCDC_STREAM_REPLICAS): moving from one nats-server to a cluster."""
    import asyncio

    import nats

    from shared.bus.streams import copy_streams
    from shared.bus.streams import provision as provision_streams
    from shared.settings import ServiceSettings

    settings = ServiceSettings()
    login = {"user": settings.nats_user, "password": settings.nats_password}

    async def _run() -> dict[str, int]:
        old = await nats.connect(servers=[u.strip() for u in source.split(",")], **login)
        new = await nats.connect(
            servers=[u.strip() for u in (nats_url or settings.nats_url).split(",")], **login
        )
        try:
            await provision_streams(new.jetstream(), replicas=settings.stream_replicas)
            return await copy_streams(old.jetstream(), new.jetstream())
        finally:
            await old.close()
            await new.close()

    copied = asyncio.run(_run())
    typer.echo("copied: " + ", ".join(f"{name} {n}" for name, n in copied.items()))


@outbox_app.command("replay")
def replay(
    since: Annotated[str, typer.Option(help="ISO 8601 instant, e.g. 2026-11-01T00:00:00Z")],
    service: Annotated[list[ServiceName] | None, typer.Option(help="Default: all.")] = None,
) -> None:
    """Republish outbox rows created since a time; consumers' inboxes drop repeats."""
    import asyncio

    instant: datetime = parse_instant(since)

    async def _run(name: ServiceName) -> int:
        runtime = definition(name).runtime()
        await runtime.connect()
        try:
            await runtime.ensure_streams()  # a lost stream is recreated before refilling it
            return await runtime.relay.replay(instant)
        finally:
            await runtime.broker.stop()
            await runtime.engine.dispose()

    for name in service or list(ServiceName):
        count = asyncio.run(_run(name))
        typer.echo(f"{name.value}: republished {count} event(s) since {instant.isoformat()}")


@app.command()
def doctor(
    service: Annotated[
        list[ServiceName] | None,
        typer.Option(help="Whose database to check (default: all; one per container)."),
    ] = None,
) -> None:
    """Check NATS, the streams and consumers, dead letters, databases and migrations, the
    mail relay; exit 1 if anything needs an operator."""
    import asyncio

    from services.doctor import examine, healthy

    findings = asyncio.run(examine([s.value for s in service or list(ServiceName)]))
    for finding in findings:
        typer.echo(finding.line())
    if not healthy(findings):
        typer.echo("Something needs attention (✗ above).")
        raise typer.Exit(1)
    typer.echo("All is well.")


def _on_bus(work: Callable[[Client], Awaitable[T]]) -> T:
    """Run one operator action on the bus; a plain message and exit 1 when it cannot be done."""
    import asyncio

    from services.bus_tools import BusToolError, operator_connection
    from shared.settings import ServiceSettings

    async def _run() -> T:
        async with operator_connection(ServiceSettings()) as nc:
            return await work(nc)

    try:
        return asyncio.run(_run())
    except BusToolError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@deadletters_app.command("list")
def deadletters_list(
    limit: Annotated[int, typer.Option(min=1, help="The latest this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The latest dead letters: sequence, consumer, event, reason, whether sent back."""
    import json

    from services.bus_tools import dead_letters

    letters = _on_bus(lambda nc: dead_letters(nc, limit))
    for letter in letters:
        row = letter.summary()
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            sent = " (sent back)" if letter.retried else ""
            typer.echo(
                f"#{row['sequence']} {row['time']} {row['consumer']} {row['event_type']} "
                f"{row['subject']}{sent}: {row['reason']}"
            )
    if not letters and not as_json:
        typer.echo("No dead letters.")


@deadletters_app.command("show")
def deadletters_show(sequence: int) -> None:
    """One dead letter in full: why, where from, headers and body."""
    from services.bus_tools import dead_letter, describe

    typer.echo(describe(_on_bus(lambda nc: dead_letter(nc, sequence))))


@deadletters_app.command("retry")
def deadletters_retry(sequence: int) -> None:
    """Send a dead letter back to the consumer that gave up on it, once its cause is fixed;
    it is handled once, however often it is sent."""
    from services.bus_tools import retry

    target = _on_bus(lambda nc: retry(nc, sequence))
    typer.echo(f"dead letter #{sequence} sent back on {target}")


@events_app.command("tail")
def events_tail(
    filter_: Annotated[
        str | None,
        typer.Argument(
            metavar="FILTER", help="Subject filter, e.g. 'report.>' (qcdc.v1. implied)."
        ),
    ] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many.")] = None,
) -> None:
    """Print events as they are published: time, subject, type, id, body."""
    from services.bus_tools import tail, tail_subject

    _on_bus(lambda nc: tail(nc, tail_subject(filter_), typer.echo, count))


app.command()(up)
app.command()(status)
app.command()(down)


class _Console:
    """``ctx.obj`` of a ``qcdc`` process (:func:`main`), unlike a test's ``CliRunner``."""


@app.callback()
def _before_any_command(
    ctx: typer.Context,
    data_dir: Annotated[
        str | None,
        typer.Option(
            "--data-dir",
            envvar="QCDC_DATA_DIR",
            help="The data folder every command works on (default: var).",
        ),
    ] = None,
) -> None:
    # Every command, and the services it starts, read QCDC_DATA_DIR: one place sets it.
    if data_dir:
        os.environ["QCDC_DATA_DIR"] = data_dir
    if not ctx.meta.get(HELP_ASKED):  # the commands' help pages need no data folder
        refuse_a_missing_data_dir(ctx.invoked_subcommand)
    # Runs before any command, and not for --help: structlog (and asyncio, which it imports)
    # would be a good part of what `qcdc --help` costs. A test's CliRunner keeps its logging.
    if isinstance(ctx.obj, _Console):
        from shared.logging import configure_logging

        # Commands report on stdout; their logs go to stderr, quietly.
        configure_logging("cli", os.environ.get("QCDC_LOG_LEVEL", "WARNING"))


def main() -> None:
    # What qcdc writes (data folder, databases, mail, logs) and what it starts is private.
    keep_private()
    app(obj=_Console())
