"""Handlers for the unit registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from services.plans.adapters.repositories import UnitRepository
from services.plans.domain.unit_kinds import check_kind
from services.plans.domain.units import Unit, UnitRefused
from shared.auth import Principal, Role
from shared.errors import Conflict, Missing
from shared.events import Contacts
from shared.security import audit
from shared.uow import UnitOfWork


@dataclass(frozen=True)
class RegisterUnit:
    code: str
    name: str
    kind: str
    parent_code: str | None = None
    reports_to_code: str | None = None
    contacts: Contacts = field(default_factory=Contacts)
    tags: tuple[str, ...] = ()
    established_on: date | None = None


@dataclass(frozen=True)
class UpdateUnit:
    code: str
    name: str | None = None
    contacts: Contacts | None = None
    reports_to_code: str | None = None
    tags: tuple[str, ...] | None = None


async def register_unit(command: RegisterUnit, uow: UnitOfWork, *, caller: Principal) -> Unit:
    _administer(
        caller,
        await existing_unit(uow.repository(UnitRepository), command.parent_code, "parent_code"),
        command.code,
    )
    unit = await add_unit(command, uow.repository(UnitRepository), uow)
    audit(uow, caller, "unit.registered", unit.code)
    await uow.commit()
    return unit


async def add_unit(command: RegisterUnit, repository: UnitRepository, uow: UnitOfWork) -> Unit:
    """Register within an open unit of work, without committing (imports add many)."""
    check_kind(command.kind)
    if await repository.get(command.code) is not None:
        raise Conflict(f"unit {command.code} is already registered", field="code")
    unit = Unit.register(
        code=command.code,
        name=command.name,
        kind=command.kind,
        parent=await existing_unit(repository, command.parent_code, "parent_code"),
        reports_to=await existing_unit(repository, command.reports_to_code, "reports_to_code"),
        contacts=command.contacts,
        tags=command.tags,
        established_on=command.established_on,
    )
    await repository.add(unit, uow.clock.now())
    return unit


async def update_unit(command: UpdateUnit, uow: UnitOfWork, *, caller: Principal) -> Unit:
    repository = uow.repository(UnitRepository)
    unit = await _unit(repository, command.code)
    _administer(caller, unit, unit.code)
    changed = unit.update(
        name=command.name,
        contacts=command.contacts,
        reports_to=await existing_unit(repository, command.reports_to_code, "reports_to_code"),
        tags=command.tags,
    )
    if changed:
        await repository.save(unit, uow.clock.now())
        audit(uow, caller, "unit.updated", unit.code)
        await uow.commit()
    return unit


async def dissolve_unit(code: str, on: date, uow: UnitOfWork, *, caller: Principal) -> Unit:
    repository = uow.repository(UnitRepository)
    unit = await _unit(repository, code)
    _administer(caller, unit, unit.code)
    unit.dissolve(on)
    await repository.save(unit, uow.clock.now())
    audit(uow, caller, "unit.dissolved", unit.code)
    await uow.commit()
    return unit


async def existing_unit(repository: UnitRepository, code: str | None, field: str) -> Unit | None:
    if code is None:
        return None
    unit = await repository.get(code)
    if unit is None:
        raise UnitRefused(f"unknown unit {code}", field=field)
    return unit


async def _unit(repository: UnitRepository, code: str) -> Unit:
    unit = await repository.get(code)
    if unit is None:
        raise Missing(f"no unit {code}")
    return unit


def _administer(caller: Principal, unit: Unit | None, code: str) -> None:
    """Administrators manage the registry within their own subtree."""
    principal = caller
    principal.require(Role.ADMINISTRATOR)
    if unit is not None:
        principal.require_subtree(unit.path, f"manage unit {code}")
