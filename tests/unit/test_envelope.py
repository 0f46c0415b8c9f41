"""The CloudEvents envelope: headers on encode, and every way decode refuses a message."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.bus.envelope import UndeliverableEvent, UnknownEventType, decode, encode
from shared.events import ReportSubmitted, UnitRegistered
from tests import builders

PATH = ["T89", "H886", "X30337"]
AT = datetime(2023, 6, 9, 16, 30, 5, 123456, tzinfo=UTC)


def submitted(unit_path: list[str] | None = None) -> ReportSubmitted:
    return builders.report_submitted(unit_path=unit_path or PATH, submitted_at=AT)


def encoded(
    event: ReportSubmitted | None = None,
) -> tuple[str, dict[str, str], bytes]:
    return encode(
        event or submitted(),
        source="/qcdc/reports",
        correlation_id="corr-42",
        event_id="11111111-2222-3333-4444-555555555555",
        time=AT,
    )


def test_encode_subject_is_prefix_then_unit_path() -> None:
    subject, _, _ = encoded()
    assert subject == "qcdc.v1.report.submitted.T89.H886.X30337"


def test_encode_sets_every_cloudevents_header() -> None:
    _, headers, _ = encoded()
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-id"] == "11111111-2222-3333-4444-555555555555"
    assert headers["ce-source"] == "/qcdc/reports"
    assert headers["ce-type"] == "qcdc.report.submitted.v1"
    assert headers["ce-time"] == "2023-06-09T16:30:05.123456Z"
    assert headers["ce-subject"] == "T89.H886.X30337"
    assert headers["ce-correlationid"] == "corr-42"
    assert headers["content-type"] == "application/json"
    assert headers["Nats-Msg-Id"] == headers["ce-id"]


def test_encode_time_is_rfc3339_utc_with_z_even_from_another_zone() -> None:
    ict = timezone(timedelta(hours=7))
    _, headers, _ = encode(
        submitted(),
        source="/qcdc/reports",
        correlation_id="c",
        time=datetime(2023, 6, 10, tzinfo=ict),
    )
    assert headers["ce-time"] == "2023-06-09T17:00:00Z"


def test_encode_without_id_or_time_makes_a_fresh_uuid_and_the_current_time() -> None:
    before = datetime.now(UTC)
    _, first, _ = encode(submitted(), source="/qcdc/reports", correlation_id="c")
    _, second, _ = encode(submitted(), source="/qcdc/reports", correlation_id="c")
    assert first["ce-id"] != second["ce-id"]
    assert uuid.UUID(first["ce-id"])
    assert first["Nats-Msg-Id"] == first["ce-id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", first["ce-time"])
    stamped = datetime.fromisoformat(first["ce-time"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(UTC) + timedelta(seconds=1)


def test_encode_body_is_the_event_as_json() -> None:
    _, _, body = encoded()
    data = json.loads(body)
    assert data["unit_path"] == PATH
    assert data["receipt_number"] == "BC-2023-000001"
    assert data["obligation"]["unit_code"] == "X30337"


def test_decode_round_trips() -> None:
    subject, headers, body = encoded()
    envelope, event = decode(subject, headers, body)
    assert event == submitted()
    assert isinstance(event, ReportSubmitted)
    assert envelope.id == headers["ce-id"]
    assert envelope.source == "/qcdc/reports"
    assert envelope.type == "qcdc.report.submitted.v1"
    assert envelope.time == AT
    assert envelope.subject == "T89.H886.X30337"
    assert envelope.correlation_id == "corr-42"
    assert envelope.nats_subject == subject


def test_decode_round_trips_vietnamese_text() -> None:
    event = UnitRegistered(
        unit_path=["T89", "H886"], code="H886", name="Huyện Hòa Vang", kind="district"
    )
    subject, headers, body = encode(event, source="/qcdc/plans", correlation_id="c")
    _, decoded = decode(subject, headers, body)
    assert isinstance(decoded, UnitRegistered)
    assert decoded.name == "Huyện Hòa Vang"


def test_decode_without_correlation_id_falls_back_to_the_event_id() -> None:
    subject, headers, body = encoded()
    del headers["ce-correlationid"]
    envelope, _ = decode(subject, headers, body)
    assert envelope.correlation_id == headers["ce-id"]


@pytest.mark.parametrize(
    "missing", [("ce-specversion",), ("ce-id",), ("ce-source",), ("ce-type",), ("ce-id", "ce-type")]
)
def test_decode_names_missing_headers(missing: tuple[str, ...]) -> None:
    subject, headers, body = encoded()
    for name in missing:
        del headers[name]
    with pytest.raises(UndeliverableEvent) as info:
        decode(subject, headers, body)
    assert "missing" in info.value.reason
    for name in missing:
        assert name in info.value.reason
    for name in {"ce-specversion", "ce-id", "ce-source", "ce-type"} - set(missing):
        assert name not in info.value.reason


def test_decode_treats_an_empty_header_as_missing() -> None:
    subject, headers, body = encoded()
    headers["ce-id"] = ""
    with pytest.raises(UndeliverableEvent, match="ce-id"):
        decode(subject, headers, body)


def test_decode_without_any_headers_names_them_all() -> None:
    subject, _, body = encoded()
    with pytest.raises(UndeliverableEvent) as info:
        decode(subject, None, body)
    for name in ("ce-specversion", "ce-id", "ce-source", "ce-type"):
        assert name in info.value.reason


@pytest.mark.parametrize("version", ["0.3", "2.0", "1"])
def test_decode_refuses_another_specversion(version: str) -> None:
    subject, headers, body = encoded()
    headers["ce-specversion"] = version
    with pytest.raises(UndeliverableEvent) as info:
        decode(subject, headers, body)
    assert "specversion" in info.value.reason
    assert version in info.value.reason


@pytest.mark.parametrize(
    "ce_type", ["qcdc.report.submitted.v2", "qcdc.report.exploded.v1", "com.example.thing"]
)
def test_decode_sets_an_unknown_type_apart(ce_type: str) -> None:
    # A type added within v1 by a newer publisher must not be dead-lettered by older
    # consumers: decode says it is unknown, and the consumer skips it.
    subject, headers, body = encoded()
    headers["ce-type"] = ce_type
    with pytest.raises(UnknownEventType) as info:
        decode(subject, headers, body)
    assert str(info.value) == ce_type


@pytest.mark.parametrize("body", [b"", b"{not json", b"\xff\xfe", b"[1, 2"])
def test_decode_refuses_a_body_that_is_not_json(body: bytes) -> None:
    subject, headers, _ = encoded()
    with pytest.raises(UndeliverableEvent) as info:
        decode(subject, headers, body)
    assert "ReportSubmitted" in info.value.reason
    assert "invalid json" in info.value.reason.lower()


def test_decode_refuses_json_that_is_not_an_object() -> None:
    subject, headers, _ = encoded()
    with pytest.raises(UndeliverableEvent, match="not a valid ReportSubmitted"):
        decode(subject, headers, b"[]")


def test_decode_refuses_a_body_missing_a_field_and_names_it() -> None:
    subject, headers, body = encoded()
    data = json.loads(body)
    del data["receipt_number"]
    with pytest.raises(UndeliverableEvent) as info:
        decode(subject, headers, json.dumps(data).encode())
    assert "not a valid ReportSubmitted" in info.value.reason
    assert "receipt_number" in info.value.reason


def test_decode_refuses_a_body_with_a_wrong_nested_field_and_names_its_path() -> None:
    subject, headers, body = encoded()
    data = json.loads(body)
    data["obligation"]["due_at"] = "2023-06-09T16:59:59"  # no zone: not an instant
    with pytest.raises(UndeliverableEvent) as info:
        decode(subject, headers, json.dumps(data).encode())
    assert "obligation.due_at" in info.value.reason


def test_decode_refuses_a_body_of_another_event_type() -> None:
    subject, headers, _ = encoded()
    other = UnitRegistered(unit_path=PATH, code="X30337", name="Xã A", kind="commune")
    with pytest.raises(UndeliverableEvent, match="not a valid ReportSubmitted"):
        decode(subject, headers, other.model_dump_json().encode())


@pytest.mark.parametrize(
    "nats_subject",
    [
        "qcdc.v1.report.submitted.T89.H886.X30338",  # another unit
        "qcdc.v1.report.submitted.T89.H886",  # its parent speaking
        "qcdc.v1.report.submitted.T89.H886.X30337.Z1",  # deeper
        "qcdc.v1.report.accepted.T89.H886.X30337",  # another event's subject
    ],
)
def test_decode_refuses_a_subject_not_matching_the_unit_path(nats_subject: str) -> None:
    _, headers, body = encoded()
    with pytest.raises(UndeliverableEvent) as info:
        decode(nats_subject, headers, body)
    assert "does not match" in info.value.reason
    assert nats_subject in info.value.reason


def test_decode_ignores_unknown_fields_for_forward_compatibility() -> None:
    subject, headers, body = encoded()
    data = json.loads(body)
    data["added_in_v1_7"] = {"anything": [1, 2, 3]}
    data["obligation"]["new_nested_field"] = "x"
    _, event = decode(subject, headers, json.dumps(data).encode())
    assert event == submitted()
    assert "added_in_v1_7" not in event.model_dump()


def test_undeliverable_event_carries_its_reason() -> None:
    error = UndeliverableEvent("because")
    assert error.reason == "because"
    assert str(error) == "because"
