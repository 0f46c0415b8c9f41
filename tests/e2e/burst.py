"""A burst of report submissions against the services running as processes, and the
invariant the fault tests check afterwards, from stored data only (the databases, the
streams, the SMTP sink), never from logs:

- every acknowledged report is stored, once;
- its ``ReportSubmitted`` is in the outbox, published, and in the stream once;
- notify handled each of those events once (its inbox);
- each stored report's receipt was mailed once (but for the documented SMTP window:
  docs/notifications.md, *Exactly once*), and no receipt went out for a report that is not
  stored.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from services.natsd import free_port
from tests.support import ServiceProcess, SmtpInbox, eventually, patience

RECEIPT = "[Xác nhận]"
SUBMITTED_TYPE = "qcdc.report.submitted.v1"
DELIVERY_CONCURRENCY = 8
SERVICES = ("plans", "reports", "notify")


def units(count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {"code": "T89", "name": "Ủy ban nhân dân tỉnh An Bình", "kind": "province"},
        {"code": "SNV", "name": "Sở Nội vụ", "kind": "department", "parent_code": "T89"},
    ]
    for n in range(count):
        found.append(
            {
                "code": f"X{n:05d}",
                "name": f"Ủy ban nhân dân xã Số {n}",
                "kind": "commune",
                "parent_code": "T89",
                "reports_to_code": "SNV",
                "contacts": {"focal_email": f"xa{n}@demo.gov.vn"},
            }
        )
    return found


PLAN = {
    "doc_number": "123/KH-UBND",
    "title": "Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2023",
    "issuing_unit": "T89",
    "issued_on": "2023-02-15",
    "year": 2023,
    "assignees": {"kinds": ["commune"]},
    "schedule": [
        {
            "key": "six_month",
            "kind": "six_month",
            "period_start": "2022-12-15",
            "period_end": "2023-06-08",
            "due_before": "2023-06-10",
            "receiving_unit": "SNV",
        }
    ],
}


def service_env(
    name: str, *, nats_url: str, database_url: str, data_dir: Path, smtp_port: int, **extra: str
) -> dict[str, str]:
    env = {
        "QCDC_NATS_URL": nats_url,
        "QCDC_DATABASE_URL": database_url,
        "QCDC_DATA_DIR": str(data_dir),
        "QCDC_CLOCK": "fixed:2023-06-01T02:00:00Z",
        "QCDC_CONSUMER_ACK_WAIT_SECONDS": "5",
        "QCDC_OUTBOX_POLL_SECONDS": "0.2",
        "QCDC_LOG_LEVEL": "WARNING",
        **extra,
    }
    if name == "notify":
        env.update(
            QCDC_SMTP_PORT=str(smtp_port),
            QCDC_DELIVERY_LEASE_SECONDS="2",
            QCDC_DELIVERY_POLL_SECONDS="0.05",
            QCDC_DELIVERY_CONCURRENCY=str(DELIVERY_CONCURRENCY),
        )
    return env


def process(name: str, env: dict[str, str], log_dir: Path, replica: int = 0) -> ServiceProcess:
    return ServiceProcess(name, env, log_dir / f"{name}-{replica}.log", free_port())


async def start_together(processes: Iterable[ServiceProcess]) -> None:
    """Start processes at once, in threads: the test's event loop keeps running (it may
    host the SMTP sink's clients or a TCP relay the services go through)."""
    await asyncio.gather(*(asyncio.to_thread(p.start) for p in processes))


async def stop_together(processes: Iterable[ServiceProcess]) -> None:
    await asyncio.gather(*(asyncio.to_thread(p.stop) for p in processes))


async def open_obligations(plans_url: str, reports_url: str, count: int) -> dict[str, str]:
    """Registers ``count`` communes, issues the plan; obligation id -> unit code."""
    async with httpx.AsyncClient(base_url=plans_url, timeout=patience(30)) as plans:
        for unit in units(count):
            response = await plans.post("/units", json=unit)
            assert response.status_code == 201, response.text
        draft = (await plans.post("/plans", json=PLAN)).json()
        assert (await plans.post(f"/plans/{draft['id']}/issue")).status_code == 200
    async with httpx.AsyncClient(base_url=reports_url, timeout=patience(30)) as reports:

        async def probe() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (
                await reports.get("/obligations", params={"limit": 1000})
            ).json()
            return found if len(found) == count else []

        return {o["id"]: o["unit_code"] for o in await eventually(probe, timeout=60)}


