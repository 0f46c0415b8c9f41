"""The deadline clock's schedule: which reminders and urgings an obligation gets, and when.
Pure, no I/O.

Steps of an obligation that awaits a report (open, or returned for revision), named as they
are recorded in ``deadline_steps``:

- ``approaching-<N>`` for each configured offset N (default 7, 3, 1): 08:00 ICT on the
  calendar day N days before the last on-time day (a deadline "before 10/6/2023" ends on
  09/06/2023, so ``approaching-7`` is 02/06/2023 08:00 ICT). A day that is not a working day
  (Saturday, Sunday, a Vietnamese public holiday, Tết and the observed days included) moves
  to the previous working day. Vietnam makes some Saturdays working days to bridge a holiday
  (04/05/2024); the ``holidays`` package knows them and so do we.
- ``missed-0`` the instant after the deadline (``due_at`` + 1 µs).
- ``urge-<k>`` for k = 1 … K: 08:00 ICT on the (k × M)-th working day after the last
  on-time day (M = ``urge_every_working_days``, default 3; K = ``urge_max_steps``, default
  5), for as long as nothing is submitted. ``escalated`` (the unit's head is told too) from
  step ``escalate_after_steps`` on (default 2: ``urge-2``); ``escalated_to_receiving_unit``
  (the receiving unit's leadership is told too) from step
  ``escalate_to_receiving_after_steps`` on (default 4). ``urge-K`` is ``final``: after it the
  clock has nothing more to do for the obligation (only the daily digest lists it).

One message per day. Reminders go out at 08:00 ICT on their day, so offsets that the
working-day shift puts on the same day (a long holiday, Tết) are planned at the same instant:
they fire as one ``DeadlineApproaching`` whose ``steps`` lists them all, each still
recorded. Every reminder states the working days left (:meth:`WorkingCalendar.between`), not
calendar days across a holiday.

Catch-up. The clock runs every few seconds, so normally one step at a time becomes due. After
downtime (or for an obligation opened late) several may be due at once; only the ones that
still make sense fire, and the others are recorded as skipped so that they never fire later:

- approaching steps: only those planned at the latest moment that has passed, and only while
  the deadline is still ahead. A 7-day reminder sent 2 days before the deadline would
  mislead; after the deadline a reminder is pointless (``missed-0`` says it). Offsets that the
  working-day shift put on the same moment all fire, as one message.
- ``missed-0`` fires once the deadline has passed, however late the clock noticed.
- urge steps: only the latest one that has passed (it carries the right step number and
  escalation).

Incremental. Once the clock has decided for an obligation at instant T, every step planned
at or before T is recorded, so the clock has nothing to do for it until its next step,
:func:`next_step_after` T. The reports service stores that instant on the obligation
(``next_step_at``) and each pass reads only the obligations whose instant has come. A
stored instant may be early, never late: an early one only costs a decision that fires
nothing. :class:`ClockPass` works each deadline's schedule out once per pass, since many
obligations share one deadline.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from importlib.metadata import version
from itertools import takewhile
from typing import TYPE_CHECKING

from services.reports.domain.model import Obligation
from shared.events import DeadlineApproaching, DeadlineMissed, Event
from shared.vntime import ICT, ict_date

if TYPE_CHECKING:
    import holidays

REMINDER_TIME = time(8, 0)
"""Reminders and urgings go out at the start of the office day, Vietnam time."""

HOLIDAYS_VERSION = version("holidays")
"""A release may add or move a holiday, and with it the days steps fall on."""

SKIPPED = "skipped"
"""``event_id`` of a step recorded without firing (stale when the clock caught up)."""


class WorkingCalendar:
    """Working days of a country: not a weekend, not a public holiday, or a weekend made a
    working day by substitution."""

    def __init__(self, country: str = "VN") -> None:
        self.country = country
        self._working: dict[date, bool] = {}
        """Each day asked, answered once: the clock asks about the same few hundred days
        for every obligation of a pass (the holidays package answers slowly)."""

    @functools.cached_property
    def _holidays(self) -> holidays.HolidayBase:
        # Built on first use, not at import: the lunar calendar's year costs every start of
        # the service a third of a second otherwise. No years given: the package adds each
        # year the first time a date in it is asked.
        import holidays

        return holidays.country_holidays(self.country)

    def is_working_day(self, day: date) -> bool:
        working = self._working.get(day)
        if working is None:
            working = self._working[day] = bool(self._holidays.is_working_day(day))
        return working

    def on_or_before(self, day: date) -> date:
        """``day`` if it is a working day, else the working day before it."""
        while not self.is_working_day(day):
            day -= timedelta(days=1)
        return day

    def after(self, day: date, count: int) -> date:
        """The ``count``-th working day after ``day`` (``day`` itself not counted)."""
        for _ in range(count):
            day = self.on_or_after(day + timedelta(days=1))
        return day

    def on_or_after(self, day: date) -> date:
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when ``end`` is not
        after ``start``): what is left on ``start`` for a deadline whose last day is
        ``end``, today not counted."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count


VIETNAM = WorkingCalendar("VN")


@dataclass(frozen=True)
class ClockRules:
    """The configurable part of the schedule (``ReportsSettings``)."""

    reminder_offsets_days: tuple[int, ...] = (7, 3, 1)
    urge_every_working_days: int = 3
    escalate_after_steps: int = 2
    """From this urging step on, the unit's head is told too."""
    escalate_to_receiving_after_steps: int = 4
    """From this urging step on, the receiving unit's leadership is told too."""
    urge_max_steps: int = 5
    """Urgings after the miss; 0: none. After the last only the daily digest lists it."""

    def __post_init__(self) -> None:
        if any(offset < 1 for offset in self.reminder_offsets_days):
            raise ValueError("reminder offsets are whole days before the deadline, at least 1")
        if self.urge_every_working_days < 1:
            raise ValueError("urge_every_working_days must be at least 1")
        if self.urge_max_steps < 0:
            raise ValueError("urge_max_steps must be 0 or more")
        if min(self.escalate_after_steps, self.escalate_to_receiving_after_steps) < 1:
            raise ValueError("escalation steps are urging step numbers, at least 1")


