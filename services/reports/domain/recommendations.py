"""Recommendations after supervision (kiến nghị sau giám sát): registered for a unit, answered
in writing within the answer period, then implemented, report by report, until closed. Pure,
no I/O.

The answer is an obligation like a report: the deadline clock reminds and urges the addressed
unit until it answers (schedule key ``recommendation-<id>``, kind ad hoc, due at the end of
the answer period). The history (the answer, every implementation report) is kept in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from services.reports.domain.model import (
    RECOMMENDATION_PREFIX,
    Obligation,
    ObligationStatus,
    obligation_id,
)
from shared.errors import Refused
from shared.events import (
    Event,
    RecommendationAnswered,
    RecommendationImplementationReported,
    RecommendationRegistered,
)
from shared.mapping import shown
from shared.vntime import is_on_time, last_instant_before

_E = TypeVar("_E", bound=Event)
SCHEDULE_PREFIX = RECOMMENDATION_PREFIX
"""Schedule key of an answer obligation: ``recommendation-<id>`` (its plan id is empty)."""


class RecommendationRefused(Refused):
    """A command the recommendation rules refuse."""


class RecommendationStatus(StrEnum):
    AWAITING_ANSWER = "awaiting_answer"
    ANSWERED = "answered"
    """Answered, being implemented."""
    CLOSED = "closed"


class EntryKind(StrEnum):
    ANSWER = "answer"
    IMPLEMENTATION = "implementation"


@dataclass(frozen=True)
class Entry:
    """One step of a recommendation's history: the answer, or an implementation report."""

    number: int
    kind: EntryKind
    text: str
    at: datetime
    by_unit: str
    completed: bool = False


def answer_due_at(received_on: date, answer_days: int) -> datetime:
    """The last on-time instant of the answer: the end (ICT) of the ``answer_days``-th
    calendar day after the day received."""
    return last_instant_before(received_on + timedelta(days=answer_days + 1))


@dataclass
class Recommendation:
    id: str
    source_organisation: str
    topic: str
    content: str
    addressed_unit: str
    addressed_path: list[str]
    registered_by_unit: str
    received_on: date
    registered_at: datetime
    answer_due_at: datetime
    status: RecommendationStatus = RecommendationStatus.AWAITING_ANSWER
    answered_at: datetime | None = None
    answered_on_time: bool | None = None
    closed_at: datetime | None = None
    history: list[Entry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list, repr=False)

    @property
    def schedule_key(self) -> str:
        return f"{SCHEDULE_PREFIX}{self.id}"

    @property
    def obligation_id(self) -> str:
        return obligation_id("", self.schedule_key, self.addressed_unit)

    def answer_obligation(self) -> Obligation:
        """What the addressed unit owes: a written answer by :attr:`answer_due_at`, to the
        unit that registered the recommendation."""
        return Obligation.outside_plan(
            schedule_key=self.schedule_key,
            unit_code=self.addressed_unit,
            unit_path=self.addressed_path,
            receiving_unit=self.registered_by_unit,
            arose_on=self.received_on,
            due_at=self.answer_due_at,
            title=f"Trả lời kiến nghị sau giám sát: {self.topic}",
        )

    def _tell(self, kind: type[_E], **said: Any) -> _E:
        """Raise ``kind`` about this recommendation, under the addressed unit's path: the
        recommendation's own fields of the event (its topic, units, …) and ``said``."""
        event = shown(kind, self, unit_path=self.addressed_path, recommendation_id=self.id, **said)
        self.events.append(event)
        return event

    def registered(self) -> RecommendationRegistered:
        return self._tell(RecommendationRegistered)

    def _entry(self, kind: EntryKind, text: str, at: datetime, by_unit: str, done: bool) -> Entry:
        if not text.strip():
            raise RecommendationRefused("the text is empty", field="text")
        entry = Entry(len(self.history) + 1, kind, text, at, by_unit, done)
        self.history.append(entry)
        return entry

    def answer(self, text: str, *, at: datetime, by_unit: str, obligation: Obligation) -> Entry:
        """The written answer: it meets the answer obligation, on time or late."""
        if self.status is not RecommendationStatus.AWAITING_ANSWER:
            raise RecommendationRefused(f"this recommendation is already {self.status.value}")
        entry = self._entry(EntryKind.ANSWER, text, at, by_unit, False)
        self.status = RecommendationStatus.ANSWERED
        self.answered_at = at
        self.answered_on_time = is_on_time(at, self.answer_due_at)
        # Nothing to review: a written answer meets the obligation as it is.
        obligation.status = ObligationStatus.ACCEPTED
        self._tell(
            RecommendationAnswered, answer=text, answered_at=at, on_time=self.answered_on_time
        )
        return entry

    def report_implementation(
        self, text: str, *, at: datetime, by_unit: str, completed: bool
    ) -> Entry:
        """An implementation report; ``completed`` closes the recommendation."""
        if self.status is RecommendationStatus.AWAITING_ANSWER:
            raise RecommendationRefused(
                "answer the recommendation in writing before reporting its implementation"
            )
        if self.status is RecommendationStatus.CLOSED:
            raise RecommendationRefused("this recommendation is closed")
        entry = self._entry(EntryKind.IMPLEMENTATION, text, at, by_unit, completed)
        if completed:
            self.status = RecommendationStatus.CLOSED
            self.closed_at = at
        self._tell(
            RecommendationImplementationReported,
            report_number=sum(e.kind is EntryKind.IMPLEMENTATION for e in self.history),
            content=text,
            completed=completed,
            reported_at=at,
        )
        return entry