@dataclass
class Burst:
    """Submissions, each obligation's versions in turn and the obligations all at once,
    spread over one or more reports replicas; a submission not answered 201 is
    *unacknowledged* (its sender was never told it is received)."""

    reports_urls: list[str]
    obligations: dict[str, str]
    per_obligation: int
    acknowledged: dict[str, str] = field(default_factory=dict)
    """Idempotency-Key -> receipt number."""
    unacknowledged: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Idempotency-Key -> (obligation, unit)."""
    latencies: list[float] = field(default_factory=list)
    refusals: int = 0
    """Answers other than 201, and requests that got no answer, retried or not."""
    _thresholds: list[tuple[int, asyncio.Event]] = field(default_factory=list)
    _failures: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.obligations) * self.per_obligation

    async def reached(self, acknowledged: int) -> None:
        """Until that many submissions were acknowledged (to inject a fault mid-burst)."""
        await self._wait(self._thresholds, acknowledged, len(self.acknowledged))

    async def refused(self, count: int) -> None:
        """Until that many submissions went unacknowledged (the fault is felt)."""
        await self._wait(self._failures, count, len(self.unacknowledged))

    async def _wait(self, waiters: list[tuple[int, asyncio.Event]], count: int, now: int) -> None:
        if now >= count:
            return
        event = asyncio.Event()
        waiters.append((count, event))
        await asyncio.wait_for(event.wait(), patience(120))

    @staticmethod
    def _notify(waiters: list[tuple[int, asyncio.Event]], now: int) -> None:
        for count, event in waiters:
            if now >= count:
                event.set()

    async def run(self) -> None:
        clients = [
            httpx.AsyncClient(base_url=url, timeout=patience(30)) for url in self.reports_urls
        ]
        try:
            await asyncio.gather(
                *(
                    self._submit_all(clients[n % len(clients)], clients, obligation, unit)
                    for n, (obligation, unit) in enumerate(self.obligations.items())
                )
            )
        finally:
            for client in clients:
                await client.aclose()

    async def _submit_all(
        self,
        client: httpx.AsyncClient,
        clients: list[httpx.AsyncClient],
        obligation: str,
        unit: str,
    ) -> None:
        for version in range(self.per_obligation):
            key = f"{obligation}-{version}"
            await self.submit(client, obligation, unit, key)
            # A sender refused by one replica tries the others at once, with the same key
            # (with one replica, it leaves that to retry_unacknowledged).
            for other in clients:
                if key in self.unacknowledged and other is not client:
                    await self.submit(other, obligation, unit, key)

    async def submit(self, client: httpx.AsyncClient, obligation: str, unit: str, key: str) -> None:
        started = time.monotonic()
        try:
            response = await client.post(
                "/reports",
                json={"obligation_id": obligation, "unit_code": unit},
                headers={"Idempotency-Key": key},
            )
        except httpx.HTTPError:
            response = None
        self.latencies.append(time.monotonic() - started)
        if response is not None and response.status_code in (200, 201):
            self.acknowledged[key] = response.json()["receipt_number"]
            self.unacknowledged.pop(key, None)
            self._notify(self._thresholds, len(self.acknowledged))
            return
        # Never a 4xx: the requests are valid; a fault may only make the service unavailable.
        assert response is None or response.status_code >= 500, response.text
        self.unacknowledged[key] = (obligation, unit)
        self.refusals += 1
        self._notify(self._failures, len(self.unacknowledged))

    async def retry_unacknowledged(self, reports_url: str) -> None:
        """Each refused submission again, with its Idempotency-Key, until every one is
        acknowledged: what a sender does."""
        async with httpx.AsyncClient(base_url=reports_url, timeout=patience(30)) as client:

            async def retried() -> bool:
                for key, (obligation, unit) in list(self.unacknowledged.items()):
                    await self.submit(client, obligation, unit, key)
                return not self.unacknowledged

            await eventually(retried, timeout=60, interval=0.5)


CATCH_UP_SECONDS = 180.0
SECONDS_PER_RECEIPT = 0.1
"""Notify mails at least 10 receipts a second even on a 2-core machine at load 25 (21
measured there draining the 20,000 burst; 65-85 on an idle one: docs/performance.md);
waits grow with the backlog by this much a receipt."""


def catch_up_seconds(reports: int) -> float:
    """How long the system may take to handle and mail ``reports`` once intake stopped,
    before the patience factor (which :func:`eventually` applies)."""
    return CATCH_UP_SECONDS + reports * SECONDS_PER_RECEIPT


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def receipt_counts(inbox: SmtpInbox) -> Counter[str]:
    # Issuing the plan also mails every commune; receipts are the mails marked "[Xác nhận]".
    return Counter(m.subject.rsplit(" ", 1)[-1] for m in inbox.with_subject(RECEIPT))


async def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(sa.text(sql), params)]
    finally:
        await engine.dispose()


async def stored_receipts(reports_db: str) -> Counter[str]:
    return Counter(row[0] for row in await query(reports_db, "SELECT receipt_number FROM reports"))


async def stream_count(nats_url: str, subjects: str = "qcdc.v1.report.submitted.>") -> int:
    nc = await nats.connect(nats_url.split(","))
    try:
        info = await nc.jetstream().stream_info("QCDC_REPORTS", subjects_filter=subjects)
    finally:
        await nc.close()
    return sum((info.state.subjects or {}).values())


async def check_invariant(
    burst: Burst,
    *,
    reports_db: str,
    notify_db: str,
    nats_url: str,
    inbox: SmtpInbox,
    smtp_repeats: int = 0,
) -> None:
    """The invariant, once the system has caught up; ``smtp_repeats``: how many receipts
    may be mailed a second time (the SMTP window at a killed notify, with the original's
    Message-ID), at most. The wait to catch up grows with the reports stored (a backlog of
    thousands of receipts takes minutes to mail) and with the patience factor."""
    stored = await stored_receipts(reports_db)
    acknowledged = set(burst.acknowledged.values())
    assert len(acknowledged) == len(burst.acknowledged), "one receipt for two submissions"
    missing = acknowledged - set(stored)
    assert not missing, f"{len(missing)} acknowledged reports not stored: {sorted(missing)[:5]}"
    assert set(stored.values()) == {1}
    # A report stored but never acknowledged is one whose answer was lost to the fault
    # (committed, then the connection died): only as many as went unanswered.
    assert len(stored) - len(acknowledged) <= len(burst.unacknowledged)

    outbox = await query(
        reports_db,
        "SELECT event_id, published_at FROM outbox WHERE event_type = :t",
        t=SUBMITTED_TYPE,
    )
    event_ids = {row[0] for row in outbox}
    assert len(event_ids) == len(stored), (len(event_ids), len(stored))

    progress: dict[str, int] = {}

    async def caught_up() -> bool:
        progress.update(
            stored=len(stored),
            receipts=len(set(receipt_counts(inbox)) & set(stored)),
            unpublished=await _count(
                reports_db,
                "SELECT COUNT(*) FROM outbox WHERE event_type = :t AND published_at IS NULL",
            ),
            handled=await _count(notify_db, "SELECT COUNT(*) FROM inbox WHERE event_type = :t"),
            sent=await _count(
                notify_db,
                "SELECT COUNT(*) FROM deliveries WHERE event_type = :t AND status = 'sent'",
            ),
        )
        want = len(stored)
        done = {"receipts": want, "unpublished": 0, "handled": want, "sent": want}
        return all(progress[k] == v for k, v in done.items())

    try:
        await eventually(caught_up, timeout=catch_up_seconds(len(stored)), interval=0.5)
    except TimeoutError as exc:
        raise AssertionError(f"the system did not catch up: {progress}") from exc

    assert await stream_count(nats_url) == len(stored), "the stream holds a repeat or lacks one"
    handled = await query(
        notify_db, "SELECT consumer, event_id FROM inbox WHERE event_type = :t", t=SUBMITTED_TYPE
    )
    assert {row[0] for row in handled} == {"notify-reports"}
    assert {row[1] for row in handled} == event_ids
    deliveries = await query(
        notify_db,
        "SELECT event_id, status, digest FROM deliveries WHERE event_type = :t",
        t=SUBMITTED_TYPE,
    )
    assert {row[0] for row in deliveries} == event_ids
    assert Counter(row[0] for row in deliveries if not row[2]) == {e: 1 for e in event_ids}
    assert {row[1] for row in deliveries} == {"sent"}

    receipts = receipt_counts(inbox)
    assert set(receipts) == set(stored), "a receipt for a report that is not stored"
    repeats = {r: n for r, n in receipts.items() if n > 1}
    assert all(n == 2 for n in repeats.values()), repeats
    assert len(repeats) <= smtp_repeats, repeats
    # A repeat carries the original's Message-ID (the delivery key): one id per receipt.
    ids = {m.message_id for m in inbox.with_subject(RECEIPT)}
    assert len(ids) == len(stored)


async def _count(url: str, sql: str) -> int:
    return int((await query(url, sql, t=SUBMITTED_TYPE))[0][0])
