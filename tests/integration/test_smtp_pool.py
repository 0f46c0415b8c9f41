"""The SMTP pool against a real SMTP server (aiosmtpd, in the test's event loop): sessions
are reused, at most ``connections`` of them; a session the server closes is replaced without
losing or repeating the message; a refused message fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.notify.adapters.mail import RelayBusy, SmtpConfig, SmtpMailer, build_email

REFUSED = "refused@demo.gov.vn"
LATER = "Later please"


@dataclass
class Server:
    """Counts connections, keeps the Message-IDs accepted; optionally accepts only
    ``per_connection`` messages on one connection, answering 421 and closing after that."""

    per_connection: int | None = None
    beyond: str = "421 4.7.0 Too many messages on this connection, closing"
    """The answer to MAIL FROM beyond ``per_connection``; a 421 also closes."""
    drop_after_data: bool = False
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    quits: int = 0
    accepted: list[str] = field(default_factory=list)
    port: int = 0
    hold: asyncio.Event | None = None
    """When set up, DATA waits for it (after setting ``holding``)."""
    holding: asyncio.Event = field(default_factory=asyncio.Event)

    def protocol(self) -> SMTP:
        server = self

        class Counting(SMTP):
            def connection_made(self, transport: Any) -> None:
                server.connections += 1
                server.open_now += 1
                server.most_open = max(server.most_open, server.open_now)
                self.transactions = 0
                super().connection_made(transport)

            def connection_lost(self, exc: Exception | None) -> None:
                server.open_now -= 1
                super().connection_lost(exc)

        return Counting(self, hostname="pool-test")

    async def handle_MAIL(
        self, smtp: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        smtp.transactions += 1
        if self.per_connection is not None and smtp.transactions > self.per_connection:
            if self.beyond.startswith("421"):
                asyncio.get_running_loop().call_soon(smtp.transport.close)
            return self.beyond
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, smtp: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        if LATER.encode() in content:
            return "451 4.3.0 Try again later"
        if self.hold is not None:
            self.holding.set()
            await self.hold.wait()
        message_id = next(
            line.split(b":", 1)[1].strip().decode()
            for line in content.splitlines()
            if line.lower().startswith(b"message-id:")
        )
        self.accepted.append(message_id)
        if self.drop_after_data:
            asyncio.get_running_loop().call_soon(smtp.transport.close)
        return "250 Message accepted"

    async def handle_QUIT(self, smtp: Any, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 Bye"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    listening = await asyncio.get_running_loop().create_server(state.protocol, "127.0.0.1", 0)
    state.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield state


def mailer(server: Server, connections: int = 4, idle_seconds: float = 60.0) -> SmtpMailer:
    return SmtpMailer(
        SmtpConfig(
            host="127.0.0.1",
            port=server.port,
            mail_from="khong-tra-loi@qcdc.local",
            connections=connections,
            idle_seconds=idle_seconds,
        )
    )


def message(n: int, to: str = "vanphong@demo.gov.vn", text: str = "Kính gửi") -> Any:
    return build_email(
        key=f"k{n}",
        mail_from="QCDC <khong-tra-loi@qcdc.local>",
        to=to,
        subject=f"[Xác nhận] Đã nhận báo cáo số {n}",
        text=text,
        html=f"<p>{text}</p>",
    )


def message_ids(count: int) -> list[str]:
    """The Message-IDs of ``message(0)`` to ``message(count - 1)``, sorted."""
    return sorted(f"<k{n}@qcdc>" for n in range(count))


async def send_in_turn(pool: SmtpMailer, count: int) -> None:
    """``count`` messages, each once the one before was sent; then the pool closes."""
    for n in range(count):
        await pool.send(message(n))
    await pool.aclose()


async def send_at_once(pool: SmtpMailer, count: int) -> None:
    """``count`` messages at the same time; then the pool closes."""
    await asyncio.gather(*(pool.send(message(n)) for n in range(count)))
    await pool.aclose()


async def test_fifty_messages_share_at_most_pool_size_connections(server: Server) -> None:
    pool = mailer(server, connections=4)
    await send_at_once(pool, 50)
    assert sorted(server.accepted) == message_ids(50)
    assert 1 <= server.connections <= 4
    assert server.most_open <= 4
    assert pool.opened == server.connections
    assert server.quits == server.connections  # closed politely on shutdown


async def test_one_session_serves_message_after_message(server: Server) -> None:
    pool = mailer(server, connections=4)
    await send_in_turn(pool, 10)
    assert server.accepted == message_ids(10)
    assert server.connections == 1


@pytest.mark.parametrize(
    ("per_connection", "beyond", "connections"),
    [
        # One message per connection: the second MAIL FROM on a session gets 421 and a close.
        (1, Server.beyond, 5),
        # Two per connection, then "not now", without a close: the pool replaces the session.
        (2, "452 4.5.3 Too many messages on this connection", 3),
    ],
    ids=["closed", "refused-for-now"],
)
async def test_a_session_taking_no_more_messages_is_replaced_and_each_message_sent_once(
    server: Server, per_connection: int, beyond: str, connections: int
) -> None:
    server.per_connection = per_connection
    server.beyond = beyond
    pool = mailer(server, connections=1)
    await send_in_turn(pool, 5)
    assert server.accepted == message_ids(5)
    assert server.connections == connections


async def test_a_server_dropping_the_connection_after_each_message_loses_nothing(
    server: Server,
) -> None:
    server.drop_after_data = True
    pool = mailer(server, connections=2)
    await send_at_once(pool, 10)
    assert sorted(server.accepted) == message_ids(10)
    assert server.connections == 10


async def test_a_refused_message_fails_alone_and_the_session_goes_on(server: Server) -> None:
    pool = mailer(server, connections=1)
    await pool.send(message(1))
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await pool.send(message(2, to=REFUSED))
    with pytest.raises(aiosmtplib.SMTPDataError) as answered:
        await pool.send(message(3, text=LATER))
    await pool.send(message(4))
    await pool.aclose()
    assert answered.value.code == 451
    assert server.accepted == ["<k1@qcdc>", "<k4@qcdc>"]
    assert server.connections == 1


async def test_an_idle_session_is_not_reused(server: Server) -> None:
    pool = mailer(server, connections=1, idle_seconds=0.0)
    await pool.send(message(1))
    await pool.send(message(2))
    await pool.aclose()
    assert server.accepted == ["<k1@qcdc>", "<k2@qcdc>"]
    assert server.connections == 2


async def test_an_unreachable_relay_fails_the_send(server: Server) -> None:
    pool = SmtpMailer(SmtpConfig(host="127.0.0.1", port=1, mail_from="a@qcdc.local"))
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await pool.send(message(1))
    await pool.aclose()


async def test_a_message_waiting_too_long_for_a_session_is_not_sent(server: Server) -> None:
    server.hold = asyncio.Event()
    pool = mailer(server, connections=1)
    first = asyncio.create_task(pool.send(message(1)))
    await server.holding.wait()  # the only session is busy with the first message
    with pytest.raises(RelayBusy):
        await pool.send(message(2), wait=0.05)
    server.hold.set()
    await first
    await pool.aclose()
    assert server.accepted == ["<k1@qcdc>"]
