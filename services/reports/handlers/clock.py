"""The deadline clock's handler: fire the deadline steps that are due, each exactly once.

Incremental. Every obligation this instance owns that awaits a report carries the instant
the clock next has something to decide for it (``next_step_at``; the rule is in
:mod:`services.reports.domain.deadlines`); submitted, accepted and waived ones carry none
and are off the scan. A pass takes the obligations whose instant has come, a batch at a
time, the earliest first, with a few workers at once. In one transaction per batch it
decides for each obligation, records the steps taken (fired or skipped) in
``deadline_steps``, writes the fired steps' events to the outbox and moves each
obligation's instant on to its next step. The steps already recorded follow from
``next_step_at`` where the clock set it (every step planned before it); they are read, for
those obligations only, where it is an early value: a returned report, a changed schedule.

Exactly once, with any number of replicas: the batch's rows are locked (on PostgreSQL
``FOR NO KEY UPDATE SKIP LOCKED``: workers and replicas take disjoint batches, and a row
another transaction holds, a submission being taken, is left for the next pass, so a
report submitted a moment ago wins over its reminder; SQLite's ``BEGIN IMMEDIATE``
serialises writers). Step rows have the primary key obligation × step: should one be
recorded already (a writer that did not move ``next_step_at``), the insert fails, the
batch is rolled back with its events, and its obligations are decided again one at a
time, on the steps recorded as read under the lock. So is a batch that fails otherwise:
one obligation's trouble holds up neither its batch nor the pass.

Each pass first checks that the stored instants follow the current schedule (settings and
calendar, :func:`~services.reports.domain.deadlines.schedule_fingerprint`); when it changed,
or was never recorded (a database from before the incremental clock), every awaiting
obligation is reconsidered at this pass.

What fires when several steps are due at once (after downtime) is the domain's rule, in
:mod:`services.reports.domain.deadlines`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from services.reports.adapters.repositories import (
    DeadlineStepRepository,
    ObligationRepository,
    StepRow,
)
from services.reports.domain.deadlines import (
    SKIPPED,
    VIETNAM,
    ClockPass,
    ClockRules,
    Step,
    WorkingCalendar,
    messages,
    schedule_fingerprint,
)
from services.reports.domain.model import Obligation
from services.reports.handlers.clock_events import ClockEvents
from services.reports.settings import ReportsSettings
from shared.uow import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)


def rules_from(settings: ReportsSettings) -> ClockRules:
    return ClockRules(
        reminder_offsets_days=tuple(settings.reminder_offsets_days),
        urge_every_working_days=settings.urge_every_working_days,
        escalate_after_steps=settings.escalate_after_steps,
        escalate_to_receiving_after_steps=settings.escalate_to_receiving_after_steps,
        urge_max_steps=settings.urge_max_steps,
    )


@dataclass(frozen=True, slots=True)
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
    retried_batches: int = 0
    """Batches that failed (a step already recorded by another writer, say) and were
    retried one obligation at a time, on the steps recorded as read."""
    failed: list[str] = field(default_factory=list)
    """Obligations whose transaction failed (logged); the next run tries them again."""
    reconsidered: int = 0
    """Obligations whose next step was reconsidered because the schedule changed."""


class _BatchFailed(Exception):
    def __init__(self, obligation_ids: list[str]) -> None:
        super().__init__(f"{len(obligation_ids)} obligations")
        self.obligation_ids = obligation_ids


@dataclass
class _Pass:
    """One pass in progress: its decisions, its settings, what it did so far."""

    decisions: ClockPass
    uow_factory: UnitOfWorkFactory
    batch_size: int
    run: ClockRun
    events: ClockEvents
    passed_over: set[str] = field(default_factory=set)
    """Obligations of failed batches: retried one by one by the worker whose batch failed,
    and left alone by the others; those that fail again wait for the next pass."""


async def run_clock(
    now: datetime,
    uow_factory: UnitOfWorkFactory,
    settings: ReportsSettings,
    calendar: WorkingCalendar = VIETNAM,
) -> ClockRun:
    """Fire every deadline step due at ``now``; safe to run on several replicas at once."""
    rules = rules_from(settings)
    run = ClockRun(now)
    run.reconsidered = await follow_schedule(uow_factory, schedule_fingerprint(rules, calendar))
    this = _Pass(
        ClockPass(now, rules, calendar),
        uow_factory,
        settings.clock_batch_size,
        run,
        ClockEvents(rules, calendar),
    )
    # Workers take disjoint batches as replicas do; while one waits on the database,
    # another decides. A failure of one (the database's trouble) cancels the others, and
    # the run raises it (in an ExceptionGroup).
    async with asyncio.TaskGroup() as workers:
        for _ in range(settings.clock_workers):
            workers.create_task(_work(this))
    return run


async def _work(this: _Pass) -> None:
    while await _next_batch(this):
        pass


async def follow_schedule(uow_factory: UnitOfWorkFactory, fingerprint: str) -> int:
    """Make the stored next steps follow the schedule ``fingerprint`` names: when another
    one (or none) is recorded, every awaiting obligation is reconsidered. Returns how many."""
    async with uow_factory() as uow:
        steps = uow.repository(DeadlineStepRepository)
        if await steps.schedule() == fingerprint:
            return 0
        reconsidered = await uow.repository(ObligationRepository).reconsider_awaiting()
        await steps.adopt_schedule(fingerprint, uow.clock.now())
        await uow.commit()
    log.info(
        "deadline schedule adopted; awaiting obligations reconsidered",
        schedule=fingerprint,
        obligations=reconsidered,
    )
    return reconsidered


async def _next_batch(this: _Pass) -> bool:
    """Fire one batch; False when nothing more is due."""
    try:
        return await _fire_batch(this, this.batch_size)
    except _BatchFailed as failure:
        # A step already recorded (another writer came first) or any other failure: decide
        # again one obligation at a time, on the steps recorded as read under the lock.
        log.warning("a batch of deadline steps failed; retrying one by one", exc_info=True)
        this.run.retried_batches += 1
        failed = [oid for oid in failure.obligation_ids if not await _fire_one(this, oid)]
        if len(failed) == len(failure.obligation_ids) > 1:
            # Not one obligation's trouble but the database's: stop, the next tick retries.
            raise RuntimeError(f"every obligation of a batch failed ({len(failed)})") from None
        return True


async def _fire_one(this: _Pass, obligation_id: str) -> bool:
    try:
        await _fire_batch(this, 1, only=obligation_id)
    except _BatchFailed:
        # One obligation's trouble (a deadlock, a bad row) must not stop the rest.
        log.exception("deadline steps not fired", obligation_id=obligation_id)
        this.run.failed.append(obligation_id)
        return False
    return True


async def _fire_batch(this: _Pass, limit: int, only: str | None = None) -> bool:
    """Lock up to ``limit`` due obligations and fire their steps in one transaction.
    Raises _BatchFailed (with the batch's ids) when anything after the lock fails: the
    transaction is rolled back, and with it the batch's events."""
    async with this.uow_factory() as uow:
        due = await uow.repository(ObligationRepository).lock_due(
            this.decisions.now, limit, passed_over=this.passed_over, only=only
        )
        if not due:
            return False
        ids = [o.id for o in due]
        try:
            batch = await _fire(uow, this, due, read_recorded=only is not None)
        except Exception as exc:
            # Before the rollback frees them: the other workers leave them to this one.
            this.passed_over.update(ids)
            raise _BatchFailed(ids) from exc
    this.run.fired += batch.fired
    this.run.skipped += batch.skipped
    return True


@dataclass
class _Batch:
    """What a batch does, in compact rows until it commits. (Each obligation, its decision
    and its event objects are dropped as soon as it is decided: kept for the whole batch,
    they outlive the garbage collector's young generations and make it sweep the whole
    heap over and over.)"""

    steps: list[StepRow] = field(default_factory=list)
    next_steps: dict[str, datetime | None] = field(default_factory=dict)
    fired: list[Fired] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


async def _fire(
    uow: UnitOfWork, this: _Pass, due: list[Obligation], *, read_recorded: bool
) -> _Batch:
    """Decide for each locked obligation (taking them out of ``due``), record, publish,
    move each one's next step on, commit."""
    decisions = this.decisions
    on_the_clock = [o for o in due if o.on_the_clock_at is not None]
    recorded = await _recorded(uow, decisions, on_the_clock, read_all=read_recorded)
    del on_the_clock
    batch = _Batch()
    while due:
        obligation = due.pop()
        recorded_steps = recorded.get(obligation.id, frozenset())
        _decide(uow, decisions, this.events, obligation, recorded_steps, batch)
    # A step already recorded raises here (primary key obligation × step): see _next_batch.
    await uow.repository(DeadlineStepRepository).record(batch.steps)
    await uow.repository(ObligationRepository).move_next_steps(batch.next_steps)
    await uow.commit()
    return batch


async def _recorded(
    uow: UnitOfWork, decisions: ClockPass, obligations: list[Obligation], *, read_all: bool
) -> dict[str, frozenset[str]]:
    """The steps recorded for each obligation. Where the clock set ``next_step_at`` itself,
    they are every step planned before it (see the domain's ``recorded_before``) and
    nothing is read; where it is an early value (a returned report, a changed schedule),
    or when retrying a batch that found otherwise, they are read, for those only."""
    known: dict[str, frozenset[str]] = {}
    to_read: list[str] = []
    for obligation in obligations:
        assert obligation.next_step_at is not None  # lock_due takes only scheduled ones
        derived = decisions.recorded_before(obligation.due_at, obligation.next_step_at)
        if derived is None or read_all:
            to_read.append(obligation.id)
        else:
            known[obligation.id] = derived
    if to_read:
        read = await uow.repository(DeadlineStepRepository).recorded(to_read)
        known.update((oid, frozenset(read.get(oid, ()))) for oid in to_read)
    return known


def _decide(
    uow: UnitOfWork,
    decisions: ClockPass,
    events: ClockEvents,
    obligation: Obligation,
    recorded: frozenset[str],
    batch: _Batch,
) -> None:
    if obligation.on_the_clock_at is None:
        # Off the clock (submitted, waived, not ours) yet still scheduled: a writer did not
        # go through ObligationRepository.save. Nothing fires; it leaves the scan.
        batch.next_steps[obligation.id] = None
        return
    decision = decisions.decide(obligation.due_at, recorded)
    # Every step planned up to now is recorded after this: the next one is all that counts.
    obligation.next_step_at = decisions.next_step_at(obligation.due_at)
    batch.next_steps[obligation.id] = obligation.on_the_clock_at
    # Steps the calendar put on one day make one message; each is recorded with its id.
    covered, event_ids = _publish(uow, decisions, events, obligation, decision.fire)
    now = decisions.now
    for steps, event_id in zip(covered, event_ids, strict=True):
        for step in steps:
            batch.steps.append(StepRow(obligation.id, step.name, step.planned_for, now, event_id))
            batch.fired.append(
                Fired(obligation.id, obligation.unit_code, step.name, event_id, step.planned_for)
            )
    for step in decision.skip:
        batch.steps.append(StepRow(obligation.id, step.name, step.planned_for, now, SKIPPED))
        batch.skipped.append((obligation.id, step.name))


def _publish(
    uow: UnitOfWork,
    decisions: ClockPass,
    events: ClockEvents,
    obligation: Obligation,
    fire: tuple[Step, ...],
) -> tuple[list[tuple[Step, ...]], list[str]]:
    """Queue the events of the steps that fire; returns the steps each covers, and its id."""
    if not fire:
        return [], []
    encoded = events.encode(uow, obligation, fire)
    if encoded is not None:
        return [steps for _, steps in encoded], uow.publish_encoded([e for e, _ in encoded])
    found = messages(fire, obligation, decisions.rules, decisions.calendar)
    return [steps for _, steps in found], uow.publish(*(event for event, _ in found))
