"""SIGTERM under load, checked from stored data: the reports service stopped during a burst
of submissions keeps exactly the acknowledged ones, each with its ReportSubmitted on the
stream; the notify service stopped while mailing leaves nothing half-sent."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.natsd import NatsServer, free_port
from tests.e2e.burst import PLAN, RECEIPT, units
from tests.e2e.test_resilience import UNIT_COUNT
from tests.support import ServiceProcess, SmtpInbox, eventually, patience

pytestmark = pytest.mark.slow

STOP_TIMEOUT = 8.0
CLIENTS = 12


@pytest.fixture
def processes(
    nats_server: NatsServer, tmp_path: Path, smtp_inbox: SmtpInbox
) -> Iterator[dict[str, ServiceProcess]]:
    common = {
        "QCDC_NATS_URL": nats_server.url,
        "QCDC_DATA_DIR": str(tmp_path),
        "QCDC_CLOCK": "fixed:2023-06-01T02:00:00Z",
        "QCDC_OUTBOX_POLL_SECONDS": "0.2",
        "QCDC_STOP_TIMEOUT_SECONDS": str(STOP_TIMEOUT),
        "QCDC_LOG_LEVEL": "INFO",
        "QCDC_SMTP_PORT": str(smtp_inbox.port),
        "QCDC_DELIVERY_POLL_SECONDS": "0.05",
    }
    running: dict[str, ServiceProcess] = {}
    for name in ("plans", "reports", "notify"):
        env = {**common, "QCDC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/{name}.db"}
        running[name] = ServiceProcess(name, env, tmp_path / f"{name}.log", free_port())
        running[name].start()
    yield running
    for process in running.values():
        process.stop()


@pytest.fixture
async def obligations(processes: dict[str, ServiceProcess]) -> list[dict[str, Any]]:
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

        found: list[dict[str, Any]] = await eventually(probe)
        return found


def _terminate(process: ServiceProcess) -> float:
    """SIGTERM; the seconds until the process has exited (asserted: with code 0)."""
    assert process.process is not None
    started = time.monotonic()
    process.process.send_signal(signal.SIGTERM)
    code = process.process.wait(patience(STOP_TIMEOUT + 15))
    took = time.monotonic() - started
    assert code == 0, process.log_path.read_text()[-3000:]
    process.process = None
    return took


async def _burst(
    reports: ServiceProcess, obligations: list[dict[str, Any]], stop_after: int
) -> tuple[dict[str, str], set[str], float]:
    """Submissions from several clients until the service is gone, SIGTERM once
    ``stop_after`` are acknowledged: (key → report id of every 201, keys not acknowledged,
    seconds the stop took)."""
    acknowledged: dict[str, str] = {}
    refused: set[str] = set()
    stopped = asyncio.Event()
    took: list[float] = []

    async def client(number: int, http: httpx.AsyncClient) -> None:
        sent = 0
        while not stopped.is_set():
            obligation = obligations[(number + sent) % len(obligations)]
            key = f"burst-{number}-{sent}"
            sent += 1
            try:
                response = await http.post(
                    "/reports",
                    json={"obligation_id": obligation["id"], "unit_code": obligation["unit_code"]},
                    headers={"Idempotency-Key": key},
                )
            except httpx.TransportError:
                refused.add(key)  # no answer: the client does not know, and must not count it
                await stopped.wait()  # the service is going away: nothing more to send
                continue
            if response.status_code == 201:
                acknowledged[key] = response.json()["report_id"]
            else:
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "1"
                refused.add(key)

    async def stop_when_enough() -> None:
        await eventually(lambda: _at_least(acknowledged, stop_after), timeout=60)
        took.append(await asyncio.to_thread(_terminate, reports))
        stopped.set()

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=reports.url, timeout=patience(10), limits=limits) as http:
        await asyncio.gather(stop_when_enough(), *(client(n, http) for n in range(CLIENTS)))
    return acknowledged, refused, took[0]


async def _at_least(found: dict[str, str], count: int) -> bool:
    return len(found) >= count


def _stored(database: Path) -> dict[str, str]:
    """Idempotency key → report id, from the reports database itself."""
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT idempotency_key, report_id FROM idempotency_keys").fetchall()
        reports = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
        unpublished = conn.execute(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        ).fetchone()[0]
    assert reports == len(rows)  # no report without its key
    assert unpublished == 0  # the relay published every committed event before exiting
    return dict(rows)


async def _submitted_on_stream(url: str) -> Counter[str]:
    """Report id → how many ReportSubmitted the QCDC_REPORTS stream holds for it."""
    nc = await nats.connect(url)
    found: Counter[str] = Counter()
    try:
        js = nc.jetstream()
        total = (await js.stream_info("QCDC_REPORTS")).state.messages
        reader = await js.pull_subscribe(
            "qcdc.v1.report.submitted.>",
            stream="QCDC_REPORTS",
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        seen = 0
        while seen < total:
            try:
                batch = await reader.fetch(500, timeout=patience(2))
            except TimeoutError:
                break  # the rest are not submissions
            for msg in batch:
                seen += 1
                found[json.loads(msg.data)["report_id"]] += 1
    finally:
        await nc.close()
    return found


async def test_reports_stopped_mid_burst_keeps_exactly_what_it_acknowledged(
    processes: dict[str, ServiceProcess],
    obligations: list[dict[str, Any]],
    nats_server: NatsServer,
    tmp_path: Path,
) -> None:
    reports = processes["reports"]
    acknowledged, refused, took = await _burst(reports, obligations, stop_after=40)

    assert took < STOP_TIMEOUT + patience(5), f"the stop took {took:.1f} s"
    assert refused, "no submission was refused: the stop came after the burst"
    stored = _stored(tmp_path / "reports.db")
    assert stored == acknowledged  # every 201 stored, nothing else
    on_stream = await _submitted_on_stream(nats_server.url)
    assert on_stream == Counter(set(acknowledged.values()))  # each once, and no others
    log = reports.log_path.read_text()
    assert "outbox drained" in log and "service stopped" in log


async def test_notify_stopped_while_mailing_sends_every_receipt_once(
    processes: dict[str, ServiceProcess],
    obligations: list[dict[str, Any]],
    smtp_inbox: SmtpInbox,
) -> None:
    receipts: list[str] = []
    async with httpx.AsyncClient(
        base_url=processes["reports"].url, timeout=patience(10)
    ) as reports:
        for version in range(4):
            for obligation in obligations:
                response = await reports.post(
                    "/reports",
                    json={"obligation_id": obligation["id"], "unit_code": obligation["unit_code"]},
                    headers={"Idempotency-Key": f"{obligation['id']}-{version}"},
                )
                assert response.status_code == 201, response.text
                receipts.append(response.json()["receipt_number"])
    await smtp_inbox.wait_for_subject(RECEIPT, 3)
    notify = processes["notify"]
    took = _terminate(notify)  # mid-way through the receipts (and plan notices)
    assert took < STOP_TIMEOUT + patience(5), f"the stop took {took:.1f} s"
    assert "service stopped" in notify.log_path.read_text()
    notify.start()

    def receipt_numbers() -> Counter[str]:
        return Counter(m.subject.rsplit(" ", 1)[-1] for m in smtp_inbox.with_subject(RECEIPT))

    await smtp_inbox.wait_for(lambda _: set(receipt_numbers()) >= set(receipts), timeout=60)
    # Stopped gracefully, notify finished every send it began and recorded it: not one
    # e-mail twice (a SIGKILL may repeat those in flight: test_resilience.py).
    assert receipt_numbers() == Counter(receipts)
    all_ids = Counter(m.message_id for m in smtp_inbox.items)
    assert max(all_ids.values()) == 1
