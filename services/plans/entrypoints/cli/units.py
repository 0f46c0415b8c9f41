"""``qcdc units …``: the unit registry from the command line.

Commands work on the plans database directly (through the handlers, in one unit of work);
the events they cause wait in the outbox until the running service publishes them. The
service's modules are imported inside the commands, so that building the CLI (``qcdc
--help``) does not import them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from shared.errors import Missing, Refused

if TYPE_CHECKING:
    from services.plans.domain.units import Unit
    from services.plans.handlers.unit_import import ImportCounts
    from shared.uow import UnitOfWork

units_app = typer.Typer(
    help="The unit registry: import, export, real administrative units.", no_args_is_help=True
)
T = TypeVar("T")


class ExportFormat(StrEnum):
    """The values of ``unit_import.FileFormat``, declared here so that the option's choices
    are known without importing the handlers."""

    CSV = "csv"
    YAML = "yaml"


def _run(work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """One unit of work against the plans database; a refusal prints one line per error
    and exits 1."""
    import asyncio

    from services.plans.bootstrap import SERVICE
    from services.plans.domain.unit_kinds import DataFileError
    from services.plans.handlers import unit_import as handlers

    async def _main() -> T:
        async with SERVICE.offline() as runtime, runtime.uow() as uow:
            return await work(uow)

    try:
        return asyncio.run(_main())
    except handlers.ImportRefused as exc:
        for error in exc.row_errors:
            typer.echo(str(error), err=True)
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from exc
    except (Refused, Missing, DataFileError) as exc:
        where = f" ({exc.field})" if isinstance(exc, Refused) and exc.field else ""
        typer.echo(f"refused{where}: {exc}", err=True)
        raise typer.Exit(1) from exc


def _counts(counts: ImportCounts) -> str:
    return f"{counts.created} created, {counts.updated} updated, {counts.unchanged} unchanged"


@units_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import units from a .csv or .yaml file: all rows, or none if any is wrong."""
    from services.plans.handlers import unit_import as handlers

    async def work(uow: UnitOfWork) -> ImportCounts:
        file_format = handlers.FileFormat.of_path(file)
        parsed = handlers.parse_file(handlers.decode(file.read_bytes()), file_format)
        return await handlers.import_units(parsed, uow)

    typer.echo(_counts(_run(work)))


@units_app.command("export")
def export(
    file_format: Annotated[
        ExportFormat, typer.Option("--format", help="csv or yaml.")
    ] = ExportFormat.CSV,
    under: Annotated[str | None, typer.Option(help="Only this unit and its subtree.")] = None,
    output: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write here instead of to stdout.")
    ] = None,
) -> None:
    """Export the registry (active units) in the import format."""
    from services.plans.handlers import unit_import as handlers

    chosen = handlers.FileFormat(file_format.value)
    text = _run(lambda uow: handlers.export_units(uow, chosen, under))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@units_app.command("list")
def list_units(
    under: Annotated[str | None, typer.Option(help="Only the subtree of this unit.")] = None,
) -> None:
    """List units: code, name, kind, parent, who receives their reports."""
    from rich.console import Console
    from rich.table import Table

    from services.plans.adapters.repositories import UnitRepository

    async def work(uow: UnitOfWork) -> list[Unit]:
        registry = await UnitRepository(uow.session).all()
        if under is not None and under not in registry:
            raise Missing(f"no unit {under}")
        return [u for u in registry.values() if under is None or u.is_within(under)]

    table = Table("code", "name", "kind", "parent", "reports to", "tags", "state")
    for unit in _run(work):
        state = "active" if unit.active else f"dissolved {unit.dissolved_on:%d/%m/%Y}"
        table.add_row(
            unit.code,
            unit.name,
            unit.kind,
            unit.parent_code or "",
            unit.reports_to_code or "",
            ", ".join(unit.tags),
            state,
        )
    Console().print(table)


@units_app.command("import-admin")
def import_admin(
    province: Annotated[
        str | None, typer.Option(help='GSO code ("01" or "1") or codename ("ha_noi").')
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the 34 provinces.")] = False,
    with_demo_contacts: Annotated[
        bool, typer.Option("--demo-contacts", help="Give every unit demo e-mail addresses.")
    ] = False,
    departments: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Instead of data/units/departments.yaml."),
    ] = None,
) -> None:
    """Register a real province (since 1 July 2025), its departments and every commune."""
    from services.plans.handlers import unit_import as handlers

    if list_:
        for item in handlers.list_provinces():
            typer.echo(f"{int(item.code):02d}  {item.codename:<14} {item.name}")
        return
    if province is None:
        raise typer.BadParameter("give --province CODE, or --list", param_hint="--province")
    reference = province

    async def work(uow: UnitOfWork) -> ImportCounts:
        specs = handlers.load_departments(departments)
        return await handlers.import_admin(
            reference, uow, with_demo_contacts=with_demo_contacts, departments=specs
        )

    typer.echo(_counts(_run(work)))
