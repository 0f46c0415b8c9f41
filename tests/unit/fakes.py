"""An in-memory unit of work and repositories, for testing handlers without a database.

A handler reaches its repositories only through ``uow.repository(Kind)``; the fake hands it
in-memory ones, records what it publishes and audits, and counts commits. The integration
tests keep running the same handlers on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, cast

from services.plans.adapters.repositories import UnitRepository
from services.plans.domain.units import Unit
from services.reports.adapters.inspections import InspectionRepository
from services.reports.adapters.recommendations import RecommendationRepository
from services.reports.adapters.repositories import (
    ObligationRepository,
    ReportRepository,
    UnitDirectory,
)
from services.reports.domain.inspections import Inspection
from services.reports.domain.model import Obligation, Report
from services.reports.domain.recommendations import Recommendation
from shared.auth import Principal
from shared.clock import ManualClock
from shared.events import Event
from shared.uow import UnitOfWork

R = TypeVar("R")
A = TypeVar("A")


class Tracking:
    """An in-memory repository telling its fake unit of work what it loads and stores."""

    uow: FakeUnitOfWork | None = None

    def seen(self, aggregate: A) -> A:
        return aggregate if self.uow is None else self.uow.saw(aggregate)


class FakeUnitOfWork:
    """What a handler sees of :class:`shared.uow.UnitOfWork`, in memory."""

    def __init__(self, now: datetime, *repositories: object) -> None:
        self.clock = ManualClock(now)
        self.source = "test"
        self.security = None
        self.repositories: dict[type[Any], object] = {}
        for repository in repositories:
            kind = getattr(repository, "KIND", type(repository))
            self.repositories[kind] = repository
            if isinstance(repository, Tracking):
                repository.uow = self
        self.seen: list[Any] = []
        self.published: list[Event] = []
        self.audits: list[tuple[str, str, str]] = []
        self.commits = 0
        self._after_commit: list[Callable[[], None]] = []

    def repository(self, kind: type[R]) -> R:
        return cast(R, self.repositories[kind])

    def publish(self, *events: Event) -> list[str]:
        self.published.extend(events)
        return [f"ev-{len(self.published) - i}" for i in range(len(events))]

    def audit(self, principal: Principal, action: str, target: str = "", **_: str) -> None:
        self.audits.append((principal.unit_code, action, target))

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def saw(self, aggregate: A) -> A:
        """As :func:`shared.uow.seen`: its events reach ``published`` on commit."""
        if not any(a is aggregate for a in self.seen):
            self.seen.append(aggregate)
        return aggregate

    async def commit(self) -> None:
        for aggregate in self.seen:  # as UnitOfWork.collect
            self.published.extend(
                e for e in aggregate.events if not any(e is p for p in self.published)
            )
        self.commits += 1
        for callback in self._after_commit:
            callback()
        self._after_commit.clear()

    def as_uow(self) -> UnitOfWork:
        """For a handler's ``uow: UnitOfWork`` argument (the fake is duck-typed)."""
        return cast(UnitOfWork, self)


def _loaded(obligation: Obligation) -> Obligation:
    """A fresh copy without pending events, as a database hands it out."""
    return replace(copy.deepcopy(obligation), events=[])


class InMemoryUnits(Tracking):
    """:class:`UnitRepository`, in memory."""

    KIND = UnitRepository

    def __init__(self, *units: Unit) -> None:
        self.units = {u.code: u for u in units}

    async def get(self, code: str) -> Unit | None:
        return self.units.get(code)

    async def all(self) -> dict[str, Unit]:
        return dict(self.units)

    async def add(self, unit: Unit, registered_at: datetime) -> None:
        self.units[unit.code] = self.seen(unit)

    async def save(self, unit: Unit, updated_at: datetime) -> None:
        self.units[unit.code] = self.seen(unit)


