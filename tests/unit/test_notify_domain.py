"""Notifications: delivery keys, retry delays, the Vietnamese receipt e-mail."""

from __future__ import annotations

import email
import email.policy
import itertools
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

import pytest

from services.notify.adapters.mail import build_email
from services.notify.adapters.templates import render
from services.notify.domain.model import REPORT_KIND_LABELS, delivery_key, retry_delay
from shared.events import Channel, ReportKind
from shared.vntime import format_date, format_instant, last_instant_before
from tests import builders

EVENT_ID = "11111111-2222-3333-4444-555555555555"


# --- delivery keys and retries ------------------------------------------------------------


def test_delivery_key_is_deterministic() -> None:
    first = delivery_key(EVENT_ID, "dau-moi@x.vn", Channel.EMAIL)
    assert first == delivery_key(EVENT_ID, "dau-moi@x.vn", Channel.EMAIL)
    assert len(first) == 40
    assert int(first, 16) >= 0  # hex: safe inside a Message-ID


def test_delivery_key_differs_per_event_recipient_and_channel() -> None:
    keys = {
        delivery_key(EVENT_ID, "dau-moi@x.vn", Channel.EMAIL),
        delivery_key(EVENT_ID, "lanh-dao@x.vn", Channel.EMAIL),
        delivery_key(EVENT_ID, "dau-moi@x.vn", Channel.WEBHOOK),
        delivery_key("another-event", "dau-moi@x.vn", Channel.EMAIL),
    }
    assert len(keys) == 4


def test_delivery_key_ignores_the_case_of_an_email_address() -> None:
    assert delivery_key(EVENT_ID, "Dau-Moi@X.VN", Channel.EMAIL) == delivery_key(
        EVENT_ID, "dau-moi@x.vn", Channel.EMAIL
    )


def test_retry_delay_grows_then_is_capped() -> None:
    delays = [retry_delay(n) for n in range(1, 30)]
    assert delays[0] > timedelta(0)
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert delays[1] > delays[0]
    assert delays[2] > delays[1]
    assert max(delays) == timedelta(minutes=10)
    assert retry_delay(1000) == timedelta(minutes=10)


def test_retry_delay_doubles_from_two_seconds() -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3)] == [2, 4, 8]


# --- the receipt e-mail ----------------------------------------------------------------------


def receipt_context(unit_name: str = "UBND xã Hòa Bắc", on_time: bool = True) -> dict[str, object]:
    due_at = last_instant_before(date(2023, 6, 10))
    return {
        "unit_name": unit_name,
        "kind_label": REPORT_KIND_LABELS[ReportKind.SIX_MONTH],
        "plan_doc_number": "123/KH-UBND",
        "plan_title": "Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2023",
        "period_start": format_date(date(2022, 12, 15)),
        "period_end": format_date(date(2023, 6, 14)),
        "due_before": format_date(due_at + timedelta(microseconds=1)),
        "submitted_at": format_instant(datetime(2023, 6, 9, 18, 30, tzinfo=UTC)),
        "receipt_number": "BC-2023-000123",
        "version": 1,
        "on_time": on_time,
        "link": "https://qcdc.example.vn/reports/r-1",
    }


def test_receipt_subject_is_vietnamese_on_one_line() -> None:
    subject, _, _ = render("report_submitted", receipt_context())
    assert "Đã nhận" in subject
    assert "báo cáo 6 tháng" in subject
    assert "UBND xã Hòa Bắc" in subject
    assert "BC-2023-000123" in subject
    assert "\n" not in subject
    assert subject == subject.strip()


def test_receipt_text_lists_the_report_in_vietnamese_with_dd_mm_yyyy_dates() -> None:
    _, text, _ = render("report_submitted", receipt_context())
    assert "Kính gửi: UBND xã Hòa Bắc" in text
    assert "Số tiếp nhận: BC-2023-000123" in text
    assert "123/KH-UBND" in text
    assert "từ ngày 15/12/2022 đến ngày 14/06/2023" in text
    assert "trước ngày 10/06/2023" in text
    assert "01:30 10/06/2023" in text  # 18:30 UTC on the 9th is 01:30 ICT on the 10th
    assert "Đúng hạn" in text
    assert "Quá hạn" not in text
    assert "https://qcdc.example.vn/reports/r-1" in text


