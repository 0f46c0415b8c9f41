"""The deadline clock's handler: fire the deadline steps that are due, each exactly once.

Exactly once, with any number of replicas: a step fires in the transaction that records it
in ``deadline_steps`` (primary key obligation × step) and writes its event to the outbox.
The obligation's row is locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers) and re-read inside that transaction, so a
replica that comes second sees the steps the first one recorded, and a report submitted a
moment ago wins over its reminder. Should two inserts still collide, ``ON CONFLICT DO
NOTHING`` keeps the transaction alive and the loser rolls back without publishing.

What fires when several steps are due at once (after downtime) is the domain's rule, in
:mod:`services.reports.domain.deadlines`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.reports.adapters.db import deadline_steps, obligations
from services.reports.adapters.repositories import ObligationRepository
from services.reports.domain.deadlines import (
    SKIPPED,
    VIETNAM,
    ClockRules,
    Decision,
    Step,
    WorkingCalendar,
    decide,
    event_for,
    horizon,
)
from services.reports.domain.model import Obligation, ObligationStatus
from services.reports.settings import ReportsSettings
from shared.uow import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)

AWAITING = (ObligationStatus.OPEN.value, ObligationStatus.RETURNED.value)


def rules_from(settings: ReportsSettings) -> ClockRules:
    return ClockRules(
        reminder_offsets_days=tuple(settings.reminder_offsets_days),
        urge_every_working_days=settings.urge_every_working_days,
        escalate_after_steps=settings.escalate_after_steps,
    )


@dataclass(frozen=True)
class Fired:
    obligation_id: str
    unit_code: str
    step: str
    event_id: str
    planned_for: datetime


@dataclass
class ClockRun:
    """What one run of the clock did."""

    now: datetime
    fired: list[Fired] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(obligation id, step) recorded without firing."""
    lost_races: int = 0
    """Obligations another replica handled first."""
    failed: list[str] = field(default_factory=list)
    """Obligations whose transaction failed (logged); the next run tries them again."""


@dataclass(frozen=True)
class Candidate:
    obligation_id: str
    due_at: datetime
    recorded: frozenset[str]


async def candidates(session: AsyncSession, now: datetime, rules: ClockRules) -> list[Candidate]:
    """Obligations this instance owns (it does not remind the units of a subtree delegated to
    another instance) that await a report and whose deadline is near or past, with the steps
    already recorded for them: one query, joined."""
    query = (
        sa.select(
            obligations.c.id,
            obligations.c.due_at,
            deadline_steps.c.step,
        )
        .select_from(
            obligations.outerjoin(
                deadline_steps, deadline_steps.c.obligation_id == obligations.c.id
            )
        )
        .where(
            obligations.c.owned.is_(sa.true()),
            obligations.c.status.in_(AWAITING),
            obligations.c.due_at <= horizon(now, rules),
        )
        .order_by(obligations.c.due_at, obligations.c.id)
    )
    found: dict[str, tuple[datetime, set[str]]] = {}
    for row in (await session.execute(query)).all():
        _, recorded = found.setdefault(row.id, (row.due_at, set()))
        if row.step is not None:
            recorded.add(row.step)
    return [Candidate(oid, due_at, frozenset(steps)) for oid, (due_at, steps) in found.items()]


async def _recorded_steps(session: AsyncSession, obligation_id: str) -> set[str]:
    rows = await session.execute(
        sa.select(deadline_steps.c.step).where(deadline_steps.c.obligation_id == obligation_id)
    )
    return set(rows.scalars())


async def _lock_obligation(session: AsyncSession, obligation_id: str) -> Obligation | None:
    # FOR UPDATE makes a concurrent submission (which updates this row) wait for us, or us
    # for it; SQLAlchemy renders nothing on SQLite, where the transaction holds the lock.
    await session.execute(
        sa.select(obligations.c.id).where(obligations.c.id == obligation_id).with_for_update()
    )
    return await ObligationRepository(session).get(obligation_id)


