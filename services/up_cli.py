"""The ``qcdc`` commands of the embedded system: ``up`` (run it, supervised), ``status`` and
``down`` (from another terminal), and the data folder every command works on.

Registered on the root command in :mod:`services.cli`; like it, this module imports only
typer and the standard library at the top, so that ``qcdc --help`` stays fast.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer


def up(
    data_dir: Annotated[
        str | None,
        typer.Option(
            envvar="QCDC_DATA_DIR",
            help="Where NATS, SQLite files and mail go (default: var); created on first start.",
        ),
    ] = None,
    nats_port: Annotated[
        int,
        typer.Option(
            help="Embedded NATS port (with --cluster, the first node's; the next ones follow)."
        ),
    ] = 14222,
    cluster: Annotated[
        int,
        typer.Option(
            min=1,
            max=5,
            help="nats-servers forming the bus: 3 runs a JetStream cluster on loopback with "
            "every stream on each node (QCDC_STREAM_REPLICAS=3), so one node may die.",
        ),
    ] = 1,
    plans_port: int = 8301,
    reports_port: int = 8302,
    notify_port: int = 8303,
    portal_port: Annotated[int, typer.Option(help="The web portal's port.")] = 8304,
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
    """Start the embedded system: nats-server (or a cluster of them), the three services,
    the portal, a mail sink, demo data; restart any part that exits, until Ctrl-C, SIGTERM
    or `qcdc down`."""
    from services.embedded import EmbeddedPorts, run_embedded
    from services.supervisor import RestartPolicy

    ports = EmbeddedPorts(
        nats=nats_port,
        plans=plans_port,
        reports=reports_port,
        notify=notify_port,
        smtp=smtp_port,
        portal=portal_port,
    )
    code = run_embedded(
        data_dir or _data_dir(),
        ports,
        seed=seed,
        secure=secure,
        start_timeout=start_timeout,
        policy=RestartPolicy(max_failures=max_restarts, window=restart_window),
        cluster=cluster,
    )
    raise typer.Exit(code)


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


def refuse_a_missing_data_dir(command: str | None) -> None:
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
