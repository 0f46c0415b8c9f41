"""JetStream stream configuration: durable, deduplicating, keeping years of history."""

from __future__ import annotations

import pytest
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType

from shared.bus.streams import (
    ALL_STREAMS,
    DEAD_LETTER,
    DEAD_LETTER_PREFIX,
    NOTIFY,
    PLANS,
    REPORTS,
    StreamSpec,
    dead_letter_subject,
    stream_for_subject,
)

HOUR = 3600
YEAR = 365 * 24 * HOUR
NS = 1_000_000_000


@pytest.mark.parametrize("spec", ALL_STREAMS, ids=lambda spec: spec.name)
def test_streams_are_durable_on_file_and_keep_years(spec: StreamSpec) -> None:
    config = spec.config()
    assert config.name == spec.name
    assert config.storage is StorageType.FILE
    assert config.retention is RetentionPolicy.LIMITS
    assert config.discard is DiscardPolicy.OLD
    assert config.max_age is not None
    assert config.max_age >= YEAR
    assert config.duplicate_window is not None
    assert config.duplicate_window >= HOUR
    # Deduplication cannot outlive the messages it deduplicates.
    assert config.duplicate_window <= config.max_age
    assert config.subjects == list(spec.subjects)


@pytest.mark.parametrize("spec", ALL_STREAMS, ids=lambda spec: spec.name)
def test_stream_durations_reach_the_server_in_nanoseconds(spec: StreamSpec) -> None:
    wire = spec.config().as_dict()
    assert wire["storage"] == "file"
    assert isinstance(wire["max_age"], int)
    assert isinstance(wire["duplicate_window"], int)
    assert wire["max_age"] >= YEAR * NS
    assert wire["duplicate_window"] >= HOUR * NS


def test_stream_names_are_unique_and_subjects_do_not_overlap() -> None:
    names = [spec.name for spec in ALL_STREAMS]
    assert len(set(names)) == len(names)
    patterns = [p for spec in ALL_STREAMS for p in spec.subjects]
    assert len(set(patterns)) == len(patterns)
    # Each pattern is "<token>....<token>.>": none may contain another.
    prefixes = [p.removesuffix(">") for p in patterns]
    for a in prefixes:
        for b in prefixes:
            assert a == b or not a.startswith(b), (a, b)


def test_every_subject_pattern_is_a_v1_wildcard() -> None:
    for spec in ALL_STREAMS:
        for pattern in spec.subjects:
            assert pattern.startswith("qcdc.v1.")
            assert pattern.endswith(".>")


def test_dead_letter_subject_scheme() -> None:
    assert DEAD_LETTER_PREFIX == "qcdc.v1.deadletter"
    subject = dead_letter_subject("notify", "notify-report-submitted")
    assert subject == "qcdc.v1.deadletter.notify.notify-report-submitted"
    assert stream_for_subject(subject) is DEAD_LETTER
    assert DEAD_LETTER.subjects == ("qcdc.v1.deadletter.>",)


def test_dead_letters_are_not_caught_by_a_service_stream() -> None:
    subject = dead_letter_subject("reports", "reports-plan-issued")
    for spec in (PLANS, REPORTS, NOTIFY):
        assert not any(subject.startswith(p.removesuffix(">")) for p in spec.subjects)


@pytest.mark.parametrize(
    ("subject", "stream"),
    [
        ("qcdc.v1.unit.registered.T89", PLANS),
        ("qcdc.v1.plan.issued.T89", PLANS),
        ("qcdc.v1.report.submitted.T89.H886.X30337", REPORTS),
        ("qcdc.v1.deadline.missed.T89.H886", REPORTS),
        ("qcdc.v1.notification.delivered.T89", NOTIFY),
    ],
)
def test_stream_for_subject(subject: str, stream: StreamSpec) -> None:
    assert stream_for_subject(subject) is stream


@pytest.mark.parametrize(
    "subject",
    ["qcdc.v2.report.submitted.T89", "qcdc.v1.unknown.thing.T89", "qcdc.v1.reports.x.T89", "x"],
)
def test_stream_for_subject_refuses_a_subject_no_stream_holds(subject: str) -> None:
    with pytest.raises(LookupError, match="no stream"):
        stream_for_subject(subject)