class InMemoryObligations(Tracking):
    """:class:`ObligationRepository`, as far as intake and review need it."""

    KIND = ObligationRepository

    def __init__(self, *obligations: Obligation) -> None:
        self.obligations = {o.id: o for o in obligations}
        self.saved: list[Obligation] = []

    async def get(self, obligation_id: str) -> Obligation | None:
        found = self.obligations.get(obligation_id)
        return None if found is None else self.seen(_loaded(found))

    async def save(self, obligation: Obligation) -> None:
        self.saved.append(self.seen(obligation))

    async def add_if_missing(self, obligation: Obligation, opened_at: datetime) -> bool:
        if obligation.id in self.obligations:
            return False
        self.obligations[obligation.id] = self.seen(obligation)
        return True
        self.obligations[obligation.id] = obligation

    async def get_with_last_version(
        self, obligation_id: str, idempotency_key: str | None = None
    ) -> tuple[Obligation, int, str | None] | None:
        """Needs the reports beside it: :meth:`InMemoryReports.beside`."""
        obligation = self.obligations.get(obligation_id)
        if obligation is None:
            return None
        versions = await self.reports.versions(obligation_id)
        keyed = self.reports.keys.get((obligation.unit_code, idempotency_key or ""))
        return self.seen(_loaded(obligation)), max((r.version for r in versions), default=0), keyed

    reports: InMemoryReports


class InMemoryReports:
    """:class:`ReportRepository`, as far as intake and review need it."""

    KIND = ReportRepository

    def __init__(self, *reports: Report) -> None:
        self.reports = {r.id: r for r in reports}
        self.keys: dict[tuple[str, str], str] = {}
        self.receipts = 0

    def beside(self, obligations: InMemoryObligations) -> InMemoryReports:
        """Lets ``obligations`` read versions and keys from these reports, as the database
        reads them in one query."""
        obligations.reports = self
        self.obligations = obligations
        return self

    obligations: InMemoryObligations

    async def add_submitted(
        self, report: Report, obligation: Obligation, key: str | None, at: datetime
    ) -> None:
        await self.add(report)
        if key:
            await self.remember_key(obligation.unit_code, key, report.id, at)
        await self.obligations.save(obligation)

    async def add(self, report: Report) -> None:
        self.reports[report.id] = report

    async def remember_key(self, unit_code: str, key: str, report_id: str, at: datetime) -> None:
        if (unit_code, key) in self.keys:
            raise AssertionError(f"key {key} of {unit_code} remembered twice")
        self.keys[unit_code, key] = report_id

    async def next_receipt_number(self, year: int, prefix: str = "BC") -> str:
        self.receipts += 1
        return f"{prefix}-{year}-{self.receipts:06d}"

    async def get(self, report_id: str) -> Report | None:
        return self.reports.get(report_id)

    async def versions(self, obligation_id: str) -> list[Report]:
        found = [r for r in self.reports.values() if r.obligation_id == obligation_id]
        return sorted(found, key=lambda r: r.version)

    async def save_review(
        self, report: Report, *, reviewer: str, at: datetime, reason: str | None
    ) -> None:
        self.reports[report.id] = replace(
            report, reviewed_by_unit=reviewer, reviewed_at=at, review_reason=reason
        )


class InMemoryDirectory:
    """:class:`UnitDirectory` (the reports service's copy of the units), in memory."""

    KIND = UnitDirectory

    def __init__(self, *units: tuple[str, list[str], str | None]) -> None:
        """Each unit as (code, path, the unit it reports to)."""
        self.units = {
            code: {"code": code, "path": path, "reports_to_code": reports_to, "active": True}
            for code, path, reports_to in units
        }

    async def get(self, code: str) -> dict[str, Any] | None:
        return self.units.get(code)


class Identified(Protocol):
    id: str


K = TypeVar("K", bound=Identified)


class Added(Tracking, Generic[K]):
    """A repository that only needs to keep what is added, by id."""

    def __init__(self) -> None:
        self.added: dict[str, K] = {}

    async def add(self, aggregate: K) -> None:
        self.added[aggregate.id] = self.seen(aggregate)


class InMemoryInspections(Added[Inspection]):
    """:class:`InspectionRepository`, as far as scheduling needs it."""

    KIND = InspectionRepository


class InMemoryRecommendations(Added[Recommendation]):
    """:class:`RecommendationRepository`, as far as registering needs it."""

    KIND = RecommendationRepository
