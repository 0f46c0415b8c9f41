"""The development mail sink keeps each message as a readable .eml file, subject intact."""

from __future__ import annotations

import email
import email.policy
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
