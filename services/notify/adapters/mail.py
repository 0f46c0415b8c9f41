"""Sending e-mail over SMTP with aiosmtplib, on a few persistent sessions to the relay."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import quoprimime
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, formatdate, getaddresses, parseaddr
from functools import lru_cache

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
    connections: int = 8
    """Sessions kept open to the relay, and so messages in flight to it at once."""
    idle_seconds: float = 60.0
    """A session unused this long is closed rather than reused (relays drop idle clients)."""


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
        return _encoded_words(name, value, self.linesep)


def _encoded_words(name: str, value: str, linesep: str) -> str:
    # No split characters: a space between two encoded words would vanish when decoded.
    words = Header(value, "utf-8", header_name=name).encode(splitchars="", linesep=linesep)
    return f"{name}: {words}{linesep}"


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


BOUNDARY = f"{'=' * 15}qcdc-alternative=="
"""The parts' boundary, the same in every message (the email package draws one at random and
checks the parts for it). Both parts are quoted-printable, where ``=`` is always followed
by two hex digits or a line break (RFC 2045, 6.7), so ``==`` never occurs in them and no
part can collide with it; and a receiver that compiles a pattern per boundary (Python's
parser, as in the mail sink: a tenth of its CPU per message) compiles this one once."""


def compose(
    *,
    key: str,
    mail_from: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    boundary: str | None = None,
    now: datetime | None = None,
) -> Envelope:
    """What ``build_email(...)`` flattened with MAIL_POLICY gives, byte for byte, written
    directly: the email package's header objects cost a few milliseconds per message, the
    sender's largest cost. The addresses' headers, the same for message after message, are
    folded once; ``boundary`` and ``now`` are for tests that compare the two."""
    boundary = boundary or BOUNDARY
    from_line, senders = _address_header("From", mail_from)
    to_line, recipients = _address_header("To", to)
    stamp = format_datetime((now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0))
    nl = SMTP.linesep
    head = (
        f"Date: {stamp}{nl}Message-ID: <{key}@qcdc>{nl}MIME-Version: 1.0{nl}"
        f'Content-Type: multipart/alternative;{nl} boundary="{boundary}"{nl}{nl}'
        f"--{boundary}{nl}"
        f'Content-Type: text/plain; charset="utf-8"{nl}'
        f"Content-Transfer-Encoding: quoted-printable{nl}{nl}"
    )
    middle = (
        f"{nl}--{boundary}{nl}"
        f'Content-Type: text/html; charset="utf-8"{nl}'
        f"Content-Transfer-Encoding: quoted-printable{nl}MIME-Version: 1.0{nl}{nl}"
    )
    data = b"".join(
        (
            from_line,
            to_line,
            _subject_header(subject),
            head.encode("ascii"),
            _quoted_printable(text),
            middle.encode("ascii"),
            _quoted_printable(html),
            f"{nl}--{boundary}--{nl}".encode("ascii"),
        )
    )
    return Envelope(sender=senders[0] if senders else "", recipients=list(recipients), data=data)


_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*"
)


def _address_header(name: str, value: str) -> tuple[bytes, tuple[str, ...]]:
    """The folded header and its addresses, as the email package writes and reads them.
    A bare ASCII address that fits on a line is written as it is (as the package does),
    without parsing."""
    if len(name) + len(value) + 2 <= 78 and _PLAIN_ADDRESS.fullmatch(value):
        return f"{name}: {value}{SMTP.linesep}".encode("ascii"), (value,)
    return _parsed_address_header(name, value)


@lru_cache(maxsize=1024)
def _parsed_address_header(name: str, value: str) -> tuple[bytes, tuple[str, ...]]:
    header = MAIL_POLICY.header_store_parse(name, value)[1]
    addresses = tuple(address for _, address in getaddresses([str(header)]))
    return MAIL_POLICY.fold_binary(name, header), addresses


def _subject_header(subject: str) -> bytes:
    if not subject.isascii() and "=?" not in subject and "\n" not in subject:
        # What MAIL_POLICY writes for it, without parsing it into a header object first.
        return _encoded_words("Subject", subject, SMTP.linesep).encode("ascii")
    header = MAIL_POLICY.header_store_parse("Subject", subject)[1]
    return MAIL_POLICY.fold_binary("Subject", header)


def _quoted_printable(text: str) -> bytes:
    """As ``set_content(text, charset="utf-8", cte="quoted-printable")`` encodes it."""
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    encoded = quoprimime.body_encode(body.decode("latin-1"), MAIL_POLICY.max_line_length or 78)
    return encoded.replace("\n", SMTP.linesep).encode("ascii")


@dataclass(frozen=True)
class Envelope:
    """What goes over the wire for one message."""

    sender: str
    recipients: list[str]
    data: bytes

    @classmethod
    def of(cls, message: EmailMessage) -> Envelope:
        return cls(
            sender=parseaddr(str(message["From"]))[1],
            recipients=[address for _, address in getaddresses(message.get_all("To", []))],
            # Flattened here, with MAIL_POLICY: aiosmtplib would flatten with its own policy.
            data=message.as_bytes(policy=MAIL_POLICY),
        )


SESSION_LIFETIME = 300.0
"""Seconds a session is reused at most, as Postfix's ``smtp_connection_reuse_time_limit``:
sessions are renewed now and then (and a changed relay address is picked up)."""


@dataclass
class Session:
    """One SMTP connection of the pool."""

    smtp: aiosmtplib.SMTP
    opened_at: float = field(default_factory=time.monotonic)
    idle_since: float = field(default_factory=time.monotonic)
    reused: bool = False

    def usable(self, idle_seconds: float) -> bool:
        now = time.monotonic()
        return (
            self.smtp.is_connected
            and now - self.idle_since < idle_seconds
            and now - self.opened_at < SESSION_LIFETIME
        )

    def close(self) -> None:
        self.smtp.close()


class RelayBusy(Exception):
    """No session to the relay came free in time; the message was not sent."""


SERVICE_CLOSING = 421
"""The server's answer when it is about to drop the connection (RFC 5321, 3.8)."""