def _insert_ignoring_conflicts(session: AsyncSession, rows: list[dict[str, Any]]) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return (
        dialect.insert(deadline_steps)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(deadline_steps.c.step)
    )


async def _record(
    session: AsyncSession, obligation_id: str, now: datetime, steps: Sequence[tuple[Step, str]]
) -> bool:
    """Insert the steps' rows; False when another replica recorded any of them first."""
    rows = [
        {
            "obligation_id": obligation_id,
            "step": step.name,
            "planned_for": step.planned_for,
            "fired_at": now,
            "event_id": event_id,
        }
        for step, event_id in steps
    ]
    inserted = (await session.execute(_insert_ignoring_conflicts(session, rows))).scalars()
    return len(list(inserted)) == len(rows)


@dataclass(frozen=True)
class Outcome:
    """What the clock did for one obligation."""

    obligation: Obligation | None
    fired: tuple[tuple[Step, str], ...] = ()
    """Steps fired, with the ids of their events."""
    skipped: tuple[Step, ...] = ()
    lost_race: bool = False


async def fire_due_steps(
    uow: UnitOfWork,
    obligation_id: str,
    now: datetime,
    rules: ClockRules,
    calendar: WorkingCalendar = VIETNAM,
) -> Outcome:
    """One obligation, one transaction: decide on fresh data, record, publish, commit."""
    async with uow:
        obligation = await _lock_obligation(uow.session, obligation_id)
        if obligation is None or not obligation.owned or not obligation.awaits_report:
            return Outcome(obligation)
        recorded = await _recorded_steps(uow.session, obligation_id)
        decision = decide(obligation.due_at, now, recorded, rules, calendar)
        if not decision:
            return Outcome(obligation)
        event_ids = [uow.publish(event_for(s, obligation, rules))[0] for s in decision.fire]
        fired = tuple(zip(decision.fire, event_ids, strict=True))
        if not await _record(uow.session, obligation_id, now, [*fired, *_skips(decision)]):
            return Outcome(obligation, lost_race=True)  # leaving uncommitted drops the events
        await uow.commit()
        return Outcome(obligation, fired, decision.skip)


def _skips(decision: Decision) -> list[tuple[Step, str]]:
    return [(step, SKIPPED) for step in decision.skip]


async def run_clock(
    now: datetime,
    uow_factory: UnitOfWorkFactory,
    settings: ReportsSettings,
    calendar: WorkingCalendar = VIETNAM,
) -> ClockRun:
    """Fire every deadline step due at ``now``; safe to run on several replicas at once."""
    rules = rules_from(settings)
    async with uow_factory() as uow:
        found = await candidates(uow.session, now, rules)
    run = ClockRun(now)
    for candidate in found:
        # Decide on the snapshot first, to open a write transaction only where needed.
        if decide(candidate.due_at, now, candidate.recorded, rules, calendar):
            await _fire_guarded(run, uow_factory(), candidate.obligation_id, rules, calendar)
    return run


async def _fire_guarded(
    run: ClockRun,
    uow: UnitOfWork,
    obligation_id: str,
    rules: ClockRules,
    calendar: WorkingCalendar,
) -> None:
    try:
        outcome = await fire_due_steps(uow, obligation_id, run.now, rules, calendar)
    except Exception:  # one obligation's trouble (a deadlock, say) must not stop the rest
        log.exception("deadline steps not fired", obligation_id=obligation_id)
        run.failed.append(obligation_id)
    else:
        _tally(run, outcome)


def _tally(run: ClockRun, outcome: Outcome) -> None:
    if outcome.lost_race:
        run.lost_races += 1
    if outcome.obligation is None:
        return
    obligation = outcome.obligation
    for step, event_id in outcome.fired:
        run.fired.append(
            Fired(obligation.id, obligation.unit_code, step.name, event_id, step.planned_for)
        )
    run.skipped += [(obligation.id, step.name) for step in outcome.skipped]
