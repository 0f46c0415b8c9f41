"""Sending e-mail over SMTP with aiosmtplib."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    mail_from: str
    starttls: bool = False
    use_tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0


def build_email(
    *, key: str, mail_from: str, to: str, subject: str, text: str, html: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    # The delivery key as Message-ID: a resend after a crash carries the same id, so the
    # receiving system can recognise it.
    message["Message-ID"] = f"<{key}@qcdc>"
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message


class SmtpMailer:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.config.host,
            port=self.config.port,
            start_tls=self.config.starttls,
            use_tls=self.config.use_tls,
            username=self.config.username,
            password=self.config.password,
            timeout=self.config.timeout,
        )
