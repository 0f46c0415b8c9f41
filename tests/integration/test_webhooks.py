"""Webhooks end to end in one process: notify on a real nats-server and SQLite, local HTTP
receivers (uvicorn) and a real SMTP inbox. Events go in on the bus; signed CloudEvents come
out, retried, refused or failed as docs/notifications.md says; a slow receiver delays no one.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from nats.js.client import JetStreamContext

from services.natsd import NatsServer
from services.notify.adapters.contacts import ContactRepository
from services.notify.adapters.db import subscriptions
from services.notify.bootstrap import SERVICE as NOTIFY
from services.notify.handlers import delivery as delivery_handlers
from services.notify.handlers.subscriptions import ActiveSubscriptions
from shared.bus.envelope import encode
from shared.events import (
    Event,
    ReportSubmitted,
)
from tests import builders
from tests.support import (
    BusSpy,
    InProcessService,
    SmtpInbox,
    Waitable,
    eventually,
    service_settings,
)
from tests.unit.test_webhook_signature import documented_verify

SECRET = "bí-mật-của-tích-hợp"
STP_FOCAL = "daumoi@stp.anbinh.demo.gov.vn"
SUBMITTED = ReportSubmitted.ce_type()
DELIVERED = "qcdc.notification.delivered.v1"
FAILED = "qcdc.notification.failed.v1"
SLOW_SECONDS = 5.0

UNITS = [
    *builders.province(
        "Ủy ban nhân dân tỉnh An Bình", home_affairs_focal="vanphong@snv.anbinh.demo.gov.vn"
    ),
    builders.unit_below("STP", "Sở Tư pháp", STP_FOCAL, kind="department"),
]


# --- a local HTTP receiver ------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    delay: float = 0.0


@dataclass
class Hit:
    at: float
    """loop.time() when the request arrived."""
    headers: dict[str, str]
    body: bytes
    status: int


class Receiver(Waitable):
    """An integrator's endpoint: answers with ``replies`` in turn, then with ``default``;
    keeps every request (``items``) and every answer sent (``answered``)."""

    def __init__(self, host: str, replies: list[Reply], default: Reply) -> None:
        super().__init__(asyncio.get_running_loop())
        self.host = host
        self.replies = list(replies)
        self.default = default
        self.answered: list[Hit] = []
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def hits(self) -> list[Hit]:
        return list(self.items)

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self.host}:{port}/qcdc/events"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        reply = self.replies.pop(0) if self.replies else self.default
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        hit = Hit(self.loop.time(), headers, body, reply.status)
        self.add(hit)
        await asyncio.sleep(reply.delay)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(k.encode(), v.encode()) for k, v in reply.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": reply.body.encode()})
        self.answered.append(hit)

    async def start(self) -> Receiver:
        config = uvicorn.Config(self, host=self.host, port=0, log_config=None, lifespan="off")
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve())
        server = self.server

        async def started() -> bool:
            return server.started

        await eventually(started, timeout=10)
        return self

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await self.task


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries after tens of milliseconds instead of seconds, so a gap longer than that can
    only come from the receiver's Retry-After."""
    monkeypatch.setattr(
        delivery_handlers, "retry_delay", lambda attempts: timedelta(milliseconds=40 * attempts)
    )


StartNotify = Callable[..., Awaitable[InProcessService]]


@pytest.fixture
async def start_notify(
    nats_server: NatsServer, tmp_path: Path, smtp_inbox: SmtpInbox
) -> AsyncIterator[StartNotify]:
    started: list[InProcessService] = []

    async def start(**overrides: Any) -> InProcessService:
        values: dict[str, Any] = {
            "nats_url": nats_server.url,
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/notify.db",
            "smtp_port": smtp_inbox.port,
            "delivery_poll_seconds": 0.05,
            "webhook_allowlist": ["127.0.0.1/32"],
            **overrides,
        }
        service = await InProcessService(NOTIFY, service_settings(NOTIFY, **values)).start()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.stop()


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    running: list[Receiver] = []

    async def make(
        *replies: Reply, default: Reply | None = None, host: str = "127.0.0.1"
    ) -> Receiver:
        receiver = await Receiver(host, list(replies), default or Reply()).start()
        running.append(receiver)
        return receiver

    yield make
    for receiver in running:
        await receiver.stop()


# --- helpers --------------------------------------------------------------------------------


async def publish(js: JetStreamContext, event: Event) -> str:
    subject, headers, body = encode(event, source="/qcdc/tests", correlation_id="corr-hooks")
    await js.publish(subject, body, headers=headers)
    return headers["ce-id"]


