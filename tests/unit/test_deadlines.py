"""The deadline clock's schedule: reminder days, working-day shifts, urging, catch-up."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import holidays
import pytest

from services.reports.domain.deadlines import (
    HOLIDAYS_VERSION,
    VIETNAM,
    ClockPass,
    ClockRules,
    Decision,
    Step,
    StepKind,
    WorkingCalendar,
    approaching_steps,
    decide,
    event_for,
    first_step_at,
    messages,
    missed_step,
    next_step_after,
    schedule_fingerprint,
    steps_until,
    urge_steps,
)
from services.reports.domain.model import Obligation
from shared.events import DeadlineApproaching, DeadlineMissed, ReportKind
from shared.vntime import ICT, last_instant_before

RULES = ClockRules()
SIX_MONTH_DUE = last_instant_before(date(2023, 6, 10))  # 09/06/2023 23:59:59.999999 ICT


def ict(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ICT).astimezone(UTC)


def reminder_days(before: date, rules: ClockRules = RULES) -> dict[int, date]:
    return {s.number: s.fire_on for s in approaching_steps(last_instant_before(before), rules)}


def names(steps: tuple[Step, ...] | list[Step]) -> list[str]:
    return [s.name for s in steps]


def test_the_calendar_is_what_the_tests_assume() -> None:
    vn = holidays.country_holidays("VN", years=[2023, 2024])
    assert date(2023, 6, 9).strftime("%A") == "Friday"
    assert all(date(2024, 2, day) in vn for day in range(8, 15))  # Tết Giáp Thìn
    assert date(2024, 2, 7) not in vn and date(2024, 2, 7).weekday() == 2
    assert {date(2023, 9, 1), date(2023, 9, 2), date(2023, 9, 4)} <= set(vn)
    assert {date(2023, 4, 29), date(2023, 5, 1), date(2023, 5, 2), date(2023, 5, 3)} <= set(vn)


def test_reminders_of_the_six_month_report_fall_on_working_days() -> None:
    steps = approaching_steps(SIX_MONTH_DUE, RULES)
    assert names(steps) == ["approaching-7", "approaching-3", "approaching-1"]
    assert [s.fire_on for s in steps] == [date(2023, 6, 2), date(2023, 6, 6), date(2023, 6, 8)]
    assert steps[0].planned_for == ict(2023, 6, 2, 8, 0)
    assert steps[0].planned_for == datetime(2023, 6, 2, 1, 0, tzinfo=UTC)


def test_a_reminder_on_a_weekend_moves_to_the_friday_before() -> None:
    # "before 20/11/2023": last on-time day Sunday 19/11.
    assert reminder_days(date(2023, 11, 20)) == {
        7: date(2023, 11, 10),  # Sunday 12/11 → Friday 10/11
        3: date(2023, 11, 16),  # Thursday
        1: date(2023, 11, 17),  # Saturday 18/11 → Friday 17/11
    }


def test_a_reminder_in_tet_moves_before_the_holiday_block() -> None:
    # approaching-7 of a deadline "before 20/02/2024" is planned on Monday 12/02/2024, in
    # the middle of Tết (08–14/02): it moves back across the weekend and the holidays.
    days = reminder_days(date(2024, 2, 20))
    assert days[7] == date(2024, 2, 7)
    assert VIETNAM.on_or_before(date(2024, 2, 12)) == date(2024, 2, 7)
    assert days[3] == days[1] == date(2024, 2, 16)  # Sunday 18/02 → Friday 16/02


def test_national_day_and_reunification_day_move_reminders() -> None:
    # Last day Monday 04/09/2023 (National Day observed); 01–02/09 are holidays.
    assert reminder_days(date(2023, 9, 5)) == {
        7: date(2023, 8, 28),
        3: date(2023, 8, 31),
        1: date(2023, 8, 31),
    }
    # Last day Wednesday 03/05/2023; 29/04–03/05 are holidays or a Sunday.
    assert reminder_days(date(2023, 5, 4)) == {
        7: date(2023, 4, 26),
        3: date(2023, 4, 28),
        1: date(2023, 4, 28),
    }


def test_a_saturday_made_a_working_day_keeps_its_reminder() -> None:
    # Saturday 04/05/2024 was worked in exchange for Monday 29/04/2024.
    assert reminder_days(date(2024, 5, 12))[7] == date(2024, 5, 4)
    assert reminder_days(date(2024, 5, 3))[1] == date(2024, 4, 26)


def test_missed_fires_the_instant_after_the_deadline() -> None:
    step = missed_step(SIX_MONTH_DUE)
    assert step.name == "missed-0"
    assert step.planned_for == ict(2023, 6, 10, 0, 0)


def test_urging_every_three_working_days_skips_weekends_and_holidays() -> None:
    first = [s for _, s in zip(range(4), urge_steps(SIX_MONTH_DUE, RULES), strict=False)]
    assert names(first) == ["urge-1", "urge-2", "urge-3", "urge-4"]
    assert [s.fire_on for s in first] == [
        date(2023, 6, 14),
        date(2023, 6, 19),
        date(2023, 6, 22),
        date(2023, 6, 27),
    ]
    assert first[0].planned_for == ict(2023, 6, 14, 8, 0)
    # Last day Thursday 27/04/2023: then Friday 28/04, five days off, 04/05, 05/05.
    around_holidays = next(urge_steps(last_instant_before(date(2023, 4, 28)), RULES))
    assert around_holidays.fire_on == date(2023, 5, 5)


def test_urging_interval_is_configurable() -> None:
    rules = ClockRules(urge_every_working_days=1)
    steps = urge_steps(SIX_MONTH_DUE, rules)
    assert [next(steps).fire_on for _ in range(2)] == [date(2023, 6, 12), date(2023, 6, 13)]


def test_steps_until_lists_what_is_planned_up_to_now() -> None:
    assert steps_until(SIX_MONTH_DUE, ict(2023, 6, 2, 7, 59, 59), RULES) == []
    assert names(steps_until(SIX_MONTH_DUE, ict(2023, 6, 2, 8, 0), RULES)) == ["approaching-7"]
    assert names(steps_until(SIX_MONTH_DUE, SIX_MONTH_DUE, RULES))[-1] == "approaching-1"
    after = steps_until(SIX_MONTH_DUE, ict(2023, 6, 19, 8, 0), RULES)
    assert names(after)[3:] == ["missed-0", "urge-1", "urge-2"]


def decided(now: datetime, *recorded: str) -> tuple[list[str], list[str]]:
    decision = decide(SIX_MONTH_DUE, now, set(recorded), RULES)
    return names(decision.fire), names(decision.skip)


def test_on_schedule_each_step_fires_alone() -> None:
    assert decided(ict(2023, 6, 1, 8, 0)) == ([], [])
    assert decided(ict(2023, 6, 2, 8, 0)) == (["approaching-7"], [])
    assert decided(ict(2023, 6, 6, 8, 0), "approaching-7") == (["approaching-3"], [])
    assert decided(ict(2023, 6, 10, 0, 0), "approaching-7", "approaching-3", "approaching-1") == (
        ["missed-0"],
        [],
    )
    assert not decide(
        SIX_MONTH_DUE, ict(2023, 6, 7, 8, 0), {"approaching-7", "approaching-3"}, RULES
    )


def test_catch_up_fires_only_the_latest_reminder_before_the_deadline() -> None:
    # The clock was down from 05/06 to 08/06 09:00: the 3-day reminder is stale.
    assert decided(ict(2023, 6, 8, 9, 0), "approaching-7") == (
        ["approaching-1"],
        ["approaching-3"],
    )
    # An obligation first seen on 07/06 gets the 3-day reminder, not the 7-day one.
    assert decided(ict(2023, 6, 7, 10, 0)) == (["approaching-3"], ["approaching-7"])


def test_catch_up_after_the_deadline_sends_no_reminder_but_the_miss() -> None:
    assert decided(ict(2023, 6, 11, 9, 0), "approaching-7") == (
        ["missed-0"],
        ["approaching-3", "approaching-1"],
    )


def test_catch_up_fires_only_the_latest_urging() -> None:
    before = ("approaching-7", "approaching-3", "approaching-1", "missed-0")
    assert decided(ict(2023, 6, 20, 9, 0), *before) == (["urge-2"], ["urge-1"])
    assert decided(ict(2023, 6, 20, 9, 0), *before, "urge-1", "urge-2") == ([], [])
    # Seen for the first time long after the deadline: the miss and the latest urging.
    assert decided(ict(2023, 6, 20, 9, 0)) == (
        ["missed-0", "urge-2"],
        ["approaching-7", "approaching-3", "approaching-1", "urge-1"],
    )


def test_a_step_older_than_one_already_recorded_never_fires() -> None:
    # E.g. after an amendment moved the deadline: the later reminder has gone out already.
    stale = ["approaching-7", "approaching-3"]
    assert decided(ict(2023, 6, 8, 10, 0), "approaching-1") == ([], stale)
    late = decided(ict(2023, 6, 20, 9, 0), "missed-0", "urge-2")
    assert late == ([], [*stale, "approaching-1", "urge-1"])


def test_reminders_the_calendar_put_on_the_same_day_both_fire() -> None:
    due = last_instant_before(date(2024, 2, 20))
    decision = decide(due, ict(2024, 2, 16, 8, 0), {"approaching-7"}, RULES)
    assert decision == Decision(fire=tuple(approaching_steps(due, RULES)[1:]))


def test_the_next_step_walks_the_schedule() -> None:
    walk = [first_step_at(SIX_MONTH_DUE, RULES)]
    for _ in range(6):
        assert walk[-1] is not None
        walk.append(next_step_after(SIX_MONTH_DUE, walk[-1], RULES))
    assert walk == [
        ict(2023, 6, 2, 8, 0),  # approaching-7
        ict(2023, 6, 6, 8, 0),
        ict(2023, 6, 8, 8, 0),
        ict(2023, 6, 10, 0, 0),  # missed-0, the instant after the deadline
        ict(2023, 6, 14, 8, 0),  # urge-1
        ict(2023, 6, 19, 8, 0),
        ict(2023, 6, 22, 8, 0),
    ]
    second = ict(2023, 6, 6, 8, 0)
    assert next_step_after(SIX_MONTH_DUE, ict(2023, 6, 3, 12, 0), RULES) == second
    assert next_step_after(SIX_MONTH_DUE, second - timedelta(microseconds=1), RULES) == second


def test_reminders_the_calendar_put_on_the_same_day_are_one_next_step() -> None:
    due = last_instant_before(date(2024, 2, 20))
    assert next_step_after(due, ict(2024, 2, 7, 8, 0), RULES) == ict(2024, 2, 16, 8, 0)
    assert next_step_after(due, ict(2024, 2, 16, 8, 0), RULES) == missed_step(due).planned_for


def test_without_reminders_the_first_step_is_the_miss() -> None:
    no_reminders = ClockRules(reminder_offsets_days=())
    assert first_step_at(SIX_MONTH_DUE, no_reminders) == ict(2023, 6, 10, 0, 0)


class CountingCalendar(WorkingCalendar):
    def __init__(self) -> None:
        super().__init__("VN")
        self.asked = 0

    def is_working_day(self, day: date) -> bool:
        self.asked += 1
        return super().is_working_day(day)


def test_a_pass_decides_like_decide_and_works_each_deadline_out_once() -> None:
    now = ict(2023, 6, 20, 9, 0)
    calendar = CountingCalendar()
    clock_pass = ClockPass(now, RULES, calendar)
    for recorded in [set(), {"approaching-7", "missed-0"}, {"urge-1", "urge-2"}]:
        assert clock_pass.decide(SIX_MONTH_DUE, recorded) == decide(
            SIX_MONTH_DUE, now, recorded, RULES
        )
    assert clock_pass.next_step_at(SIX_MONTH_DUE) == ict(2023, 6, 22, 8, 0)
    asked = calendar.asked
    assert asked > 0
    clock_pass.decide(SIX_MONTH_DUE, set())
    assert calendar.asked == asked


def test_the_schedule_fingerprint_changes_with_what_steps_depend_on() -> None:
    assert schedule_fingerprint(RULES) == schedule_fingerprint(ClockRules())
    changed = [
        ClockRules(reminder_offsets_days=(14, 7, 3, 1)),
        ClockRules(urge_every_working_days=5),
        ClockRules(escalate_after_steps=3),
        ClockRules(escalate_to_receiving_after_steps=3),
        ClockRules(urge_max_steps=9),
    ]
    assert all(schedule_fingerprint(rules) != schedule_fingerprint(RULES) for rules in changed)
    assert f"holidays={HOLIDAYS_VERSION}" in schedule_fingerprint(RULES)


def obligation(due_at: datetime = SIX_MONTH_DUE) -> Obligation:
    return Obligation(
        id="o-1",
        plan_id="p-1",
        schedule_key="six_month",
        report_kind=ReportKind.SIX_MONTH,
        unit_code="STP",
        unit_path=["T89", "STP"],
        receiving_unit="SNV",
        period_start=date(2022, 12, 15),
        period_end=date(2023, 6, 14),
        due_at=due_at,
    )


def test_events_carry_the_offset_the_day_and_the_escalation() -> None:
    reminder = event_for(approaching_steps(SIX_MONTH_DUE, RULES)[0], obligation(), RULES)
    assert isinstance(reminder, DeadlineApproaching)
    assert (reminder.days_before, reminder.fire_on) == (7, date(2023, 6, 2))
    assert reminder.subject() == "qcdc.v1.deadline.approaching.T89.STP"
    urges = urge_steps(SIX_MONTH_DUE, RULES)
    misses = [event_for(s, obligation(), RULES) for s in (missed_step(SIX_MONTH_DUE), next(urges))]
    misses.append(event_for(next(urges), obligation(), RULES))
    assert all(isinstance(e, DeadlineMissed) for e in misses)
    assert [(e.step, e.escalated) for e in misses if isinstance(e, DeadlineMissed)] == [
        (0, False),
        (1, False),
        (2, True),
    ]
    early = event_for(next(urges), obligation(), ClockRules(escalate_after_steps=4))
    assert isinstance(early, DeadlineMissed) and not early.escalated


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        ClockRules(reminder_offsets_days=(0,))
    with pytest.raises(ValueError):
        ClockRules(urge_every_working_days=0)
    with pytest.raises(ValueError):
        ClockRules(urge_max_steps=-1)
    with pytest.raises(ValueError):
        ClockRules(escalate_to_receiving_after_steps=0)
    assert Step(StepKind.URGE, 3, SIX_MONTH_DUE).name == "urge-3"


# --- one message per day, time left in working days ---------------------------------------

TET_2026_DUE = last_instant_before(date(2026, 2, 24))
"""Last on-time day Monday 23/02/2026; Tết Bính Ngọ is 16–20/02: 7, 3 and 1 days before
all move back to Friday 13/02, ten calendar days but one working day before the end."""


def test_working_days_between_count_neither_weekends_nor_holidays() -> None:
    assert VIETNAM.between(date(2026, 2, 13), date(2026, 2, 23)) == 1
    assert VIETNAM.between(date(2023, 6, 2), date(2023, 6, 9)) == 5
    assert VIETNAM.between(date(2023, 6, 9), date(2023, 6, 9)) == 0
    assert VIETNAM.between(date(2023, 6, 12), date(2023, 6, 9)) == 0


def test_reminders_on_one_day_make_one_message_covering_every_step() -> None:
    decision = decide(TET_2026_DUE, ict(2026, 2, 13, 8, 0), set(), RULES)
    assert names(decision.fire) == ["approaching-7", "approaching-3", "approaching-1"]
    found = messages(decision.fire, obligation(due_at=TET_2026_DUE), RULES)
    assert len(found) == 1
    reminder, covered = found[0]
    assert isinstance(reminder, DeadlineApproaching)
    assert names(covered) == names(decision.fire)
    assert reminder.steps == [7, 3, 1] and reminder.days_before == 1
    assert (reminder.fire_on, reminder.working_days_left) == (date(2026, 2, 13), 1)


def test_reminders_on_different_days_stay_separate_messages() -> None:
    fire = (*approaching_steps(SIX_MONTH_DUE, RULES), missed_step(SIX_MONTH_DUE))
    found = messages(fire, obligation(), RULES)
    assert [len(steps) for _, steps in found] == [1, 1, 1, 1]
    left = [e.working_days_left for e, _ in found if isinstance(e, DeadlineApproaching)]
    assert left == [5, 3, 1]  # Fri 02/06 → Fri 09/06; Tue 06/06; Thu 08/06


def test_urging_stops_after_its_count_and_the_last_says_so() -> None:
    rules = ClockRules(urge_max_steps=3, escalate_to_receiving_after_steps=3)
    urges = list(urge_steps(SIX_MONTH_DUE, rules))
    assert names(urges) == ["urge-1", "urge-2", "urge-3"]
    assert next_step_after(SIX_MONTH_DUE, urges[-1].planned_for, rules) is None
    events = [event_for(s, obligation(), rules) for s in (missed_step(SIX_MONTH_DUE), *urges)]
    flags = [
        (e.step, e.escalated, e.escalated_to_receiving_unit, e.final)
        for e in events
        if isinstance(e, DeadlineMissed)
    ]
    assert flags == [
        (0, False, False, False),
        (1, False, False, False),
        (2, True, False, False),
        (3, True, True, True),
    ]
    much_later = urges[-1].planned_for + timedelta(days=300)
    recorded = {s.name for s in steps_until(SIX_MONTH_DUE, much_later, rules)}
    assert not decide(SIX_MONTH_DUE, much_later, recorded, rules)


def test_without_urging_the_miss_is_final() -> None:
    rules = ClockRules(urge_max_steps=0)
    assert list(urge_steps(SIX_MONTH_DUE, rules)) == []
    miss = event_for(missed_step(SIX_MONTH_DUE), obligation(), rules)
    assert isinstance(miss, DeadlineMissed) and miss.final
    assert next_step_after(SIX_MONTH_DUE, missed_step(SIX_MONTH_DUE).planned_for, rules) is None
