"""The injectable clock. Every deadline computation takes time from a Clock, never datetime.now.

``QCDC_CLOCK`` chooses one per process:
- ``system`` (default): the real time;
- ``fixed:2023-06-09T16:59:59Z``: a frozen instant;
- ``file:/path/to/clock``: the instant written in that file (ISO 8601), re-read when it
  changes, so a test can move time for a running process;
- ``offset:<seconds>``: the real time shifted by that many seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


def parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"instant {text!r} has no time zone")
    return value.astimezone(UTC)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OffsetClock:
    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class ManualClock:
    """A clock a test sets and moves by hand."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


class FileClock:
    """Reads the instant from a file; lets a test move time for another process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._value = datetime.now(UTC)

    def now(self) -> datetime:
        stat = self.path.stat()
        # write() replaces the file, so the inode changes even where timestamps are coarse.
        seen = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
        if seen != self._seen:
            self._value = parse_instant(self.path.read_text())
            self._seen = seen
        return self._value

    @staticmethod
    def write(path: Path, instant: datetime) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(instant.astimezone(UTC).isoformat())
        tmp.replace(path)


def clock_from_spec(spec: str) -> Clock:
    kind, _, arg = spec.partition(":")
    if kind == "system":
        return SystemClock()
    if kind == "fixed":
        return ManualClock(parse_instant(arg))
    if kind == "file":
        return FileClock(Path(arg))
    if kind == "offset":
        return OffsetClock(timedelta(seconds=float(arg)))
    raise ValueError(
        f"unknown clock {spec!r}: use system, fixed:<instant>, file:<path> or offset:<s>"
    )
