"""Vietnam time: "before <date>" deadlines, and dates as officials read them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ICT = ZoneInfo("Asia/Ho_Chi_Minh")


def start_of_day(day: date) -> datetime:
    """00:00 ICT of ``day``, as a UTC instant."""
    return datetime.combine(day, time(0, 0), tzinfo=ICT).astimezone(UTC)


def last_instant_before(day: date) -> datetime:
    """The last on-time instant of a "before <day>" deadline: the day before, 23:59:59.999999
    ICT. "trước ngày 10/6/2023" → 09/06/2023 23:59:59.999999 ICT (16:59:59.999999 UTC)."""
    return start_of_day(day) - timedelta(microseconds=1)


def is_on_time(submitted_at: datetime, due_at: datetime) -> bool:
    return submitted_at <= due_at


def ict_date(instant: datetime) -> date:
    return instant.astimezone(ICT).date()


def format_date(value: date | datetime) -> str:
    """dd/mm/yyyy, in ICT for instants."""
    if isinstance(value, datetime):
        value = ict_date(value)
    return value.strftime("%d/%m/%Y")


def format_instant(instant: datetime) -> str:
    """HH:MM dd/mm/yyyy in ICT."""
    return instant.astimezone(ICT).strftime("%H:%M %d/%m/%Y")
