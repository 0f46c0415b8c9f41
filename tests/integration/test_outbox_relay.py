"""The outbox relay publishes with many acks in flight and still keeps the outbox's order in
the stream: when another writer comes between two rows, or a publish is lost mid-window, the
rows behind it wait for the next batch instead of overtaking it. Real nats-server, real
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from nats.aio.client import Client
from nats.js.api import PubAck
from nats.js.client import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from services.natsd import NatsServer
from shared.bus.envelope import encode
from shared.bus.publisher import PipelinedPublisher
from shared.bus.relay import CHUNKS_PER_BATCH, EXPECTED_LAST_MSG_ID, OutboxRelay
from shared.bus.streams import PLANS, provision
from shared.clock import SystemClock
from shared.db import MessagingTables, create_engine, messaging_tables
from shared.events import UnitRegistered
from shared.uow import UnitOfWork
from tests.support import eventually, patience

ROWS = 1300  # more than one batch of 500, several windows of 64


def _event(n: int) -> UnitRegistered:
    return UnitRegistered(
        unit_path=["T89", f"X{n:05d}"], code=f"X{n:05d}", name=f"Xã Số {n}", kind="commune"
    )


@pytest.fixture
async def empty_outbox(
    database_urls: dict[str, str],
) -> AsyncIterator[tuple[AsyncEngine, MessagingTables, UnitOfWork]]:
    metadata = sa.MetaData()
    messaging = messaging_tables(metadata)
    engine = create_engine(database_urls["plans"])
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    uow = UnitOfWork(async_sessionmaker(engine), messaging, source="/test", clock=SystemClock())
    yield engine, messaging, uow
    await engine.dispose()


@pytest.fixture
async def outbox(
    empty_outbox: tuple[AsyncEngine, MessagingTables, UnitOfWork],
) -> tuple[AsyncEngine, MessagingTables]:
    engine, messaging, uow = empty_outbox
    async with uow:
        uow.publish(*(_event(n) for n in range(ROWS)))
        await uow.commit()
    return engine, messaging


@pytest.fixture
async def connection(nats_server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server.url)
    await provision(nc.jetstream(), (PLANS,))
    yield nc
    await nc.close()


def _relay(
    engine: AsyncEngine, messaging: MessagingTables, nc: Client, batch_size: int = 500
) -> OutboxRelay:
    return OutboxRelay(
        engine,
        messaging,
        lambda: nc,
        SystemClock(),
        batch_size=batch_size,
        window=64,
        publish_timeout=patience(2),
    )


async def _drain(relay: OutboxRelay) -> None:
    while await relay.publish_pending():
        pass


async def _stream(js: JetStreamContext) -> list[dict[str, Any]]:
    info = await js.stream_info(PLANS.name)
    return [
        {"id": (msg.headers or {}).get("Nats-Msg-Id"), **json.loads(msg.data or b"{}")}
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
        for msg in [await js.get_msg(PLANS.name, seq)]
    ]


def _codes(stream: list[dict[str, Any]]) -> list[str]:
    return [entry["code"] for entry in stream if "code" in entry]


async def _unpublished(engine: AsyncEngine, messaging: MessagingTables) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).where(messaging.outbox.c.published_at.is_(None))
        )
    return int(count or 0)


EXPECTED = [f"X{n:05d}" for n in range(ROWS)]


async def test_every_row_is_published_once_in_outbox_order(
    outbox: tuple[AsyncEngine, MessagingTables], connection: Client
) -> None:
    engine, messaging = outbox
    js = connection.jetstream()
    await _drain(_relay(engine, messaging, connection))
    assert _codes(await _stream(js)) == EXPECTED
    assert await _unpublished(engine, messaging) == 0


async def test_another_writer_between_rows_delays_but_never_reorders(
    outbox: tuple[AsyncEngine, MessagingTables], connection: Client
) -> None:
    """A district instance's relay writes to the same stream: each time it comes between two
    of our rows, ours wait for the next batch (their order kept), and nothing is repeated."""
    engine, messaging = outbox
    js = connection.jetstream()
    relay = _relay(engine, messaging, connection)
    other = connection.jetstream()
    foreign = 0

    async def other_writer() -> None:
        nonlocal foreign
        while await _unpublished(engine, messaging):
            subject, headers, body = encode(
                UnitRegistered(unit_path=["T01"], code="T01", name="Khác", kind="province"),
                source="/other",
                correlation_id="other",
            )
            await other.publish(subject, body, headers=headers)
            foreign += 1
            await asyncio.sleep(0)  # a turn for the relay between our writes

    writer = asyncio.create_task(other_writer())
    await _drain(relay)
    await writer
    stream = await _stream(js)
    assert _codes([e for e in stream if e["code"] != "T01"]) == EXPECTED
    assert len(stream) == ROWS + foreign
    assert len({entry["id"] for entry in stream}) == len(stream)
    assert foreign > 0


class LosesOnePublish(PipelinedPublisher):
    """A connection that 'loses' one pipelined publish, as a broken TCP connection loses what
    was written just before it broke: the message never reaches the server and its ack never
    comes; the ones after it do reach the server."""

    def __init__(self, connection: Client, lose_code: str) -> None:
        super().__init__(connection)
        self.lose_code = lose_code
        self.lost = False

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> asyncio.Future[PubAck]:
        if not self.lost and json.loads(payload)["code"] == self.lose_code:
            self.lost = True
            return asyncio.get_running_loop().create_future()  # no ack, ever
        return await super().publish(subject, payload, headers)


async def test_a_lost_publish_is_not_overtaken_by_the_rows_behind_it(
    outbox: tuple[AsyncEngine, MessagingTables], connection: Client
) -> None:
    engine, messaging = outbox
    js = connection.jetstream()
    lossy = LosesOnePublish(connection, lose_code="X00700")
    relay = _relay(engine, messaging, connection)
    relay.publisher = lambda: lossy  # type: ignore[method-assign]
    with pytest.raises(TimeoutError):
        await _drain(relay)
    assert lossy.lost
    # What the stream holds is a prefix of the outbox, and exactly the rows marked published.
    assert _codes(await _stream(js)) == EXPECTED[:700]
    assert await _unpublished(engine, messaging) == ROWS - 700
    await _drain(relay)
    assert _codes(await _stream(js)) == EXPECTED
    assert await _unpublished(engine, messaging) == 0


class CountsAnchors(PipelinedPublisher):
    """Counts the publishes that carry no ``Nats-Expected-Last-Msg-Id``: each batch's first."""

    anchors = 0

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> asyncio.Future[PubAck]:
        self.anchors += EXPECTED_LAST_MSG_ID not in headers
        return await super().publish(subject, payload, headers)