def test_receipt_says_late_when_late() -> None:
    _, text, html = render("report_submitted", receipt_context(on_time=False))
    assert "Quá hạn" in text
    assert "Đúng hạn" not in text
    assert "Quá hạn" in html


def test_receipt_html_is_vietnamese_utf8() -> None:
    subject, _, html = render("report_submitted", receipt_context())
    assert 'lang="vi"' in html
    assert 'charset="utf-8"' in html.lower()
    assert "Số tiếp nhận" in html
    assert "BC-2023-000123" in html
    assert "trước ngày 10/06/2023" in html
    assert f"<title>{subject}</title>" in html


def test_receipt_html_escapes_a_unit_name() -> None:
    name = '<script>alert("x")</script> & Co'
    subject, text, html = render("report_submitted", receipt_context(unit_name=name))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&amp; Co" in html
    # Plain text and subject are not HTML: they keep the name as written.
    assert name in text
    assert name in subject


def test_rendering_refuses_a_missing_value() -> None:
    context = receipt_context()
    del context["receipt_number"]
    with pytest.raises(Exception, match="receipt_number"):
        render("report_submitted", context)


def parse(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_build_email_uses_the_delivery_key_as_message_id_and_utf8_parts() -> None:
    key = delivery_key(EVENT_ID, "dau-moi@x.vn", Channel.EMAIL)
    subject, text, html = render("report_submitted", receipt_context())
    message = build_email(
        key=key,
        mail_from="qcdc@snv.example.vn",
        to="dau-moi@x.vn",
        subject=subject,
        text=text,
        html=html,
    )
    assert message["Message-ID"] == f"<{key}@qcdc>"
    assert message["From"] == "qcdc@snv.example.vn"
    assert message["To"] == "dau-moi@x.vn"
    assert message["Date"]

    received = parse(message)
    assert received["Subject"] == subject  # the Vietnamese subject survives the wire
    assert received["Message-ID"] == f"<{key}@qcdc>"
    assert received.get_content_type() == "multipart/alternative"
    plain = received.get_body(("plain",))
    rich = received.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content_charset() == "utf-8"
    assert rich.get_content_charset() == "utf-8"
    assert "Số tiếp nhận: BC-2023-000123" in plain.get_content()
    assert "Số tiếp nhận" in rich.get_content()


def test_receipt_message_from_a_report_submitted_event() -> None:
    from services.notify.adapters.templates import Facts, event_context
    from services.notify.domain.model import Contact
    from services.notify.domain.rules import Recipient
    from services.notify.handlers.events import Links
    from services.notify.handlers.messages import email_message
    from shared.bus.envelope import decode, encode

    event = builders.report_submitted(
        receipt_number="BC-2023-000123",
        version=2,
        obligation=builders.obligation_ref(plan_doc_number="123/KH-UBND"),
        submitted_at=datetime(2023, 6, 9, 16, 59, 59, tzinfo=UTC),
    )
    envelope, _ = decode(
        *encode(event, source="/qcdc/reports", correlation_id="c", event_id=EVENT_ID)
    )
    contact = Contact(
        unit_code="X30337",
        name="UBND xã Hòa Bắc",
        unit_path=["T89", "H886", "X30337"],
        focal_email="Dau-Moi@HoaBac.vn",
        head_email=None,
    )
    # The receipt as the default rule addresses it: the submitting unit's focal person.
    facts = Facts(
        envelope=envelope, links=Links("https://qcdc.example.vn/"), names={"X30337": contact.name}
    )
    recipient = Recipient("Dau-Moi@HoaBac.vn", contact, "report_submitted", "unit", "focal")
    message = email_message(event, envelope, recipient, event_context(event, facts))
    assert message.recipient == "Dau-Moi@HoaBac.vn"
    assert message.channel is Channel.EMAIL
    assert message.event_id == EVENT_ID
    assert message.key == delivery_key(EVENT_ID, "dau-moi@hoabac.vn", Channel.EMAIL)
    assert "trước ngày 10/06/2023" in message.text  # due_at is 09/06 23:59:59.999999 ICT
    assert "23:59 09/06/2023" in message.text
    assert "lần nộp thứ 2" in message.text
    assert "https://qcdc.example.vn/reports/r-1" in message.text