async def register_units(js: JetStreamContext, notify: InProcessService) -> None:
    for unit in UNITS:
        await publish(js, unit)

    async def known() -> bool:
        async with notify.runtime.uow() as uow:
            repository = ContactRepository(uow.session)
            return all([await repository.get(u.code) for u in UNITS])

    await eventually(known)


async def subscribe(notify: InProcessService, url: str, unit: str = "STP") -> str:
    subscription_id = uuid.uuid4().hex
    async with notify.runtime.uow() as uow:
        await uow.session.execute(
            subscriptions.insert().values(
                id=subscription_id,
                unit_code=unit,
                include_subtree=False,
                event_types=[SUBMITTED],
                channel="webhook",
                address=url,
                secret=SECRET,
                digest=False,
                active=True,
                created_at=datetime.now(UTC),
                signature_scheme="legacy",  # these tests check the legacy signature
            )
        )
        await uow.commit()
    # Written here, not through notify's handlers: like another replica's change, which
    # the consumer would see only once its cache of subscriptions expires.
    ActiveSubscriptions.invalidate()
    return subscription_id


def submitted(n: int = 1) -> ReportSubmitted:
    return builders.submitted(
        "STP",
        report_id=f"r-{n}",
        receipt_number=f"STP-2023-{n:04d}",
        version=n,
        obligation_id="o-1",
    )


def on_bus(subscription_id: str) -> str:
    """How NotificationDelivered/Failed name a subscription's webhook: never its address."""
    return f"webhook:subscription:{subscription_id}"


def seen_for(spy: BusSpy, ce_type: str, recipient: str) -> list[dict[str, Any]]:
    bodies = [json.loads(s.data) for s in spy.of_type(ce_type)]
    return [b for b in bodies if b["recipient"] == recipient]


async def wait_seen(
    spy: BusSpy, ce_type: str, recipient: str, timeout: float = 30
) -> dict[str, Any]:
    await spy.wait_for(lambda _items: bool(seen_for(spy, ce_type, recipient)), timeout)
    return seen_for(spy, ce_type, recipient)[0]


async def log_for(notify: InProcessService, recipient: str) -> list[dict[str, Any]]:
    async with notify.client() as client:
        found: list[dict[str, Any]] = (
            await client.get("/deliveries", params={"limit": 1000})
        ).json()
    return [d for d in found if d["recipient"] == recipient]


# --- tests ----------------------------------------------------------------------------------


async def test_a_receiver_failing_three_times_gets_the_signed_event_once(
    start_notify: StartNotify,
    receivers: Callable[..., Awaitable[Receiver]],
    js: JetStreamContext,
    bus_spy: BusSpy,
) -> None:
    notify = await start_notify()
    hook = await receivers(Reply(500), Reply(500), Reply(502, body="Bad Gateway"))
    await register_units(js, notify)
    subscription = await subscribe(notify, hook.url)
    event_id = await publish(js, submitted())

    delivered = await wait_seen(bus_spy, DELIVERED, on_bus(subscription))
    assert delivered["attempts"] == 4
    assert delivered["event_id"] == event_id
    assert [h.status for h in hook.hits] == [500, 500, 502, 200]
    # One delivery, one body, one key: every attempt is the same message, signed afresh.
    assert {h.headers["x-qcdc-delivery"] for h in hook.hits} == {delivered["delivery_key"]}
    assert len({h.body for h in hook.hits}) == 1
    verify = documented_verify()
    for hit in hook.hits:
        assert verify(SECRET, hit.body, hit.headers["x-qcdc-signature"])
        assert not verify("other secret", hit.body, hit.headers["x-qcdc-signature"])
        assert hit.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    cloud_event = json.loads(hook.hits[0].body)
    assert cloud_event["type"] == SUBMITTED
    assert cloud_event["id"] == event_id
    assert cloud_event["data"]["receipt_number"] == "STP-2023-0001"
    [logged] = await log_for(notify, hook.url)
    assert (logged["status"], logged["attempts"], logged["last_error"]) == ("sent", 4, None)


