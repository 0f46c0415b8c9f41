"""The injectable clock: manual, file-driven and configured by spec."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared.clock import (
    FileClock,
    ManualClock,
    OffsetClock,
    SystemClock,
    clock_from_spec,
    parse_instant,
)

T0 = datetime(2023, 6, 9, 16, 59, 59, tzinfo=UTC)


def test_manual_clock_starts_where_told_and_reports_utc() -> None:
    clock = ManualClock(datetime(2023, 6, 9, 23, 59, 59, tzinfo=timezone(timedelta(hours=7))))
    assert clock.now() == T0
    assert clock.now().utcoffset() == timedelta(0)


def test_manual_clock_set_and_advance() -> None:
    clock = ManualClock(T0)
    clock.advance(timedelta(seconds=1))
    assert clock.now() == datetime(2023, 6, 9, 17, 0, 0, tzinfo=UTC)
    clock.advance(timedelta(days=2, hours=3))
    assert clock.now() == datetime(2023, 6, 11, 20, 0, 0, tzinfo=UTC)
    clock.set(datetime(2023, 11, 20, 0, 0, tzinfo=timezone(timedelta(hours=7))))
    assert clock.now() == datetime(2023, 11, 19, 17, 0, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)


@pytest.fixture
def clock_file(tmp_path: Path) -> Path:
    """A clock file, alone in its folder, that says T0."""
    path = tmp_path / "clock"
    FileClock.write(path, T0)
    return path


def test_file_clock_rereads_when_the_file_changes(clock_file: Path) -> None:
    clock = FileClock(clock_file)
    assert clock.now() == T0
    later = datetime(2023, 6, 10, 1, 0, tzinfo=UTC)
    FileClock.write(clock_file, later)
    assert clock.now() == later
    FileClock.write(clock_file, datetime(2023, 6, 10, 8, 0, tzinfo=timezone(timedelta(hours=7))))
    assert clock.now() == datetime(2023, 6, 10, 1, 0, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)


def test_file_clock_keeps_its_value_while_the_file_is_unchanged(clock_file: Path) -> None:
    clock = FileClock(clock_file)
    assert clock.now() == T0
    assert clock.now() == T0  # no drift: the file clock does not tick on its own


def test_file_clock_write_leaves_no_temporary_file(clock_file: Path) -> None:
    assert sorted(p.name for p in clock_file.parent.iterdir()) == ["clock"]
    assert parse_instant(clock_file.read_text()) == T0


def test_file_clock_sees_a_rewrite_with_the_same_mtime(clock_file: Path) -> None:
    stamp = clock_file.stat().st_mtime_ns
    clock = FileClock(clock_file)
    assert clock.now() == T0
    later = T0 + timedelta(days=1)
    FileClock.write(clock_file, later)
    # Simulate a filesystem whose timestamps are coarser than the gap between the writes.
    os.utime(clock_file, ns=(stamp, stamp))
    assert clock.now() == later


def test_clock_from_spec_system() -> None:
    clock = clock_from_spec("system")
    assert isinstance(clock, SystemClock)
    before = datetime.now(UTC)
    now = clock.now()
    assert before - timedelta(seconds=1) <= now <= datetime.now(UTC) + timedelta(seconds=1)
    assert now.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "spec",
    [
        "fixed:2023-06-09T16:59:59Z",
        "fixed:2023-06-09T16:59:59+00:00",
        "fixed:2023-06-09T23:59:59+07:00",
    ],
)
def test_clock_from_spec_fixed(spec: str) -> None:
    clock = clock_from_spec(spec)
    assert clock.now() == T0
    assert clock.now().utcoffset() == timedelta(0)


def test_clock_from_spec_fixed_requires_a_time_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        clock_from_spec("fixed:2023-06-09T16:59:59")


def test_clock_from_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    FileClock.write(path, T0)
    clock = clock_from_spec(f"file:{path}")
    assert isinstance(clock, FileClock)
    assert clock.now() == T0
    FileClock.write(path, T0 + timedelta(hours=1))
    assert clock.now() == T0 + timedelta(hours=1)


@pytest.mark.parametrize(("seconds", "expected"), [("3600", 3600.0), ("-86400", -86400.0)])
def test_clock_from_spec_offset(seconds: str, expected: float) -> None:
    clock = clock_from_spec(f"offset:{seconds}")
    assert isinstance(clock, OffsetClock)
    assert clock.offset == timedelta(seconds=expected)
    shift = clock.now() - datetime.now(UTC)
    assert abs(shift - timedelta(seconds=expected)) < timedelta(seconds=5)


@pytest.mark.parametrize("spec", ["frozen:2023-06-09T16:59:59Z", "", "SYSTEM", "manual"])
def test_clock_from_spec_refuses_an_unknown_spec_clearly(spec: str) -> None:
    with pytest.raises(ValueError, match="unknown clock") as info:
        clock_from_spec(spec)
    message = str(info.value)
    for choice in ("system", "fixed:", "file:", "offset:"):
        assert choice in message
