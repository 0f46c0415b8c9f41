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
import email.policy
import os
import re
import signal
import tempfile
from datetime import UTC, datetime
from email.errors import MessageError
from email.generator import BytesGenerator
from email.header import decode_header, make_header
from email.headerregistry import HeaderRegistry, UnstructuredHeader
from email.message import Message
from email.parser import BytesParser
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

import uvloop
from aiosmtpd.smtp import SMTP

from shared.files import keep_private, private_dir

# Python's compat32 email model: it parses and writes a message as it is, several times
# faster than the default policy's header objects, which the sink does not need.
RAW = email.policy.compat32.clone(linesep="\n")
_PARSER = BytesParser(policy=RAW)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_LINE = 998
"""RFC 5322's hard limit on a line; a decoded header longer than that stays encoded."""
NL = "\n"


class MailFolder:
    """aiosmtpd handler: each accepted message becomes one file in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = private_dir(directory)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        # Made readable in the event loop (CPU, which a thread would not run any sooner under
        # the GIL), written in a thread: creating a file can wait on the file system's
        # journal while databases sync, and every other session would wait with it.
        data, stem = self.readable(bytes(envelope.content), envelope.mail_from, envelope.rcpt_tos)
        await asyncio.to_thread(self._write, data, stem)
        return "250 Message accepted for delivery"

    def store(self, content: bytes, mail_from: str, rcpt_tos: list[str]) -> Path:
        return self._write(*self.readable(content, mail_from, rcpt_tos))

    def readable(self, content: bytes, mail_from: str, rcpt_tos: list[str]) -> tuple[bytes, str]:
        """The file's bytes and name stem."""
        message = _parse(content, mail_from, list(rcpt_tos))
        try:
            data = _readable_bytes(message)
        except (LookupError, ValueError, UnicodeError, MessageError):
            data = _flat(_parse(content, mail_from, list(rcpt_tos)), decode_headers=False)
        return data, _stem(message)

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


def _stem(message: Message) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    message_id = _UNSAFE.sub("_", str(message.get("Message-ID", "")).strip("<> ")).strip("_")
    return f"{stamp}-{message_id[:80] or 'no-message-id'}"


def _parse(content: bytes, mail_from: str, rcpt_tos: list[str]) -> Message:
    message = _PARSER.parsebytes(content)
    # Bcc recipients appear only in the envelope: keep it with the message.
    message["X-Envelope-From"] = mail_from
    message["X-Envelope-To"] = ", ".join(rcpt_tos)
    return message


def _readable_bytes(message: Message) -> bytes:
    """The message with text parts in 8-bit UTF-8 (the caller keeps it as received if
    that cannot be done)."""
    for part in message.walk():
        if part.get_content_maintype() == "text" and not _is_attachment(part):
            _decode_text(part)
    return _flat(message, decode_headers=True)


def _flat(message: Message, *, decode_headers: bool) -> bytes:
    out = BytesIO()
    generator = _ReadableGenerator(out, mangle_from_=False, policy=RAW)
    generator.decode_headers = decode_headers
    generator.flatten(message)
    return out.getvalue()


def _is_attachment(part: Message) -> bool:
    return str(part.get("Content-Disposition", "")).split(";")[0].strip().lower() == "attachment"


def _decode_text(part: Message) -> None:
    """Replace the part's transfer encoding (quoted-printable, base64) by its text in 8-bit
    UTF-8. Its content headers become just these two, as ``set_content`` would write them."""
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return
    text = raw.decode(part.get_content_charset() or "us-ascii")
    subtype = part.get_content_subtype()
    for name in {n for n in part if n.lower().startswith("content-")}:
        del part[name]
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "8bit"
    # As compat32 keeps 8-bit payloads: bytes smuggled in a str, written back as bytes.
    part.set_payload(text.encode("utf-8").decode("ascii", "surrogateescape"))


class _ReadableGenerator(BytesGenerator):
    """Writes headers as received, but free text (Subject, …) with RFC 2047 encoded words
    decoded, in UTF-8 on one line. Addresses stay as sent: Python's parser cannot read raw
    UTF-8 in an address header."""

    decode_headers = True

    def _write_headers(self, msg: Message) -> None:
        for name, value in msg.raw_items():
            line = None
            if self.decode_headers and "=?" in value and _free_text(name):
                line = _decoded(name, value)
            # As received, with the line breaks of this file.
            self.write(line or f"{name}: {NL.join(str(value).splitlines())}")
            self.write(NL)
        self.write(NL)


def _decoded(name: str, value: str) -> str | None:
    """``Name: text`` on one line in UTF-8 (for :meth:`BytesGenerator.write`, which writes
    the surrogates back as the bytes they stand for); None if too long for one line."""
    decoded = " ".join(str(make_header(decode_header(value))).splitlines())
    line = (f"{name}: {decoded}" if decoded else f"{name}:").encode()
    return line.decode("ascii", "surrogateescape") if len(line) <= MAX_LINE else None


@cache
def _free_text(name: str) -> bool:
    """Whether the default policy reads the header as unstructured text."""
    factory = email.policy.default.header_factory
    assert isinstance(factory, HeaderRegistry)
    kind = factory.registry.get(name.lower(), factory.default_class)
    return issubclass(kind, UnstructuredHeader)


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
    keep_private()  # the mail holds what the officials were sent
    with contextlib.suppress(KeyboardInterrupt):
        # uvloop, as the services have under uvicorn: 1.31 ms of CPU per mail against 1.75
        # on asyncio's own loop (2,000 mails over 4 sessions, twice; 2026-11-29).
        uvloop.run(serve(args.host, args.port, args.dir.resolve()))


if __name__ == "__main__":
    main()
