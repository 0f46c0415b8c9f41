"""What notify keeps about obligations that await a report, and drops at once when they stop
awaiting one.

- ``overdue_reports``: reports still missing after their last urging, what the receiving
  unit's daily digest lists once the urging has ended. An entry is made by the final
  ``DeadlineMissed``.
- ``deadline_mail``: the obligation of each reminder or urging e-mail. One still pending
  (or held for a digest) is ``withdrawn``, never sent, when its obligation stops awaiting a
  report (a backlog behind a failing mail server must not urge a unit that has reported).

Both end with whatever ends the obligation's lateness: the report submitted (for a
recommendation's answer: the answer; for an inspection's follow-up: a report that the action
is done; for a staff conference: its record), the unit removed from the plan (waived) or
dissolved, the plan closed, or the deadline moved.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from services.notify.adapters.db import deadline_mail, deliveries, overdue_reports
from services.notify.domain.model import DeliveryStatus, Message
from shared.direct import execute_one
from shared.events import (
    Channel,
    ConferenceRecorded,
    DeadlineApproaching,
    DeadlineMissed,
    Event,
    InspectionActionReported,
    PlanAmended,
    PlanClosed,
    RecommendationAnswered,
    ReportKind,
    ReportSubmitted,
    UnitUpdated,
)
from shared.mapping import RowMapping
from shared.uow import Repository


@dataclass(frozen=True)
class Overdue:
    obligation_id: str
    unit_code: str
    receiving_unit: str
    report_kind: ReportKind
    due_at: datetime
    plan_doc_number: str
    urgings: int
    since: datetime
    schedule_key: str = ""


def ended_by(event: Event) -> list[dict[str, Any]]:
    """The obligations an event stops awaiting a report, as column filters (a list value:
    any of them)."""
    if isinstance(event, ReportSubmitted):
        return [{"obligation_id": event.obligation.obligation_id}]
    if isinstance(event, PlanClosed):
        return [{"plan_id": event.plan_id}]
    if isinstance(event, UnitUpdated) and not event.active:
        return [{"unit_code": event.code}]
    if isinstance(event, ConferenceRecorded):
        return [{"obligation_id": event.obligation_id}]
    if isinstance(event, RecommendationAnswered):
        return [{"schedule_key": f"recommendation-{event.recommendation_id}"}]
    if isinstance(event, InspectionActionReported) and event.done:
        return [{"schedule_key": f"inspection-{event.action_id}"}]
    found: list[dict[str, Any]] = []
    if isinstance(event, PlanAmended):
        keys = [change.key for change in event.schedule_changes]
        if keys:
            found.append({"plan_id": event.plan_id, "schedule_key": keys})
        if event.removed_assignees:
            found.append({"plan_id": event.plan_id, "unit_code": list(event.removed_assignees)})
    return found


OVERDUE = RowMapping(Overdue, overdue_reports)
WAITING = (DeliveryStatus.PENDING.value, DeliveryStatus.HELD.value)


def _on(table: sa.Table, shape: tuple[tuple[str, bool], ...]) -> list[sa.ColumnElement[bool]]:
    """The filter of :func:`ended_by`'s shape, its values bound as ``w_<column>``."""
    return [
        table.c[name].in_(sa.bindparam(f"w_{name}", expanding=True))
        if many
        else table.c[name] == sa.bindparam(f"w_{name}")
        for name, many in shape
    ]


@functools.lru_cache(maxsize=64)
def _ending_statement(shape: tuple[tuple[str, bool], ...]) -> sa.Update:
    """PostgreSQL: one round trip for both, on every report submitted: the DELETE as a
    data-modifying CTE of the UPDATE (the tables differ, so neither sees the other). Built
    once per shape of filter, not per event: building it was a tenth of the event's CPU."""
    dropped = overdue_reports.delete().where(*_on(overdue_reports, shape))
    mail = sa.select(deadline_mail.c.delivery_key).where(*_on(deadline_mail, shape))
    withdrawn = (
        deliveries.update()
        .where(
            deliveries.c.key.in_(mail),
            # An array, not IN (a list): SQLAlchemy would write the list's SQL at each call,
            # where a statement of fixed SQL goes to asyncpg directly (shared.direct).
            deliveries.c.status == sa.any_(sa.literal(list(WAITING), postgresql.ARRAY(sa.String))),
        )
        .values(status=DeliveryStatus.WITHDRAWN.value)
    )
    return withdrawn.add_cte(dropped.cte("dropped"))


