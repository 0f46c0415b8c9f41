"""An in-memory unit of work and repositories, for testing handlers without a database.

A handler reaches its repositories only through ``uow.repository(Kind)``; the fake hands it
in-memory ones, records what it publishes and audits, and counts commits. The integration
tests keep running the same handlers on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar, cast

from services.plans.adapters.repositories import UnitRepository
from services.plans.domain.units import Unit
from services.reports.adapters.repositories import ObligationRepository, ReportRepository
from services.reports.domain.model import Obligation, Report
from shared.auth import Principal
from shared.clock import ManualClock
from shared.events import Event
from shared.uow import UnitOfWork

R = TypeVar("R")


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

    async def commit(self) -> None:
        self.commits += 1
        for callback in self._after_commit:
            callback()
        self._after_commit.clear()

    def as_uow(self) -> UnitOfWork:
        """For a handler's ``uow: UnitOfWork`` argument (the fake is duck-typed)."""
        return cast(UnitOfWork, self)


class InMemoryUnits:
    """:class:`UnitRepository`, in memory."""

    KIND = UnitRepository

    def __init__(self, *units: Unit) -> None:
        self.units = {u.code: u for u in units}

    async def get(self, code: str) -> Unit | None:
        return self.units.get(code)

    async def all(self) -> dict[str, Unit]:
        return dict(self.units)

    async def add(self, unit: Unit, registered_at: datetime) -> None:
        self.units[unit.code] = unit

    async def save(self, unit: Unit, updated_at: datetime) -> None:
        self.units[unit.code] = unit


class InMemoryObligations:
    """:class:`ObligationRepository`, as far as review needs it."""

    KIND = ObligationRepository

    def __init__(self, *obligations: Obligation) -> None:
        self.obligations = {o.id: o for o in obligations}
        self.saved: list[Obligation] = []

    async def get(self, obligation_id: str) -> Obligation | None:
        return self.obligations.get(obligation_id)

    async def save(self, obligation: Obligation) -> None:
        self.saved.append(obligation)


class InMemoryReports:
    """:class:`ReportRepository`, as far as review needs it."""

    KIND = ReportRepository

    def __init__(self, *reports: Report) -> None:
        self.reports = {r.id: r for r in reports}

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