class StepKind(StrEnum):
    APPROACHING = "approaching"
    MISSED = "missed"
    URGE = "urge"


@dataclass(frozen=True)
class Step:
    kind: StepKind
    number: int
    """Days before the deadline for approaching steps; 0 for missed; k for ``urge-k``."""
    planned_for: datetime

    @property
    def name(self) -> str:
        return f"{self.kind.value}-{self.number}"

    @property
    def fire_on(self) -> date:
        return ict_date(self.planned_for)


def at_reminder_time(day: date) -> datetime:
    return datetime.combine(day, REMINDER_TIME, tzinfo=ICT).astimezone(UTC)


def approaching_steps(
    due_at: datetime, rules: ClockRules, calendar: WorkingCalendar = VIETNAM
) -> list[Step]:
    last_day = ict_date(due_at)
    steps = []
    for offset in sorted(set(rules.reminder_offsets_days), reverse=True):
        day = calendar.on_or_before(last_day - timedelta(days=offset))
        steps.append(Step(StepKind.APPROACHING, offset, at_reminder_time(day)))
    return steps


def missed_step(due_at: datetime) -> Step:
    return Step(StepKind.MISSED, 0, due_at + timedelta(microseconds=1))


def urge_steps(
    due_at: datetime, rules: ClockRules, calendar: WorkingCalendar = VIETNAM
) -> Iterator[Step]:
    """The ``urge_max_steps`` urge steps, in order."""
    day = ict_date(due_at)
    for number in range(1, rules.urge_max_steps + 1):
        day = calendar.after(day, rules.urge_every_working_days)
        yield Step(StepKind.URGE, number, at_reminder_time(day))


def schedule(
    due_at: datetime, rules: ClockRules, calendar: WorkingCalendar = VIETNAM
) -> Iterator[Step]:
    """Every step of an obligation, in the order they are planned: the reminders (all
    before the deadline), the miss, then the urgings (``urge_max_steps`` of them)."""
    yield from approaching_steps(due_at, rules, calendar)
    yield missed_step(due_at)
    yield from urge_steps(due_at, rules, calendar)


