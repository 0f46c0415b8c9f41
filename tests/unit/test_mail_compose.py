"""The sender writes each e-mail directly (``compose``) instead of through the email
package's objects: the bytes must be those ``build_email`` flattened with MAIL_POLICY gives,
for any subject and body, so that every relay and mailbox sees the same message as before."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message

from hypothesis import given, settings
from hypothesis import strategies as st

from services.notify.adapters import mail
from services.notify.adapters.mail import MAIL_POLICY, Envelope, build_email, compose

NOW = datetime(2026, 6, 9, 9, 30, 15, 123456, tzinfo=UTC)
SUBJECT = "[Xác nhận] Đã nhận báo cáo 6 tháng của Ủy ban nhân dân xã Mường Kim – số BC-2026-000001"
TEXT = "Kính gửi: Ủy ban nhân dân xã Mường Kim,\n\nHệ thống đã nhận báo cáo.\n"


BOUNDARY = "===============0123456789012345678=="


def check(**fields: str) -> Envelope:
    """compose() gives build_email's bytes (with the same Date and boundary), sender and
    recipients."""
    message = build_email(**fields)
    message.replace_header("Date", "Tue, 09 Jun 2026 09:30:15 +0000")
    message.set_boundary(BOUNDARY)
    envelope = compose(**fields, boundary=BOUNDARY, now=NOW)
    assert envelope.data == message.as_bytes(policy=MAIL_POLICY)
    assert envelope == Envelope.of(message)
    return envelope


def test_a_receipt_is_written_as_the_email_package_writes_it() -> None:
    envelope = check(
        key="0f" * 20,
        mail_from="QCDC <khong-tra-loi@qcdc.local>",
        to="vanphong.03637@demo.gov.vn",
        subject=SUBJECT,
        text=TEXT * 20,
        html="<p>" + TEXT * 20 + "</p>",
    )
    assert envelope.sender == "khong-tra-loi@qcdc.local"
    assert envelope.recipients == ["vanphong.03637@demo.gov.vn"]
    assert re.search(rb"^Date: Tue, 09 Jun 2026 09:30:15 \+0000\r$", envelope.data, re.M)


def test_unusual_addresses_and_subjects_too() -> None:
    for mail_from, to, subject in [
        ("Sở Nội vụ tỉnh Lai Châu <snv@laichau.gov.vn>", "a@b.vn", "ASCII subject only"),
        ('"Văn phòng, UBND" <vp@x.vn>', "Người nhận <nguoi.nhan@x.vn>", "Có =?utf-8?q?x?= chữ"),
        ("a@b.vn", "c@d.vn", "x" * 200),
        ("a@b.vn", "c@d.vn", "Rất dài " * 40),
    ]:
        check(key="k", mail_from=mail_from, to=to, subject=subject, text="t", html="h")


@settings(max_examples=300, deadline=None)
@given(
    subject=st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=120),
    text=st.text(st.characters(exclude_categories=["Cs"]), max_size=400),
    html=st.text(st.characters(exclude_categories=["Cs"]), max_size=200),
)
def test_any_subject_and_body(subject: str, text: str, html: str) -> None:
    check(
        key="k",
        mail_from="QCDC <a@qcdc.local>",
        to="b@demo.gov.vn",
        subject=subject,
        text=text,
        html=html,
    )


def parts(data: bytes) -> list[bytes]:
    """The text of each part, as a mail client decodes it."""
    message = message_from_bytes(data)
    assert message.get_boundary() == mail.BOUNDARY and not message.defects
    decoded = []
    for part in message.get_payload():
        assert isinstance(part, Message) and not part.defects
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        decoded.append(payload)
    return decoded


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(st.characters(exclude_categories=["Cs"]), max_size=400),
    html=st.text(st.characters(exclude_categories=["Cs"]), max_size=200),
)
def test_no_body_can_end_its_part_early(text: str, html: str) -> None:
    """The boundary is the same in every message: a body that holds it, as a line of its own
    or anywhere, still comes back whole (quoted-printable never writes two ``=`` in a row)."""
    fence = f"--{mail.BOUNDARY}"
    for body in (text, f"{text}\n{fence}\n{html}", f"{fence}--\r\n{text}"):
        envelope = compose(
            key="k", mail_from="a@qcdc.local", to="b@demo.gov.vn", subject="S", text=body, html=html
        )
        text_part, html_part = parts(envelope.data)
        assert text_part == lines(body) and html_part == lines(html)


def lines(text: str) -> bytes:
    """As set_content stores text, and a reader of the wire decodes it: its lines, each
    ended by CRLF whatever ended it, and an empty text one empty line."""
    return b"\r\n".join(text.encode("utf-8").splitlines()) + b"\r\n"


ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"


@settings(max_examples=200, deadline=None)
@given(
    local=st.lists(st.text(ATEXT, min_size=1, max_size=12), min_size=1, max_size=4),
    domain=st.lists(st.text("abz09-", min_size=1, max_size=20), min_size=1, max_size=4),
)
def test_any_bare_address(local: list[str], domain: list[str]) -> None:
    to = ".".join(local) + "@" + ".".join(domain)
    envelope = check(
        key="k", mail_from="QCDC <a@qcdc.local>", to=to, subject="Xin chào", text="t", html="h"
    )
    assert envelope.recipients == [to]


def test_addresses_the_package_must_parse_are_still_written_as_it_writes_them() -> None:
    for to in [
        "Nguyễn Văn A <a@demo.gov.vn>",
        '"a b"@demo.gov.vn',
        "vanphong." + "x" * 70 + "@demo.gov.vn",
        "a@b.vn, c@d.vn",
        "a@[127.0.0.1]",
    ]:
        check(key="k", mail_from="QCDC <a@qcdc.local>", to=to, subject="S", text="t", html="h")