async def test_a_batch_chains_its_reads_into_one_stream_of_publishes(
    outbox: tuple[AsyncEngine, MessagingTables], connection: Client
) -> None:
    """Reads of 100 rows: one batch takes CHUNKS_PER_BATCH of them, publishing them as one
    chain (its first row alone, the window kept full across the reads), and marks them all;
    the next batch takes the rest."""
    engine, messaging = outbox
    js = connection.jetstream()
    counting = CountsAnchors(connection)
    relay = _relay(engine, messaging, connection, batch_size=100)
    relay.publisher = lambda: counting  # type: ignore[method-assign]
    assert await relay.publish_pending() == 100 * CHUNKS_PER_BATCH
    assert counting.anchors == 1
    assert await _unpublished(engine, messaging) == ROWS - 100 * CHUNKS_PER_BATCH
    await _drain(relay)
    assert counting.anchors == 2
    assert _codes(await _stream(js)) == EXPECTED
    assert await _unpublished(engine, messaging) == 0


async def test_rows_committed_while_the_relay_lingers_go_out_in_its_batch(
    empty_outbox: tuple[AsyncEngine, MessagingTables, UnitOfWork], connection: Client
) -> None:
    """Woken by a commit, the relay waits ``linger_seconds`` before it reads: the rows of the
    commits that follow meanwhile go out in that batch (one chain, one anchor), not in a
    batch each."""
    engine, messaging, uow = empty_outbox
    counting = CountsAnchors(connection)
    relay = SleepsObserved(
        engine,
        messaging,
        lambda: connection,
        SystemClock(),
        poll_seconds=3600,
        linger_seconds=patience(2),
        publish_timeout=patience(2),
    )
    relay.publisher = lambda: counting  # type: ignore[method-assign]
    running = asyncio.create_task(relay.run())
    try:
        # Idle first: its start-up pass must not be what reads the first row.
        await asyncio.wait_for(relay.asleep.wait(), patience(10))
        for n in range(3):
            async with uow:
                uow.publish(_event(n))
                await uow.commit()
            relay.wake()
            if n == 0:  # the next two commit while the relay lingers after the first
                await asyncio.wait_for(relay.lingering.wait(), patience(10))
        await eventually(lambda: _all_published(engine, messaging))
        assert counting.anchors == 1
        assert _codes(await _stream(connection.jetstream())) == [f"X{n:05d}" for n in range(3)]
    finally:
        relay.stop()
        await asyncio.wait_for(running, patience(10))


async def _all_published(engine: AsyncEngine, messaging: MessagingTables) -> bool:
    return await _unpublished(engine, messaging) == 0


class SleepsObserved(OutboxRelay):
    """Tells when it has found nothing to publish and waits to be woken, and when, woken,
    it lingers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asleep = asyncio.Event()
        self.lingering = asyncio.Event()

    async def _sleep_until_woken(self) -> bool:
        self.asleep.set()
        return await super()._sleep_until_woken()

    async def _linger(self) -> None:
        self.lingering.set()
        await super()._linger()
