"""The three services as separate processes on a real nats-server: a notify process killed
mid-burst, and nats-server stopped during submissions, lose and duplicate nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from services.natsd import NatsServer, free_port
from tests.e2e.burst import PLAN, RECEIPT, units
from tests.support import ServiceProcess, SmtpInbox, eventually, patience

pytestmark = pytest.mark.slow

UNIT_COUNT = 8
DELIVERY_CONCURRENCY = 4


@pytest.fixture
def processes(
    nats_server: NatsServer, tmp_path: Path, smtp_inbox: SmtpInbox
) -> Iterator[dict[str, ServiceProcess]]:
    common = {
        "QCDC_NATS_URL": nats_server.url,
        "QCDC_DATA_DIR": str(tmp_path / "var"),
        "QCDC_CLOCK": "fixed:2023-06-01T02:00:00Z",
        "QCDC_CONSUMER_ACK_WAIT_SECONDS": "3",
        "QCDC_OUTBOX_POLL_SECONDS": "0.2",
        "QCDC_LOG_LEVEL": "INFO",
    }
    extra = {
        "notify": {
            "QCDC_SMTP_PORT": str(smtp_inbox.port),
            "QCDC_DELIVERY_LEASE_SECONDS": "2",
            "QCDC_DELIVERY_POLL_SECONDS": "0.05",
            "QCDC_DELIVERY_CONCURRENCY": str(DELIVERY_CONCURRENCY),
        },
    }
    running: dict[str, ServiceProcess] = {}
    for name in ("plans", "reports", "notify"):
        env = {
            **common,
            **extra.get(name, {}),
            "QCDC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/{name}.db",
        }
        running[name] = ServiceProcess(name, env, tmp_path / f"{name}.log", free_port())
        running[name].start()
    yield running
    for process in running.values():
        process.stop()


@pytest.fixture
async def obligations(processes: dict[str, ServiceProcess]) -> AsyncIterator[list[str]]:
    async with httpx.AsyncClient(base_url=processes["plans"].url, timeout=patience(10)) as plans:
        for unit in units(UNIT_COUNT):
            assert (await plans.post("/units", json=unit)).status_code == 201
        draft = (await plans.post("/plans", json=PLAN)).json()
        assert (await plans.post(f"/plans/{draft['id']}/issue")).status_code == 200
    async with httpx.AsyncClient(
        base_url=processes["reports"].url, timeout=patience(10)
    ) as reports:

        async def probe() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (await reports.get("/obligations")).json()
            return found if len(found) == UNIT_COUNT else []

        yield [o["id"] for o in await eventually(probe)]


async def _submit(reports: httpx.AsyncClient, obligation: str, unit: str, key: str) -> str:
    response = await reports.post(
        "/reports",
        json={"obligation_id": obligation, "unit_code": unit},
        headers={"Idempotency-Key": key},
    )
    assert response.status_code == 201, response.text
    receipt: str = response.json()["receipt_number"]
    return receipt


async def _unit_of(reports: httpx.AsyncClient, obligation: str) -> str:
    unit: str = (await reports.get(f"/obligations/{obligation}")).json()["unit_code"]
    return unit


def _receipt_numbers(inbox: SmtpInbox) -> Counter[str]:
    # Issuing the plan also mails every commune; receipts are the mails marked "[Xác nhận]".
    return Counter(m.subject.rsplit(" ", 1)[-1] for m in inbox.with_subject(RECEIPT))


async def _receipt_log(notify_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=notify_url, timeout=patience(10)) as notify:
        response = await notify.get(
            "/deliveries", params={"limit": 1000, "event_type": "report.submitted"}
        )
    log: list[dict[str, Any]] = response.json()
    return log


async def test_notify_killed_mid_burst_delivers_every_receipt_once(
    processes: dict[str, ServiceProcess], obligations: list[str], smtp_inbox: SmtpInbox
) -> None:
    receipts: list[str] = []
    async with httpx.AsyncClient(
        base_url=processes["reports"].url, timeout=patience(10)
    ) as reports:
        units = {o: await _unit_of(reports, o) for o in obligations}
        for version in range(5):
            for obligation in obligations:
                receipts.append(
                    await _submit(reports, obligation, units[obligation], f"{obligation}-{version}")
                )
            if version == 1:
                await smtp_inbox.wait_for_subject(RECEIPT, 3)
                processes["notify"].kill()
            if version == 3:
                processes["notify"].start()
    await smtp_inbox.wait_for(
        lambda _items: set(_receipt_numbers(smtp_inbox)) >= set(receipts), timeout=60
    )
    counts = _receipt_numbers(smtp_inbox)
    assert set(counts) == set(receipts)
    # Every receipt arrived, under its delivery key as Message-ID. The only repeats SMTP
    # allows are the messages in flight at the kill (sent, not yet recorded): at most one
    # per concurrent attempt, each repeated at most once, and with the original's
    # Message-ID so the mailbox can recognise it.
    repeats = {r: n for r, n in counts.items() if n > 1}
    assert all(n == 2 for n in repeats.values()), repeats
    assert len(repeats) <= DELIVERY_CONCURRENCY, repeats
    ids = Counter(m.message_id for m in smtp_inbox.with_subject(RECEIPT))
    assert len(ids) == len(receipts)
    log = await _receipt_log(processes["notify"].url)
    assert len(log) == len(receipts)
    assert {d["status"] for d in log} == {"sent"}


async def test_nats_down_during_submissions_loses_and_duplicates_nothing(
    processes: dict[str, ServiceProcess],
    obligations: list[str],
    smtp_inbox: SmtpInbox,
    nats_server: NatsServer,
) -> None:
    receipts: list[str] = []
    async with httpx.AsyncClient(
        base_url=processes["reports"].url, timeout=patience(10)
    ) as reports:
        units = {o: await _unit_of(reports, o) for o in obligations}
        for version in range(4):
            if version == 1:
                nats_server.stop()
            if version == 3:
                nats_server.start()
            for obligation in obligations:
                receipts.append(
                    await _submit(reports, obligation, units[obligation], f"{obligation}-{version}")
                )
    await smtp_inbox.wait_for(
        lambda _items: set(_receipt_numbers(smtp_inbox)) >= set(receipts), timeout=90
    )
    assert sorted(_receipt_numbers(smtp_inbox).values()) == [1] * len(receipts)
    log = await _receipt_log(processes["notify"].url)
    assert len(log) == len(receipts)
    nc = await nats.connect(nats_server.url)
    try:
        info = await nc.jetstream().stream_info("QCDC_REPORTS", subjects_filter=">")
    finally:
        await nc.close()
    assert info.state.messages == len(receipts)
