"""A local SMTP server that keeps every message as an ``.eml`` file in a folder.

It stands in for a real mail server when the system runs on one machine (``qcdc up``): the
notify service sends its Vietnamese e-mails here and a person reads them from disk. Run it
alone with ``python -m services.mailsink --port 8025 --dir var/mail``.

Files are named ``<UTC timestamp>-<Message-ID>.eml`` and never overwrite one another. Text
parts are stored decoded (8-bit UTF-8, headers in UTF-8) rather than in the base64 the sender
may have used, so that ``cat`` or any editor shows the Vietnamese text; mail clients and
Python's ``email`` package read the files as they are.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import os
import re
import signal
import tempfile
from datetime import UTC, datetime
from email.headerregistry import UnstructuredHeader
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

# Headers unfolded up to RFC 5322's hard limit: Python folds a long UTF-8 subject right
# after "Subject:", which readers then show with a leading space.
READABLE = email.policy.default.clone(utf8=True, max_line_length=998)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class MailFolder:
    """aiosmtpd handler: each accepted message becomes one file in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        await asyncio.to_thread(
            self.store, bytes(envelope.content), envelope.mail_from, list(envelope.rcpt_tos)
        )
        return "250 Message accepted for delivery"

    def store(self, content: bytes, mail_from: str, rcpt_tos: list[str]) -> Path:
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        # Bcc recipients appear only in the envelope: keep it with the message.
        message["X-Envelope-From"] = mail_from
        message["X-Envelope-To"] = ", ".join(rcpt_tos)
        return self._write(_readable_bytes(message), _stem(message))

    def _write(self, data: bytes, stem: str) -> Path:
        """Write to a temporary file, then hard-link it under its final name: a reader never
        sees half a message, and an existing file is never replaced (link fails instead)."""
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            for attempt in range(1000):
                target = self.directory / f"{stem}{f'-{attempt}' if attempt else ''}.eml"
                try:
                    os.link(temporary, target)
                except FileExistsError:
                    continue
                return target
            raise FileExistsError(f"no free file name for {stem} in {self.directory}")
        finally:
            os.unlink(temporary)


def _stem(message: EmailMessage) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    message_id = _UNSAFE.sub("_", str(message.get("Message-ID", "")).strip("<> ")).strip("_")
    return f"{stamp}-{message_id[:80] or 'no-message-id'}"


def _readable_bytes(message: EmailMessage) -> bytes:
    """The message with text parts in 8-bit UTF-8; as received if that cannot be done."""
    try:
        for name, raw in message.raw_items():
            # Subject and other free text: store RFC 2047 encoded words decoded. Addresses
            # stay as sent: Python's parser cannot read raw UTF-8 in an address header.
            if "=?" in raw and isinstance(message[name], UnstructuredHeader):
                message.replace_header(name, str(message[name]))
        for part in message.walk():
            if part.get_content_maintype() == "text" and not part.is_attachment():
                text = part.get_content()
                # MIMEPart's method, not EmailMessage's, which would add MIME-Version to parts
                MIMEPart.set_content(
                    part, text, subtype=part.get_content_subtype(), charset="utf-8", cte="8bit"
                )
        return message.as_bytes(policy=READABLE)
    except (LookupError, ValueError, UnicodeError):
        return message.as_bytes(policy=email.policy.default)


async def serve(host: str, port: int, directory: Path) -> None:
    """Accept mail until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    handler = MailFolder(directory)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="qcdc-mailsink", enable_SMTPUTF8=True), host, port
    )
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    async with server:
        print(f"mail sink on smtp://{host}:{port}, writing to {directory}", flush=True)
        await stopping.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SMTP server that stores mail as .eml files.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path("var/mail"), help="Where .eml files go.")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.dir.resolve()))


if __name__ == "__main__":
    main()
