"""notify as its own process, killed (SIGKILL) in the middle of a burst of 500 events and
restarted: every expected message arrives, exactly once (but for the documented SMTP window,
whose repeats carry the same Message-ID), and the delivery log shows every one sent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.client import JetStreamContext

from services.natsd import NatsServer, free_port
from shared.bus.envelope import encode
from shared.events import (
    Event,
    ReportSubmitted,
    UnitRegistered,
)
from tests import builders
from tests.support import Received, ServiceProcess, SmtpInbox, eventually, patience

pytestmark = pytest.mark.slow

UNIT_COUNT = 20
EVENT_COUNT = 500
KILL_AFTER_MAILS = 150
DELIVERY_CONCURRENCY = 16


def _units() -> list[UnitRegistered]:
    return [
        *builders.province(home_affairs_focal="vanphong@snv.demo.gov.vn"),
        # Five mail domains, so the per-destination limit is in play.
        *(
            builders.unit_below(
                f"X{n:05d}", f"Ủy ban nhân dân xã Số {n}", f"xa{n}@huyen{n % 5}.demo.gov.vn"
            )
            for n in range(UNIT_COUNT)
        ),
    ]


def _submitted(n: int) -> ReportSubmitted:
    unit = f"X{n % UNIT_COUNT:05d}"
    return builders.submitted(
        unit,
        report_id=f"r-{n}",
        receipt_number=f"{unit}-2023-{n:04d}",
        version=n // UNIT_COUNT + 1,
    )


@pytest.fixture
def notify(
    nats_server: NatsServer, tmp_path: Path, smtp_inbox: SmtpInbox
) -> Iterator[ServiceProcess]:
    env = {
        "QCDC_NATS_URL": nats_server.url,
        "QCDC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/notify.db",
        "QCDC_SMTP_PORT": str(smtp_inbox.port),
        "QCDC_CONSUMER_ACK_WAIT_SECONDS": "3",
        "QCDC_OUTBOX_POLL_SECONDS": "0.2",
        "QCDC_DELIVERY_LEASE_SECONDS": "2",
        "QCDC_DELIVERY_POLL_SECONDS": "0.05",
        "QCDC_DELIVERY_CONCURRENCY": str(DELIVERY_CONCURRENCY),
        "QCDC_LOG_LEVEL": "WARNING",
    }
    process = ServiceProcess("notify", env, tmp_path / "notify.log", free_port())
    process.start()
    yield process
    process.stop()


async def _publish(js: JetStreamContext, event: Event) -> str:
    subject, headers, body = encode(event, source="/qcdc/tests", correlation_id="burst")
    await js.publish(subject, body, headers=headers)
    return headers["ce-id"]


async def _log(notify: ServiceProcess) -> list[dict[str, Any]]:
    """The reports' deliveries that are mailed on their own (those the rules hold for a
    daily digest reach the inbox inside one digest mail, not one by one)."""
    params: dict[str, str | int] = {"event_type": "report.submitted", "limit": 1000}
    async with httpx.AsyncClient(base_url=notify.url, timeout=patience(10)) as client:
        found: list[dict[str, Any]] = (await client.get("/deliveries", params=params)).json()
    return [d for d in found if not d["digest"]]


async def test_notify_killed_mid_burst_sends_every_message_once(
    notify: ServiceProcess, js: JetStreamContext, smtp_inbox: SmtpInbox
) -> None:
    for unit in _units():
        await _publish(js, unit)
    await eventually(lambda: _units_known(js), timeout=30)
    first = await _publish(js, _submitted(0))
    # How many messages one report gives on their own (the receipt, and the receiving
    # unit's notice if the rules mail it at once): read from the log, so the count follows
    # the configured rules.
    per_event = len(await eventually(lambda: _for_event(notify, first), timeout=30))
    event_ids = [first] + [await _publish(js, _submitted(n)) for n in range(1, EVENT_COUNT)]
    expected = EVENT_COUNT * per_event

    await smtp_inbox.wait_for(lambda mails: len(mails) >= KILL_AFTER_MAILS, timeout=30)
    notify.kill()
    at_kill = len(smtp_inbox.items)
    assert at_kill < expected, "the burst was over before the kill"
    notify.start()

    await smtp_inbox.wait_for(lambda mails: len(_ids(mails)) >= expected, timeout=60)
    log = await eventually(lambda: _all_sent(notify, expected), timeout=30)

    # Exactly the logged deliveries arrived, each under its delivery key as Message-ID.
    assert _ids(smtp_inbox.items) == {f"<{d['key']}@qcdc>" for d in log}
    assert {d["event_id"] for d in log} == set(event_ids)
    assert Counter(d["event_id"] for d in log) == {e: per_event for e in event_ids}
    # The only repeats allowed are the SMTP window at the kill: messages accepted by the
    # server and not yet recorded. Each is sent once more, under the same Message-ID (so the
    # id count above is unchanged), and no more of them than attempts run at once.
    single = _single(smtp_inbox.items)
    repeats = Counter(m.message_id for m in single) - Counter(_ids(single))
    assert set(repeats.values()) <= {1}, repeats
    assert sum(repeats.values()) <= DELIVERY_CONCURRENCY, repeats


async def _units_known(js: JetStreamContext) -> bool:
    """notify has handled every unit event (its consumer has nothing pending), so each
    report finds its unit's and its receiving unit's contacts."""
    try:
        info = await js.consumer_info("QCDC_PLANS", "notify-units")
    except nats.js.errors.NotFoundError:
        return False
    return bool(info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq)


def _ids(mails: list[Received]) -> set[str]:
    return {m.message_id for m in _single(mails)}


def _single(mails: list[Received]) -> list[Received]:
    return [m for m in mails if not m.subject.startswith("Tổng hợp thông báo")]


async def _for_event(notify: ServiceProcess, event_id: str) -> list[dict[str, Any]]:
    return [d for d in await _log(notify) if d["event_id"] == event_id]


async def _all_sent(notify: ServiceProcess, expected: int) -> list[dict[str, Any]]:
    log = await _log(notify)
    done = len(log) == expected and all(d["status"] == "sent" for d in log)
    return log if done else []