async def test_a_receiver_that_always_fails_ends_in_notification_failed(
    start_notify: StartNotify,
    receivers: Callable[..., Awaitable[Receiver]],
    js: JetStreamContext,
    bus_spy: BusSpy,
) -> None:
    notify = await start_notify(webhook_max_attempts=3)
    hook = await receivers(default=Reply(503, body="Hệ thống đang bảo trì"))
    await register_units(js, notify)
    subscription = await subscribe(notify, hook.url)
    await publish(js, submitted())

    failed = await wait_seen(bus_spy, FAILED, on_bus(subscription))
    assert failed["attempts"] == 3
    assert failed["last_error"] == "HTTP 503 Service Unavailable: Hệ thống đang bảo trì"
    assert len(hook.hits) == 3
    assert not seen_for(bus_spy, DELIVERED, on_bus(subscription))
    async with notify.client() as client:
        listed = (await client.get("/deliveries", params={"status": "failed"})).json()
    [logged] = [d for d in listed if d["recipient"] == hook.url]
    assert logged["attempts"] == 3
    assert logged["last_error"] == failed["last_error"]

    # Redelivered by an operator: a fresh budget of three attempts, all six counted.
    async with notify.client() as client:
        again = await client.post(f"/deliveries/{logged['key']}/redeliver")
    assert again.status_code == 200, again.text
    await bus_spy.wait_for(lambda _items: len(seen_for(bus_spy, FAILED, on_bus(subscription))) >= 2)
    assert seen_for(bus_spy, FAILED, on_bus(subscription))[1]["attempts"] == 6
    assert len(hook.hits) == 6


async def test_retry_after_is_honoured(
    start_notify: StartNotify,
    receivers: Callable[..., Awaitable[Receiver]],
    js: JetStreamContext,
    bus_spy: BusSpy,
) -> None:
    notify = await start_notify()
    hook = await receivers(Reply(429, headers={"Retry-After": "2"}, body="chậm lại"))
    await register_units(js, notify)
    subscription = await subscribe(notify, hook.url)
    await publish(js, submitted())

    await wait_seen(bus_spy, DELIVERED, on_bus(subscription))
    first, second = hook.hits
    assert (first.status, second.status) == (429, 200)
    # The quick backoff would have come back after 40 ms; the receiver asked for 2 s.
    assert second.at - first.at >= 2.0 - 0.05


async def test_a_destination_off_the_allowlist_is_refused_before_any_connection(
    start_notify: StartNotify, js: JetStreamContext, bus_spy: BusSpy
) -> None:
    # Were it tried, 10.0.0.1 would hang until the timeout: the refusal comes at once.
    notify = await start_notify(webhook_timeout_seconds=30)
    url = "http://10.0.0.1/hook"
    await register_units(js, notify)
    subscription = await subscribe(notify, url)
    await publish(js, submitted())

    failed = await wait_seen(bus_spy, FAILED, on_bus(subscription), timeout=10)
    assert failed["attempts"] == 1
    assert "10.0.0.1" in failed["last_error"]
    assert "not on the allowlist" in failed["last_error"]
    [logged] = await log_for(notify, url)
    assert logged["status"] == "failed"
    assert logged["last_error"] == failed["last_error"]


async def test_a_slow_receiver_delays_neither_email_nor_another_receiver(
    start_notify: StartNotify,
    receivers: Callable[..., Awaitable[Receiver]],
    js: JetStreamContext,
    smtp_inbox: SmtpInbox,
) -> None:
    # Two hosts (two loopback addresses), so two destinations with their own limits.
    notify = await start_notify(webhook_allowlist=["127.0.0.0/8"], destination_concurrency=2)
    slow = await receivers(default=Reply(delay=SLOW_SECONDS), host="127.0.0.2")
    fast = await receivers(host="127.0.0.3")
    await register_units(js, notify)
    await subscribe(notify, slow.url)
    await subscribe(notify, fast.url)
    for n in (1, 2, 3):
        await publish(js, submitted(n))

    await fast.wait_for(lambda hits: len(hits) >= 3)
    await smtp_inbox.wait_for(
        lambda mails: len([m for m in mails if m.recipients == [STP_FOCAL]]) >= 3
    )
    # Everything else arrived while the slow receiver has not answered even once.
    assert slow.answered == []
    assert len(slow.hits) <= 2
    slow_log = await log_for(notify, slow.url)
    # The third is left alone, not claimed, while its destination is at its limit.
    assert len(slow_log) == 3
    pending = [d for d in slow_log if d["status"] == "pending"]
    assert pending
    assert all(d["attempts"] == 0 for d in pending)

    await slow.wait_for(lambda hits: len(hits) >= 3, timeout=4 * SLOW_SECONDS)
    await eventually(lambda: _all_sent(notify, slow.url), timeout=4 * SLOW_SECONDS)
    assert len(slow.hits) == 3
    assert len({h.headers["x-qcdc-delivery"] for h in slow.hits}) == 3


async def _all_sent(notify: InProcessService, url: str) -> bool:
    logged = await log_for(notify, url)
    return len(logged) == 3 and all(d["status"] == "sent" and d["attempts"] == 1 for d in logged)