def steps_until(
    due_at: datetime, now: datetime, rules: ClockRules, calendar: WorkingCalendar = VIETNAM
) -> list[Step]:
    """Every step planned at or before ``now``, in the order they were planned."""
    return list(takewhile(lambda s: s.planned_for <= now, schedule(due_at, rules, calendar)))


def next_step_after(
    due_at: datetime,
    after: datetime | None,
    rules: ClockRules,
    calendar: WorkingCalendar = VIETNAM,
) -> datetime | None:
    """When the first step planned strictly after ``after`` is planned (``after`` None: the
    first step of all); None when no step comes after it (the last urging has passed).
    Once the clock has decided at ``after``, this is when it has something to decide next."""
    for step in schedule(due_at, rules, calendar):
        if after is None or step.planned_for > after:
            return step.planned_for
    return None


def first_step_at(
    due_at: datetime, rules: ClockRules, calendar: WorkingCalendar = VIETNAM
) -> datetime | None:
    """When the clock first has something to decide for an obligation with nothing recorded
    (just opened, or its deadline moved): its first step, however long ago that was (the
    catch-up rules decide what still fires)."""
    return next_step_after(due_at, None, rules, calendar)


def schedule_fingerprint(rules: ClockRules, calendar: WorkingCalendar = VIETNAM) -> str:
    """Names everything a stored next step depends on: when any of it changes (a setting,
    or a ``holidays`` release moving a day), stored next steps may be late and are
    reconsidered."""
    offsets = ",".join(str(offset) for offset in rules.reminder_offsets_days)
    return (
        f"offsets={offsets} urge_every={rules.urge_every_working_days} "
        f"escalate_after={rules.escalate_after_steps} "
        f"escalate_to_receiving_after={rules.escalate_to_receiving_after_steps} "
        f"urge_max={rules.urge_max_steps} "
        f"calendar={calendar.country} holidays={HOLIDAYS_VERSION}"
    )


@dataclass(frozen=True)
class Decision:
    """What the clock does now for one obligation: steps to fire, steps to record unfired."""

    fire: tuple[Step, ...] = ()
    skip: tuple[Step, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.fire or self.skip)


def _worth_firing(passed: Sequence[Step], now: datetime, due_at: datetime) -> list[Step]:
    """The steps that still make sense among every step already planned (see the module
    docstring), whether or not they were recorded."""
    approaching = [s for s in passed if s.kind is StepKind.APPROACHING]
    urges = [s for s in passed if s.kind is StepKind.URGE]
    worth = [s for s in passed if s.kind is StepKind.MISSED]
    if approaching and now <= due_at:
        latest = max(s.planned_for for s in approaching)
        worth += [s for s in approaching if s.planned_for == latest]
    if urges:
        worth.append(max(urges, key=lambda s: s.number))
    return worth


@dataclass
class _DeadlineAtNow:
    """One deadline's schedule seen from one instant, with the decisions already made."""

    passed: tuple[tuple[str, Step], ...]
    """Every step planned up to now, with its name, in the order planned."""
    worth: frozenset[Step]
    next_step_at: datetime | None
    decisions: dict[frozenset[str], Decision]
    """By the set of steps recorded (most obligations of a deadline have the same)."""
    planned: dict[datetime, frozenset[str]]
    """Each instant a passed step is planned at → the names of the steps planned before."""


