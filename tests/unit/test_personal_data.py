"""Personal data off the bus: what the outbox filter does to each event, and the sealing of
units' e-mail addresses (only the key's holders open them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.nats_auth import district_event_names, district_event_subjects
from shared.bus.envelope import encode
from shared.events import (
    Channel,
    Contacts,
    NotificationDelivered,
    NotificationFailed,
    ReportSubmitted,
    UnitRegistered,
    UnitUpdated,
)
from shared.personal_data import (
    EMAIL,
    ContactsUnreadable,
    new_key,
    off_the_bus,
    recipient_reference,
    unseal,
)
from tests import builders

KEY = new_key()
AT = datetime(2023, 6, 1, 2, 0, tzinfo=UTC)


def _unit(cls: type[UnitRegistered] = UnitRegistered) -> UnitRegistered:
    return cls(
        unit_path=["T89", "T89-STP"],
        code="T89-STP",
        name="Sở Tư pháp",
        kind="department",
        contacts=Contacts(
            focal_email="lan.nguyen@stp.example.vn",
            head_email="giamdoc@stp.example.vn",
            webhook_url="https://hooks.stp.example.vn/qcdc",
        ),
    )


def _wire(event: object) -> str:
    """What the bus carries: headers and body."""
    _, headers, body = encode(event, source="/qcdc/plans", correlation_id="c")  # type: ignore[arg-type]
    return json.dumps(headers) + body.decode()


@pytest.mark.parametrize("cls", [UnitRegistered, UnitUpdated])
def test_unit_addresses_travel_sealed_and_only_the_key_opens_them(
    cls: type[UnitRegistered],
) -> None:
    event = off_the_bus(KEY)(_unit(cls))
    assert isinstance(event, UnitRegistered)
    assert not EMAIL.search(_wire(event))
    assert event.contacts.focal_email is None and event.contacts.sealed
    assert event.contacts.webhook_url == "https://hooks.stp.example.vn/qcdc"  # a system's
    opened = unseal(event.contacts, KEY)
    assert opened.focal_email == "lan.nguyen@stp.example.vn"
    assert opened.head_email == "giamdoc@stp.example.vn"
    with pytest.raises(ContactsUnreadable):
        unseal(event.contacts, new_key())
    with pytest.raises(ContactsUnreadable):
        unseal(event.contacts, "")


def test_without_a_key_no_address_is_published_at_all() -> None:
    event = off_the_bus("")(_unit())
    assert isinstance(event, UnitRegistered)
    assert event.contacts == Contacts(webhook_url="https://hooks.stp.example.vn/qcdc")


def test_contacts_sent_in_clear_by_an_older_publisher_still_open() -> None:
    plain = Contacts(focal_email="a@b.vn")
    assert unseal(plain, KEY) == plain


def test_the_signer_of_a_report_stays_off_the_bus() -> None:
    ref = builders.obligation_ref(unit_code="T89-STP", receiving_unit="T89-SNV", due_at=AT)
    submitted = builders.report_submitted(
        unit_path=["T89", "T89-STP"],
        obligation=ref,
        submitted_at=AT,
        submitted_by="Nguyễn Thị Lan <lan.nguyen@stp.example.vn>",
    )
    filtered = off_the_bus(KEY)(submitted)
    assert isinstance(filtered, ReportSubmitted) and filtered.submitted_by is None
    assert "Nguyễn" not in _wire(filtered)


def test_notification_events_name_the_unit_reached_and_mask_addresses_in_errors() -> None:
    reference = recipient_reference("email", "T89-STP", None)
    failed = NotificationFailed(
        unit_path=["T89", "T89-STP"],
        delivery_key="k",
        event_id="e",
        event_type="qcdc.report.submitted.v1",
        channel=Channel.EMAIL,
        recipient=reference,
        attempts=5,
        last_error="550 5.1.1 <lan.nguyen@stp.example.vn>: Recipient address rejected",
        failed_at=AT,
    )
    filtered = off_the_bus(KEY)(failed)
    assert isinstance(filtered, NotificationFailed)
    assert filtered.last_error == "550 5.1.1 <<e-mail>>: Recipient address rejected"
    assert not EMAIL.search(_wire(filtered))
    delivered = NotificationDelivered(
        unit_path=["T89"],
        delivery_key="k",
        event_id="e",
        event_type="t",
        channel=Channel.WEBHOOK,
        recipient=recipient_reference("webhook", "T89", "sub-1"),
        attempts=1,
        delivered_at=AT,
    )
    assert (reference, delivered.recipient) == ("email:unit:T89-STP", "webhook:subscription:sub-1")


def test_a_districts_event_names_are_the_reports_services_spelled_out() -> None:
    names = {cls.subject_prefix() for cls in district_event_names()}
    owned = (
        "qcdc.v1.report.",
        "qcdc.v1.deadline.",
        "qcdc.v1.consolidation.",
        "qcdc.v1.recommendation.",
        "qcdc.v1.inspection.",
        "qcdc.v1.conference.",
    )
    assert all(name.startswith(owned) for name in names)  # nothing of plans or notify
    assert names >= {
        "qcdc.v1.report.submitted",
        "qcdc.v1.report.accepted",
        "qcdc.v1.report.returned",
        "qcdc.v1.deadline.approaching",
        "qcdc.v1.deadline.missed",
        "qcdc.v1.consolidation.published",
        "qcdc.v1.conference.recorded",
        "qcdc.v1.conference.minutes_attached",
    }
    subjects = district_event_subjects(("T89", "H801"))
    assert all("*" not in s for s in subjects)
    assert "qcdc.v1.report.submitted.T89.H801" in subjects
    assert "qcdc.v1.report.accepted.T89.H801" not in subjects  # its own is Home Affairs'
    assert "qcdc.v1.report.accepted.T89.H801.>" in subjects
    # Inspections of its communes are a district instance's to publish, named one by one.
    assert "qcdc.v1.inspection.findings_recorded.T89.H801.>" in subjects
    assert "qcdc.v1.inspection.action_closed.T89.H801.>" in subjects
