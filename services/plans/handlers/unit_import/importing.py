"""The handlers: import a unit file, export the registry."""

from __future__ import annotations

from collections.abc import Mapping

from services.plans.adapters.repositories import UnitRepository
from services.plans.domain.unit_kinds import (
    load_unit_kinds,
)
from services.plans.domain.units import Unit, UnitKind
from services.plans.handlers.unit_import.checks import ImportCounts, plan_import
from services.plans.handlers.unit_import.files import export_rows, render
from services.plans.handlers.unit_import.rows import (
    FileFormat,
    ImportRow,
    ParsedFile,
)
from services.plans.handlers.units import RegisterUnit, add_unit
from shared.mapping import taken
from shared.uow import UnitOfWork

# --- the handler ----------------------------------------------------------------------


async def import_units(
    parsed: ParsedFile, uow: UnitOfWork, kinds: Mapping[str, UnitKind] | None = None
) -> ImportCounts:
    """Import every row of ``parsed`` in one unit of work, or none (ImportRefused)."""
    repository = uow.repository(UnitRepository)
    registry = await repository.all()
    plan = plan_import(parsed, registry, load_unit_kinds() if kinds is None else kinds)
    known = dict(registry)
    for row in plan.creates:
        known[row.code] = await add_unit(_register_command(row), repository, uow)
    for row in plan.updates:
        await _update(row, known, repository, uow)
    await uow.commit()
    return ImportCounts(
        created=len(plan.creates), updated=len(plan.updates), unchanged=len(plan.unchanged)
    )


def _register_command(row: ImportRow) -> RegisterUnit:
    return taken(RegisterUnit, row.unit, contacts=row.unit.contacts)


async def _update(
    row: ImportRow, known: Mapping[str, Unit], repository: UnitRepository, uow: UnitOfWork
) -> None:
    unit = known[row.code]
    reports_to = row.unit.reports_to_code
    unit.update(
        name=row.unit.name,
        contacts=None if row.keep_contacts else row.unit.contacts,
        reports_to=known[reports_to] if reports_to else None,
        tags=row.unit.tags,
    )
    await repository.save(unit, uow.clock.now())


async def export_units(uow: UnitOfWork, file_format: FileFormat, under: str | None = None) -> str:
    registry = await uow.repository(UnitRepository).all()
    return render(export_rows(registry, under), file_format)
