"""Sending e-mail over SMTP with aiosmtplib."""

from __future__ import annotations

from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import formatdate, getaddresses, parseaddr

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


class _MailPolicy(EmailPolicy):
    """The SMTP policy, except that a non-ASCII Subject is folded by ``email.header``:
    Python 3.11's own folder drops the space wherever it splits a long Vietnamese subject
    into encoded words ("6 thángcủa"), which officials would see in every inbox."""

    def fold(self, name: str, value: str) -> str:
        if _non_ascii_subject(name, value):
            return self._encoded(name, str(value))
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        if _non_ascii_subject(name, value):
            return self._encoded(name, str(value)).encode("ascii")
        return super().fold_binary(name, value)

    def _encoded(self, name: str, value: str) -> str:
        # No split characters: a space between two encoded words would vanish when decoded.
        words = Header(value, "utf-8", header_name=name).encode(splitchars="", linesep=self.linesep)
        return f"{name}: {words}{self.linesep}"


def _non_ascii_subject(name: str, value: str) -> bool:
    return name.lower() == "subject" and not str(value).isascii()


MAIL_POLICY = _MailPolicy(linesep=SMTP.linesep, max_line_length=SMTP.max_line_length)


def build_email(
    *, key: str, mail_from: str, to: str, subject: str, text: str, html: str
) -> EmailMessage:
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    # The delivery key as Message-ID: a resend after a crash carries the same id, so the
    # receiving system can recognise it.
    message["Message-ID"] = f"<{key}@qcdc>"
    # Quoted-printable: 7-bit safe on any relay, still readable in a saved .eml file.
    message.set_content(text, charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message


class SmtpMailer:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: EmailMessage) -> None:
        # Flattened here, with MAIL_POLICY: aiosmtplib would flatten with its own policy.
        await aiosmtplib.send(
            message.as_bytes(policy=MAIL_POLICY),
            sender=parseaddr(str(message["From"]))[1],
            recipients=[address for _, address in getaddresses(message.get_all("To", []))],
            hostname=self.config.host,
            port=self.config.port,
            start_tls=self.config.starttls,
            use_tls=self.config.use_tls,
            username=self.config.username,
            password=self.config.password,
            timeout=self.config.timeout,
        )