class ClockPass:
    """The clock's decisions at one instant ``now``. Obligations share deadlines (every
    commune's six-month report has the same one), so each deadline's schedule is worked
    out once per pass, and each decision once per deadline and steps recorded."""

    def __init__(
        self, now: datetime, rules: ClockRules, calendar: WorkingCalendar = VIETNAM
    ) -> None:
        self.now = now
        self.rules = rules
        self.calendar = calendar
        self._deadlines: dict[datetime, _DeadlineAtNow] = {}

    def _at_now(self, due_at: datetime) -> _DeadlineAtNow:
        found = self._deadlines.get(due_at)
        if found is None:
            passed: list[Step] = []
            upcoming = None
            for step in schedule(due_at, self.rules, self.calendar):
                if step.planned_for > self.now:
                    upcoming = step.planned_for
                    break
                passed.append(step)
            worth = frozenset(_worth_firing(passed, self.now, due_at))
            planned: dict[datetime, frozenset[str]] = {}
            for index, step in enumerate(passed):
                planned.setdefault(step.planned_for, frozenset(s.name for s in passed[:index]))
            named = tuple((step.name, step) for step in passed)
            found = _DeadlineAtNow(named, worth, upcoming, {}, planned)
            self._deadlines[due_at] = found
        return found

    def decide(self, due_at: datetime, recorded: Collection[str]) -> Decision:
        """Which of the obligation's steps fire now, given the ones already ``recorded``
        (fired or skipped). The caller checks first that the obligation still awaits a
        report."""
        at_now = self._at_now(due_at)
        key = frozenset(recorded)
        decision = at_now.decisions.get(key)
        if decision is None:
            due = [step for name, step in at_now.passed if name not in key]
            decision = at_now.decisions[key] = Decision(
                fire=tuple(s for s in due if s in at_now.worth),
                skip=tuple(s for s in due if s not in at_now.worth),
            )
        return decision

    def recorded_before(self, due_at: datetime, next_step_at: datetime) -> frozenset[str] | None:
        """The steps recorded for an obligation whose ``next_step_at`` the clock itself set
        (or set to the first step with nothing recorded): every step planned before it.
        None when ``next_step_at`` is not an instant a passed step is planned at (an early
        value: the steps recorded must be read)."""
        return self._at_now(due_at).planned.get(next_step_at)

    def next_step_at(self, due_at: datetime) -> datetime | None:
        """When the clock next has something to decide, once it has decided now:
        :func:`next_step_after` ``now``."""
        return self._at_now(due_at).next_step_at


def decide(
    due_at: datetime,
    now: datetime,
    recorded: Collection[str],
    rules: ClockRules,
    calendar: WorkingCalendar = VIETNAM,
) -> Decision:
    """Which of the obligation's steps fire at ``now``, given the ones already ``recorded``
    (fired or skipped). The caller checks first that the obligation still awaits a report."""
    return ClockPass(now, rules, calendar).decide(due_at, recorded)


def messages(
    fire: Sequence[Step],
    obligation: Obligation,
    rules: ClockRules,
    calendar: WorkingCalendar = VIETNAM,
) -> list[tuple[Event, tuple[Step, ...]]]:
    """The events for the steps that fire now, each with the steps it covers: approaching
    steps planned at the same instant (the calendar moved them onto one day) make one."""
    reminders: dict[datetime, list[Step]] = {}
    found: list[tuple[Event, tuple[Step, ...]]] = []
    for step in fire:
        if step.kind is StepKind.APPROACHING:
            reminders.setdefault(step.planned_for, []).append(step)
        else:
            found.append((event_for(step, obligation, rules), (step,)))
    for group in reminders.values():
        found.append((reminder_for(group, obligation, calendar), tuple(group)))
    found.sort(key=lambda pair: pair[1][0].planned_for)
    return found


def reminder_for(
    steps: Sequence[Step], obligation: Obligation, calendar: WorkingCalendar = VIETNAM
) -> DeadlineApproaching:
    """One reminder for approaching steps planned on the same day."""
    offsets = sorted((s.number for s in steps), reverse=True)
    fire_on = steps[0].fire_on
    return DeadlineApproaching(
        unit_path=obligation.unit_path,
        obligation=obligation.ref(),
        days_before=offsets[-1],
        fire_on=fire_on,
        steps=offsets,
        working_days_left=calendar.between(fire_on, ict_date(obligation.due_at)),
    )


def event_for(
    step: Step, obligation: Obligation, rules: ClockRules, calendar: WorkingCalendar = VIETNAM
) -> Event:
    if step.kind is StepKind.APPROACHING:
        return reminder_for([step], obligation, calendar)
    urging = step.kind is StepKind.URGE
    return DeadlineMissed(
        unit_path=obligation.unit_path,
        obligation=obligation.ref(),
        step=step.number,
        escalated=urging and step.number >= rules.escalate_after_steps,
        escalated_to_receiving_unit=urging
        and step.number >= rules.escalate_to_receiving_after_steps,
        final=step.number == rules.urge_max_steps if urging else rules.urge_max_steps == 0,
        urge_max_steps=rules.urge_max_steps,
    )
