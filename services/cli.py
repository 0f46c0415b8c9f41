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


def definition(name: ServiceName | str) -> ServiceDefinition:
    module = importlib.import_module(f"services.{ServiceName(name).value}.bootstrap")
    service: ServiceDefinition = module.SERVICE
    return service


@app.command()
def serve(service: Annotated[ServiceName, typer.Argument(help="Which service to run.")]) -> None:
    """Run one service: migrations, HTTP API, bus consumers and outbox relay."""
    definition(service).serve()


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
            await provision_streams(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(_run())
    typer.echo("streams ready: " + ", ".join(spec.name for spec in ALL_STREAMS))


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


@app.command()
def up(
    data_dir: Annotated[
        str | None,
        typer.Option(
            envvar="QCDC_DATA_DIR",
            help="Where NATS, SQLite files and mail go (default: var); created on first start.",
        ),
    ] = None,
    nats_port: Annotated[int, typer.Option(help="Embedded NATS port.")] = 14222,
    plans_port: int = 8301,
    reports_port: int = 8302,
    notify_port: int = 8303,
    smtp_port: Annotated[int, typer.Option(help="Local SMTP sink port.")] = 8025,
    seed: Annotated[bool, typer.Option(help="Seed demo units and a plan on first start.")] = True,
    secure: Annotated[
        bool, typer.Option("--secure", help="Require NATS credentials (generated per service).")
    ] = False,
    start_timeout: Annotated[
        float,
        typer.Option(
            min=1.0,
            envvar="QCDC_START_TIMEOUT",
            help="Seconds NATS, the mail sink and the services get to be ready.",
        ),
    ] = 120.0,
    max_restarts: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="QCDC_UP_MAX_RESTARTS",
            help="A part that fails this often within --restart-window stops the system.",
        ),
    ] = 5,
    restart_window: Annotated[
        float,
        typer.Option(
            min=1.0, envvar="QCDC_UP_RESTART_WINDOW", help="Seconds over which failures count."
        ),
    ] = 60.0,
) -> None:
    """Start the embedded system: nats-server, the three services, a mail sink, demo data;
    restart any part that exits, until Ctrl-C, SIGTERM or `qcdc down`."""
    from services.embedded import EmbeddedPorts, run_embedded
    from services.supervisor import RestartPolicy

    ports = EmbeddedPorts(
        nats=nats_port, plans=plans_port, reports=reports_port, notify=notify_port, smtp=smtp_port
    )
    code = run_embedded(
        data_dir or _data_dir(),
        ports,
        seed=seed,
        secure=secure,
        start_timeout=start_timeout,
        policy=RestartPolicy(max_failures=max_restarts, window=restart_window),
    )
    raise typer.Exit(code)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="The state file as it is.")] = False,
) -> None:
    """What `qcdc up` runs on the data folder: each part's pid, state and restarts; exit 1
    when it is not running."""
    import json
    from pathlib import Path

    from services.supervisor import orphans, read_state, supervisor_alive

    root = Path(_data_dir()).resolve()
    state = read_state(root)
    if state is None or not supervisor_alive(state):
        left = orphans(state) if state is not None else {}
        typer.echo(f"qcdc up is not running on {root}.")
        if left:
            parts = ", ".join(f"{name} (pid {pid})" for name, pid in left.items())
            typer.echo(f"Parts it left running: {parts}; `qcdc down` stops them.")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(state, indent=2, ensure_ascii=False))
        return
    doing = "stopping" if state.get("stopping") else "running"
    typer.echo(f"qcdc up {doing} on {root} (pid {state['pid']}, since {state['started_at']})")
    for name, child in state["children"].items():
        last = ""
        if child["restarts"]:
            last = f" (last exit {child['last_exit']}, restarted {child['last_restart_at']})"
        typer.echo(
            f"  {name:<9} pid {child['pid'] or '-':<8} {child['state']:<10} "
            f"restarts {child['restarts']}{last}  {child['address']}"
        )


@app.command()
def down(
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait for everything to stop.")
    ] = 120.0,
) -> None:
    """Stop the `qcdc up` running on the data folder (as Ctrl-C would) and wait for it."""
    from pathlib import Path

    from services.supervisor import (
        orphans,
        read_state,
        remove_state,
        stop_orphans,
        stop_supervisor,
        supervisor_alive,
    )

    root = Path(_data_dir()).resolve()
    state = read_state(root)
    if state is None or not supervisor_alive(state):
        left = orphans(state) if state is not None else {}
        if not left:
            typer.echo(f"qcdc up is not running on {root}.")
            return
        # qcdc up was killed outright: its parts outlived it (each in its process group).
        typer.echo(f"qcdc up is gone; stopping what it left running: {', '.join(left)}…")
        killed = stop_orphans(left, timeout / 2)
        remove_state(root)
        typer.echo(
            f"stopped (killed after {timeout / 2:g} s: {', '.join(killed)})"
            if killed
            else "stopped"
        )
        return
    typer.echo(f"stopping qcdc up (pid {state['pid']}) on {root}…")
    if not stop_supervisor(state, timeout):
        typer.echo(f"qcdc up (pid {state['pid']}) still runs after {timeout:g} s.", err=True)
        raise typer.Exit(1)
    typer.echo("stopped")


def _data_dir() -> str:
    """The data folder every command works on: --data-dir before the command, or
    QCDC_DATA_DIR, or ``var``."""
    return os.environ.get("QCDC_DATA_DIR") or "var"


NO_DATA_FOLDER = {"up", "bus", "events", "deadletters", "nats"}
"""Commands that create the data folder (up) or do not use it (the bus tools)."""
STATE_COMMANDS = {"status", "down"}
"""Commands that read the data folder whatever the database is."""


def _refuse_a_missing_data_dir(command: str | None) -> None:
    """Exit 2 rather than create empty databases in a folder that does not exist (a wrong
    --data-dir or QCDC_DATA_DIR, or the wrong working directory)."""
    if command is None or command in NO_DATA_FOLDER:
        return
    if command not in STATE_COMMANDS and os.environ.get("QCDC_DATABASE_URL"):
        return  # the databases are elsewhere (PostgreSQL, or a file named explicitly)
    from pathlib import Path

    folder = Path(_data_dir()).resolve()
    if not folder.is_dir():
        typer.echo(
            f"qcdc: the data folder {folder} does not exist (--data-dir, QCDC_DATA_DIR); "
            "`qcdc up` creates it on its first start.",
            err=True,
        )
        raise typer.Exit(2)


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
        _refuse_a_missing_data_dir(ctx.invoked_subcommand)
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
