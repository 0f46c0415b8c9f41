"""Who may connect to NATS, and what each may do, read from the services' own code and the
unit registry (for ``qcdc nats config`` and ``qcdc up --secure``).

This module knows every service (to list the durable consumers each one creates, whose
names the JetStream permissions must spell out), so it lives beside the CLI's composition
root rather than in ``shared``; the permission rules themselves are in
:mod:`services.nats_auth`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from services import nats_auth, nats_integrators
from services.nats_auth import Principal, RegistryError, RegistryUnit
from services.nats_integrators import IntegratorSpec
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.adapters.repositories import UnitRepository
from services.plans.bootstrap import SERVICE as PLANS
from services.plans.handlers import unit_import
from services.reports.bootstrap import SERVICE as REPORTS
from services.reports.settings import ReportsSettings
from shared.bus.streams import Durable
from shared.service import ServiceDefinition
from shared.settings import ServiceSettings

# --- durable consumers, from the services' own code -----------------------------------------

# The runtime is built only to read what it would declare; nothing connects.
_NO_DATABASE = "sqlite+aiosqlite://"


def runtime_durables(definition: ServiceDefinition, settings: ServiceSettings) -> list[Durable]:
    """The durable consumers a service process declares on its broker, read from the broker
    itself: every consumer its runtime adds (its specs, and any the runtime adds for every
    service) is granted, and nothing else."""
    runtime = definition.runtime(settings)
    found: list[Durable] = []
    for subscriber in runtime.broker.subscribers:
        stream = getattr(subscriber, "stream", None)
        durable = getattr(getattr(subscriber, "config", None), "durable_name", None)
        if stream is not None and durable:
            found.append(Durable(stream.name, durable))
    return sorted(found, key=lambda d: (d.stream, d.name))  # a stable config diff


def service_durables() -> dict[str, list[Durable]]:
    """Each province service's consumers. The reports service is the whole-province
    instance here, whatever ``QCDC_SCOPE`` the operator's shell has."""
    return {
        PLANS.name: runtime_durables(PLANS, PLANS.settings_type(database_url=_NO_DATABASE)),
        REPORTS.name: runtime_durables(REPORTS, _reports_settings(scope=None)),
        NOTIFY.name: runtime_durables(NOTIFY, NOTIFY.settings_type(database_url=_NO_DATABASE)),
    }


def district_durables(code: str) -> list[Durable]:
    return runtime_durables(REPORTS, _reports_settings(scope=code))


def _reports_settings(scope: str | None) -> ReportsSettings:
    """A reports instance as its credential must allow it: with a subtree delegated to
    another instance, so that the consumer mirroring it is covered whenever the operator
    delegates one (an instance without any has no such consumer)."""
    return ReportsSettings(scope=scope, delegated=["ANY"], database_url=_NO_DATABASE)


# --- principals -----------------------------------------------------------------------------


def principals(
    units: Sequence[RegistryUnit],
    *,
    district_kinds: Iterable[str] = ("district",),
    districts: Iterable[str] = (),
    integrators: Iterable[str] = (),
) -> list[Principal]:
    """Everyone who may connect: the province's services, each district's reports instance,
    the integrators, and the operator."""
    by_service = service_durables()
    found = [
        nats_auth.service_principal(service, durables) for service, durables in by_service.items()
    ]
    taken = [durable for durables in by_service.values() for durable in durables]
    for unit in nats_auth.districts_of(units, district_kinds, districts):
        durables = district_durables(unit.code)
        found.append(nats_auth.district_principal(unit, durables))
        taken += durables
    found += integrator_credentials(integrators, units, taken)
    found.append(nats_auth.portal_principal())
    found.append(nats_auth.admin_principal())
    return found


def integrator_credentials(
    integrators: Iterable[str], units: Sequence[RegistryUnit], taken: Sequence[Durable]
) -> list[Principal]:
    """``--integrator NAME`` or ``NAME:UNIT``: read-only credentials that may touch no
    consumer in ``taken`` (the services' and district instances')."""
    specs = [IntegratorSpec.parse(value) for value in integrators]
    return nats_integrators.integrator_principals(specs, units, taken)


# --- the unit registry ----------------------------------------------------------------------


def registry_from_file(path: Path) -> list[RegistryUnit]:
    """A registry export (``qcdc units export``, CSV or YAML) of the whole province."""
    file_format = unit_import.FileFormat.of_path(path)
    parsed = unit_import.parse_file(unit_import.decode(path.read_bytes()), file_format)
    if parsed.errors:
        raise RegistryError("; ".join(str(error) for error in parsed.errors))
    rows = [row.unit for row in parsed.rows]
    paths = nats_auth.unit_paths({row.code: row.parent_code for row in rows})
    return [RegistryUnit(row.code, row.kind, paths[row.code]) for row in rows]


async def registry_from_database() -> list[RegistryUnit]:
    """The active units of the plans service's database (``QCDC_DATABASE_URL``)."""
    async with PLANS.offline() as runtime, runtime.uow() as uow:
        units = await UnitRepository(uow.session).all()
    return [
        RegistryUnit(unit.code, unit.kind, tuple(unit.path))
        for unit in units.values()
        if unit.active
    ]