class OverdueRepository(Repository):
    async def track(self, event: Event, now: datetime) -> None:
        """Keep both in step with one event: what it ends goes first."""
        for where in ended_by(event):
            await self._end(where)
        if isinstance(event, DeadlineMissed) and event.final:
            await self._add(event, now)

    async def _end(self, where: dict[str, Any]) -> None:
        shape = tuple((name, isinstance(value, list)) for name, value in where.items())
        values = {f"w_{name}": value for name, value in where.items()}
        if self.session.get_bind().dialect.name == "postgresql":
            await execute_one(self.session, _ending_statement(shape), values)
            return
        await self.session.execute(
            overdue_reports.delete().where(*_on(overdue_reports, shape)), values
        )
        mail = sa.select(deadline_mail.c.delivery_key).where(*_on(deadline_mail, shape))
        # SQLite: the keys first, then the deliveries by key. Given the keys as a subquery,
        # SQLite walked the status index over every waiting delivery for each event (every
        # report submitted ends one): 39 ms an event with 14,000 receipts waiting, so a
        # backlog slowed its own draining. Most events end no deadline mail at all.
        keys = list((await self.session.scalars(mail, values)).all())
        if keys:
            await self.session.execute(
                deliveries.update()
                .where(deliveries.c.key.in_(keys), deliveries.c.status.in_(WAITING))
                .values(status=DeliveryStatus.WITHDRAWN.value)
            )

    async def remember_mail(self, event: Event, messages: Sequence[Message]) -> None:
        """Which obligation the e-mails of a deadline event are about."""
        if not isinstance(event, DeadlineApproaching | DeadlineMissed):
            return
        ref = event.obligation
        rows = [
            {
                "delivery_key": m.key,
                "obligation_id": ref.obligation_id,
                "plan_id": ref.plan_id,
                "schedule_key": ref.schedule_key,
                "unit_code": ref.unit_code,
            }
            for m in messages
            if m.channel is Channel.EMAIL
        ]
        if rows:
            await self.session.execute(
                self._dialect()
                .insert(deadline_mail)
                .on_conflict_do_nothing(index_elements=["delivery_key"]),
                rows,
            )

    def _dialect(self) -> Any:
        return postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite

    async def _add(self, event: DeadlineMissed, now: datetime) -> None:
        ref = event.obligation
        await self.session.execute(
            self._dialect()
            .insert(overdue_reports)
            .values(
                obligation_id=ref.obligation_id,
                plan_id=ref.plan_id,
                schedule_key=ref.schedule_key,
                unit_code=ref.unit_code,
                receiving_unit=ref.receiving_unit,
                report_kind=ref.report_kind.value,
                due_at=ref.due_at,
                plan_doc_number=ref.plan_doc_number,
                urgings=event.step,
                since=now,
            )
            .on_conflict_do_nothing(index_elements=["obligation_id"])
        )

    async def receiving_units(self) -> list[str]:
        query = sa.select(overdue_reports.c.receiving_unit).distinct()
        return sorted((await self.session.scalars(query)).all())

    async def received_by(self, receiving_units: Iterable[str]) -> list[Overdue]:
        table = overdue_reports.c
        query = (
            sa.select(overdue_reports)
            .where(table.receiving_unit.in_(list(receiving_units)))
            .order_by(table.due_at, table.unit_code)
        )
        return [OVERDUE.from_mapping(row) for row in await self.session.execute(query)]