class SmtpMailer:
    """Sends over a small pool of persistent sessions to the one configured relay.

    Opening an SMTP session costs a TCP connection, a greeting, EHLO and perhaps STARTTLS
    and AUTH: more than sending a receipt. Sessions are therefore opened lazily, up to
    ``config.connections``, and reused for message after message; at most that many
    messages are in flight at once, each on its own session (SMTP is one transaction at a
    time per connection).

    - A message the server refuses (4xx/5xx to MAIL, RCPT or DATA) fails alone: the session
      is reset (RSET) and goes on serving the next message.
    - A session the server has closed (it dropped an idle client, or answered 421), or
      that it refuses to take more on (a 4xx answer to MAIL FROM on a reused session), is
      noticed when MAIL FROM fails, before any of the message was sent, so the message is
      sent at once on a new session: that cannot deliver it twice. A failure after MAIL FROM
      closes the session and fails the attempt, which the delivery worker retries.
    - Sessions idle longer than ``config.idle_seconds``, or older than
      :data:`SESSION_LIFETIME`, are closed instead of reused; :meth:`aclose` says QUIT on
      shutdown.
    """

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._slots = asyncio.Semaphore(max(1, config.connections))
        self._idle: list[Session] = []  # most recently used last: reused first
        self._closed = False
        self.opened = 0
        """Sessions opened so far (for tests and logs)."""

    async def send(self, message: EmailMessage | Envelope, *, wait: float | None = None) -> None:
        """Send over a free session; with ``wait``, give up (:class:`RelayBusy`, nothing
        sent) when none came free within that many seconds."""
        envelope = message if isinstance(message, Envelope) else Envelope.of(message)
        try:
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        except TimeoutError:
            raise RelayBusy(f"no session to the SMTP relay came free in {wait:.1f} s") from None
        try:
            await self._send(envelope)
        finally:
            self._slots.release()

    async def _send(self, envelope: Envelope) -> None:
        session = self._take_idle() or await self._open()
        try:
            session = await self._mail_from(session, envelope)
            await _recipients_and_data(session.smtp, envelope)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused) as exc:
            await self._after_refusal(session, exc)
            raise
        except BaseException:  # broken, timed out or cancelled mid-transaction
            session.close()
            raise
        self._put_idle(session)

    async def aclose(self) -> None:
        """QUIT every idle session; sessions still sending close when their send ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for session in idle:
            with contextlib.suppress(Exception):
                await session.smtp.quit()
            session.close()

    def _take_idle(self) -> Session | None:
        while self._idle:
            session = self._idle.pop()
            if session.usable(self.config.idle_seconds):
                session.reused = True
                return session
            session.close()
        return None

    def _put_idle(self, session: Session) -> None:
        if self._closed or not session.smtp.is_connected:
            session.close()
            return
        session.idle_since = time.monotonic()
        self._idle.append(session)

    async def _open(self) -> Session:
        config = self.config
        smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.use_tls,
            start_tls=config.starttls,
            username=config.username,
            password=config.password,
            timeout=config.timeout,
        )
        await smtp.connect()
        self.opened += 1
        try:
            if smtp.last_ehlo_response is None:  # for SIZE; MAIL would greet, too late
                await smtp.ehlo()
        except aiosmtplib.SMTPHeloError:
            await smtp.helo()
        except BaseException:
            smtp.close()
            raise
        return Session(smtp)

    async def _mail_from(self, session: Session, envelope: Envelope) -> Session:
        """MAIL FROM; on a new session when a reused one turns out closed by the server, or
        refuses for now (4xx: some relays limit the messages per connection so)."""
        try:
            await _mail(session.smtp, envelope)
            return session
        except Exception as exc:
            if not (session.reused and (_session_gone(exc) or _transient(exc))):
                raise
        session.close()  # nothing of the message was sent: a new session cannot repeat it
        fresh = await self._open()
        try:
            await _mail(fresh.smtp, envelope)
        except BaseException:
            fresh.close()
            raise
        return fresh

    async def _after_refusal(self, session: Session, exc: Exception) -> None:
        """Keep a session that refused one message, once it is reset; close it otherwise."""
        if _session_gone(exc) or not session.smtp.is_connected:
            session.close()
            return
        try:
            await session.smtp.rset()
        except Exception:
            session.close()
            return
        self._put_idle(session)


async def _mail(smtp: aiosmtplib.SMTP, envelope: Envelope) -> None:
    # RFC 1870: announce the size, so that a relay can refuse a message too big up front.
    options = [f"SIZE={len(envelope.data)}"] if smtp.supports_extension("size") else []
    await smtp.mail(envelope.sender, options=options)


async def _recipients_and_data(smtp: aiosmtplib.SMTP, envelope: Envelope) -> None:
    """RCPT TO each recipient, then DATA; as ``sendmail``, refused only if all are."""
    refused: list[aiosmtplib.SMTPRecipientRefused] = []
    for recipient in envelope.recipients:
        try:
            await smtp.rcpt(recipient)
        except aiosmtplib.SMTPRecipientRefused as exc:
            refused.append(exc)
    if len(refused) == len(envelope.recipients):
        raise aiosmtplib.SMTPRecipientsRefused(refused)
    await smtp.data(envelope.data)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, aiosmtplib.SMTPResponseException) and 400 <= exc.code < 500


def _session_gone(exc: BaseException) -> bool:
    """The connection is closed or closing: a disconnect, a timeout, or a 421 answer."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return any(r.code == SERVICE_CLOSING for r in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == SERVICE_CLOSING
