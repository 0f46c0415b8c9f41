"""The development mail sink keeps each message as a readable .eml file, subject intact."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from services.mailsink import MailFolder
from services.notify.adapters.mail import MAIL_POLICY, build_email

SUBJECT = "[Xác nhận] Đã nhận báo cáo 6 tháng của Ủy ban nhân dân xã Mường Kim – số BC-2026-000001"


def test_a_long_vietnamese_subject_is_stored_readable_and_exact(tmp_path: Path) -> None:
    message = build_email(
        key="k1",
        mail_from="QCDC <khong-tra-loi@qcdc.local>",
        to="vanphong@muongkim.gov.vn",
        subject=SUBJECT,
        text="Kính gửi: Ủy ban nhân dân xã Mường Kim,",
        html="<p>Kính gửi: Ủy ban nhân dân xã Mường Kim,</p>",
    )
    path = MailFolder(tmp_path).store(
        message.as_bytes(policy=MAIL_POLICY), "khong-tra-loi@qcdc.local", ["bcc@x.gov.vn"]
    )
    raw = path.read_bytes()
    assert f"Subject: {SUBJECT}".encode() in raw  # one line, UTF-8, no encoded words
    stored = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(stored["Subject"]) == SUBJECT
    assert stored["X-Envelope-To"] == "bcc@x.gov.vn"
    body = stored.get_body(("plain",))
    assert body is not None
    assert "Mường Kim" in body.get_content()  # type: ignore[attr-defined]


def test_base64_text_is_stored_as_utf8_and_an_attachment_as_sent(tmp_path: Path) -> None:
    message = EmailMessage()
    message["From"] = "a@demo.gov.vn"
    message["To"] = "b@demo.gov.vn"
    message["Subject"] = "Tệp đính kèm"
    message["Message-ID"] = "<k2@qcdc>"
    message.set_content("Nội dung báo cáo\n", charset="utf-8", cte="base64")
    attachment = bytes(range(256)) * 4
    message.add_attachment(attachment, "application", "octet-stream", filename="bao-cao.bin")
    path = MailFolder(tmp_path).store(message.as_bytes(), "a@demo.gov.vn", ["b@demo.gov.vn"])
    raw = path.read_bytes()
    assert "Nội dung báo cáo".encode() in raw  # readable with cat, not base64
    assert b"Subject: T\xe1\xbb\x87p \xc4\x91\xc3\xadnh k\xc3\xa8m\n" in raw
    assert path.name.endswith("-k2_qcdc.eml")
    stored = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(stored, EmailMessage)
    [text, binary] = list(stored.iter_parts())
    assert text["Content-Transfer-Encoding"] == "8bit"
    assert text.get_content() == "Nội dung báo cáo\n"  # type: ignore[attr-defined]
    assert binary.get_content() == attachment  # type: ignore[attr-defined]


def test_text_in_an_unknown_charset_is_kept_as_received(tmp_path: Path) -> None:
    sent = (
        b"From: a@demo.gov.vn\r\nTo: b@demo.gov.vn\r\nSubject: =?utf-8?q?Th=E1=BB=AD?=\r\n"
        b"Content-Type: text/plain; charset=no-such-charset\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nabc=C3=A1\r\n"
    )
    raw = MailFolder(tmp_path).store(sent, "a@demo.gov.vn", ["b@demo.gov.vn"]).read_bytes()
    assert b"abc=C3=A1" in raw
    assert b"Subject: =?utf-8?q?Th=E1=BB=AD?=" in raw
    assert b"X-Envelope-To: b@demo.gov.vn" in raw
