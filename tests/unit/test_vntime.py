"""Vietnam time: "before <date>" deadlines (strictly before, ICT) and dd/mm/yyyy display."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.vntime import (
    ICT,
    format_date,
    format_instant,
    ict_date,
    is_on_time,
    last_instant_before,
    start_of_day,
)

SIX_MONTH_DUE_AT = datetime(2023, 6, 9, 16, 59, 59, 999999, tzinfo=UTC)


def test_start_of_day_is_midnight_ict_as_utc() -> None:
    # ICT is UTC+7 all year (no daylight saving): 00:00 ICT is 17:00 UTC the day before.
    assert start_of_day(date(2023, 6, 10)) == datetime(2023, 6, 9, 17, 0, tzinfo=UTC)
    assert start_of_day(date(2023, 1, 1)) == datetime(2022, 12, 31, 17, 0, tzinfo=UTC)


def test_before_10_june_ends_on_9_june_last_microsecond_ict() -> None:
    due_at = last_instant_before(date(2023, 6, 10))
    assert due_at == SIX_MONTH_DUE_AT
    assert due_at.utcoffset() == timedelta(0)
    local = due_at.astimezone(ICT)
    assert (local.year, local.month, local.day) == (2023, 6, 9)
    assert (local.hour, local.minute, local.second, local.microsecond) == (23, 59, 59, 999999)


def test_before_20_november_ends_on_19_november_ict() -> None:
    due_at = last_instant_before(date(2023, 11, 20))
    assert due_at == datetime(2023, 11, 19, 16, 59, 59, 999999, tzinfo=UTC)
    assert ict_date(due_at) == date(2023, 11, 19)
    assert format_date(due_at) == "19/11/2023"


def test_before_first_of_month_and_year_crosses_boundaries() -> None:
    assert ict_date(last_instant_before(date(2024, 3, 1))) == date(2024, 2, 29)
    assert ict_date(last_instant_before(date(2024, 1, 1))) == date(2023, 12, 31)


@pytest.mark.parametrize(
    ("submitted_ict", "on_time"),
    [
        (datetime(2023, 6, 9, 0, 0, 0), True),
        (datetime(2023, 6, 9, 23, 59, 59), True),
        (datetime(2023, 6, 9, 23, 59, 59, 999999), True),
        (datetime(2023, 6, 10, 0, 0, 0), False),
        (datetime(2023, 6, 10, 0, 0, 0, 1), False),
        (datetime(2023, 6, 10, 8, 0, 0), False),
    ],
)
def test_on_time_means_strictly_before_the_day_in_ict(
    submitted_ict: datetime, on_time: bool
) -> None:
    due_at = last_instant_before(date(2023, 6, 10))
    submitted_at = submitted_ict.replace(tzinfo=ICT).astimezone(UTC)
    assert is_on_time(submitted_at, due_at) is on_time


def test_on_time_compares_instants_not_wall_clocks() -> None:
    due_at = last_instant_before(date(2023, 6, 10))
    # 17:30 UTC on 09/06 is already 00:30 ICT on 10/06: late, although the UTC date is the 9th.
    assert is_on_time(datetime(2023, 6, 9, 17, 30, tzinfo=UTC), due_at) is False
    # The same instant expressed in ICT gives the same answer.
    assert is_on_time(datetime(2023, 6, 10, 0, 30, tzinfo=ICT), due_at) is False
    assert is_on_time(datetime(2023, 6, 9, 16, 30, tzinfo=UTC), due_at) is True


def test_format_date_shows_the_ict_day_of_an_instant_late_in_the_utc_day() -> None:
    assert format_date(datetime(2023, 6, 9, 18, 0, tzinfo=UTC)) == "10/06/2023"
    assert format_date(datetime(2023, 6, 9, 16, 59, tzinfo=UTC)) == "09/06/2023"


def test_format_date_of_a_plain_date_is_dd_mm_yyyy() -> None:
    assert format_date(date(2023, 6, 9)) == "09/06/2023"
    assert format_date(date(2023, 11, 20)) == "20/11/2023"


def test_format_instant_is_hh_mm_dd_mm_yyyy_in_ict() -> None:
    assert format_instant(datetime(2023, 6, 9, 18, 5, tzinfo=UTC)) == "01:05 10/06/2023"
    assert format_instant(SIX_MONTH_DUE_AT) == "23:59 09/06/2023"
