"""The deadline clock's events from templates: the same bytes as the domain's own events."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.reports.domain.deadlines import (
    VIETNAM,
    ClockPass,
    ClockRules,
    Step,
    at_reminder_time,
    messages,
    schedule,
)
from services.reports.domain.model import Obligation, ObligationStatus
from services.reports.handlers.clock_events import ClockEvents
from shared.bus.envelope import new_event_id
from shared.clock import ManualClock
from shared.db import messaging_tables
from shared.events import ReportKind
from shared.personal_data import off_the_bus
from shared.uow import UnitOfWork
from shared.vntime import last_instant_before

RULES = ClockRules()
NOW = at_reminder_time(date(2026, 6, 3))
TITLE = 'Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2026 "đợt 1" \\ ‘ngoặc’'


def an_obligation(due_at: datetime, index: int, path: list[str]) -> Obligation:
    return Obligation(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"o-{index}")),
        plan_id="kh-2026",
        schedule_key=f"k-{due_at.date()}",
        report_kind=ReportKind.THEMATIC,
        unit_code=path[-1],
        unit_path=path,
        receiving_unit="SNV",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        due_at=due_at,
        plan_doc_number="123/KH-UBND",
        plan_title=TITLE,
        status=ObligationStatus.OPEN,
    )


def a_unit_of_work() -> UnitOfWork:
    return UnitOfWork(
        None,  # type: ignore[arg-type]  # publishing only: no session is opened
        messaging_tables(sa.MetaData()),
        source="/qcdc/reports",
        clock=ManualClock(NOW),
        outgoing=off_the_bus(""),
    )


def every_kind_of_decision() -> list[tuple[Obligation, tuple[Step, ...]]]:
    """Obligations whose deadlines put reminders (alone and grouped by the calendar), the
    miss, every urging and catch-ups at NOW, on paths of every depth."""
    paths = [["T1"], ["T1", "H22"], ["T1", "H22", "X333"], ["T1", "H22", "X333", "Y_4-4"]]
    found: list[tuple[Obligation, tuple[Step, ...]]] = []
    for offset in range(-40, 40):
        due_at = last_instant_before(NOW.date() + timedelta(days=offset))
        for recorded_upto in (None, *(s.planned_for for s in schedule(due_at, RULES))):
            recorded = [
                s.name
                for s in schedule(due_at, RULES)
                if recorded_upto is not None and s.planned_for < recorded_upto
            ]
            decision = ClockPass(NOW, RULES, VIETNAM).decide(due_at, recorded)
            if decision.fire:
                index = len(found)
                found.append((an_obligation(due_at, index, paths[index % 4]), decision.fire))
    return found


def test_templates_encode_what_the_domain_encodes_byte_for_byte() -> None:
    uow, events = a_unit_of_work(), ClockEvents(RULES, VIETNAM)
    cases = every_kind_of_decision()
    assert len(cases) > 50
    kinds = set()
    for obligation, fire in cases:
        encoded = events.encode(uow, obligation, fire)
        assert encoded is not None
        expected = messages(fire, obligation, RULES, VIETNAM)
        assert [steps for _, steps in encoded] == [steps for _, steps in expected]
        for (got, _), (event, _) in zip(encoded, expected, strict=True):
            kinds.add(type(event).__name__)
            assert got.body == event.model_dump_json().encode()
            assert got.subject == event.subject()
            assert got.ce_type == event.ce_type()
            assert list(got.unit_path) == event.unit_path
    assert kinds == {"DeadlineApproaching", "DeadlineMissed"}


def test_an_encoded_event_is_queued_as_publish_queues_it() -> None:
    uow, events = a_unit_of_work(), ClockEvents(RULES, VIETNAM)
    obligation, fire = every_kind_of_decision()[0]
    encoded = events.encode(uow, obligation, fire)
    assert encoded is not None
    fast_ids = uow.publish_encoded([event for event, _ in encoded])
    slow_ids = uow.publish(*(event for event, _ in messages(fire, obligation, RULES, VIETNAM)))
    fast, slow = uow._pending[: len(fast_ids)], uow._pending[len(fast_ids) :]
    assert [row[4] for row in fast] == fast_ids and [row[4] for row in slow] == slow_ids
    for (f_subject, f_headers, f_body, f_type, f_id), (
        s_subject,
        s_headers,
        s_body,
        s_type,
        _,
    ) in zip(fast, slow, strict=True):
        assert (f_subject, f_body, f_type) == (s_subject, s_body, s_type)
        assert f_headers["ce-id"] == f_headers["Nats-Msg-Id"] == f_id
        ids = {"ce-id", "Nats-Msg-Id"}
        assert {k: v for k, v in f_headers.items() if k not in ids} == {
            k: v for k, v in s_headers.items() if k not in ids
        }
        assert list(f_headers) == list(s_headers)
        json.dumps(f_headers)


@pytest.mark.parametrize(
    "change",
    [
        {"id": 'o"1'},
        {"id": "o\\1"},
        {"id": "ô-1"},
        {"id": ""},
        {"unit_code": "X 1"},
        {"unit_path": []},
        {"unit_path": ["T1", "H 2"]},
        {"unit_path": [f"L{i}" for i in range(13)]},
    ],
)
def test_values_that_are_not_plain_go_the_domains_way(change: dict[str, Any]) -> None:
    uow, events = a_unit_of_work(), ClockEvents(RULES, VIETNAM)
    obligation, fire = every_kind_of_decision()[0]
    assert events.encode(uow, obligation, fire) is not None
    assert events.encode(uow, dataclasses.replace(obligation, **change), fire) is None


def test_event_ids_are_random_uuids_as_uuid4_writes_them() -> None:
    ids = {new_event_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_template_is_not_taken_for_another_plan_entry() -> None:
    uow, events = a_unit_of_work(), ClockEvents(RULES, VIETNAM)
    obligation, fire = every_kind_of_decision()[0]
    events.encode(uow, obligation, fire)
    other = dataclasses.replace(obligation, plan_title="Another plan")
    encoded = events.encode(uow, other, fire)
    assert encoded is not None
    expected = messages(fire, other, RULES, VIETNAM)
    assert [e.body for e, _ in encoded] == [e.model_dump_json().encode() for e, _ in expected]
