"""The three services on a manual clock with a real SMTP server, for the tests that run the
deadline clock themselves and read what notify sent (test_deadline_rules.py,
test_notify_rules.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from services.natsd import free_port
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from services.reports.handlers.clock import run_clock
from services.reports.settings import ReportsSettings
from shared.clock import ManualClock
from tests.stack import issue_plan, start_services, stop_services
from tests.support import InProcessService, Received, SmtpInbox, eventually

CONTACTS: dict[str, dict[str, str]] = {
    "T89-SNV": {"focal_email": "vanphong@snv.anbinh.gov.vn"},
    "T89-STP": {"focal_email": "daumoi@stp.anbinh.gov.vn"},
    "H801": {"focal_email": "vanphong@tanphu.gov.vn", "head_email": "chutich@tanphu.gov.vn"},
    "H802": {"focal_email": "vanphong@longhung.gov.vn"},
}
"""The addresses of test_plan_lifecycle's units that notify writes to."""
SNV = CONTACTS["T89-SNV"]["focal_email"]
STP = CONTACTS["T89-STP"]["focal_email"]
H801 = CONTACTS["H801"]["focal_email"]
H801_HEAD = CONTACTS["H801"]["head_email"]
H802 = CONTACTS["H802"]["focal_email"]


class Inbox(SmtpInbox):
    """The real SMTP server, refusing the recipients a test names (as a full mailbox)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, port: int) -> None:
        super().__init__(loop, port)
        self.refused: set[str] = set()

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address in self.refused:
            return "550 5.2.2 Mailbox full"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def to(self, address: str, prefix: str = "") -> list[Received]:
        return [m for m in self.items if address in m.recipients and m.subject.startswith(prefix)]

    async def one(self, address: str, prefix: str, count: int = 1) -> Received:
        """Wait for ``count`` mails to ``address`` with that subject prefix; the last one."""
        await self.wait_for(lambda _: len(self.to(address, prefix)) >= count)
        return self.to(address, prefix)[-1]


@dataclass
class ClockedSystem:
    plans: InProcessService
    reports: InProcessService
    notify: InProcessService
    clock: ManualClock
    inbox: Inbox

    async def at(self, instant: datetime) -> list[str]:
        """Move time and run the deadline clock once; the steps it fired, sorted."""
        self.clock.set(instant)
        settings = self.reports.settings
        assert isinstance(settings, ReportsSettings)
        run = await run_clock(instant, self.reports.runtime.uow, settings)
        assert run.failed == []
        return sorted(f"{f.unit_code}:{f.step}" for f in run.fired)

    async def deliveries(self, **params: str) -> list[dict[str, Any]]:
        async with self.notify.client() as http:
            response = await http.get("/deliveries", params={"limit": "1000", **params})
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    async def all_sent(self, count: int, **params: str) -> list[dict[str, Any]]:
        """The delivery log once ``count`` deliveries matching ``params`` are sent."""

        async def probe() -> list[dict[str, Any]]:
            found = await self.deliveries(**params)
            done = len(found) >= count and all(d["status"] == "sent" for d in found)
            return found if done else []

        sent: list[dict[str, Any]] = await eventually(probe)
        return sent


@asynccontextmanager
async def clocked_services(
    nats_url: str,
    database_urls: Mapping[str, str],
    clock: ManualClock,
    inbox: Inbox,
    reports: Mapping[str, Any] | None = None,
    notify: Mapping[str, Any] | None = None,
) -> AsyncIterator[dict[str, InProcessService]]:
    """Plans, reports (its clock left to the test) and notify (mail to ``inbox`` at once,
    digests at 07:00); ``reports`` and ``notify`` add to their settings."""
    extra: dict[str, dict[str, Any]] = {
        "reports": {"clock_interval_seconds": 3600, **(reports or {})},
        "notify": {
            "smtp_port": inbox.port,
            "delivery_poll_seconds": 0.05,
            "digest_poll_seconds": 0.1,
            "digest_hour": 7,
            **(notify or {}),
        },
    }
    running = await start_services(
        (PLANS, REPORTS, NOTIFY), database_urls, clock, extra, nats_url=nats_url
    )
    try:
        yield running
    finally:
        await stop_services(running)


def started_inbox() -> Inbox:
    inbox = Inbox(asyncio.get_running_loop(), free_port())
    inbox.start()
    return inbox


async def issue_with_contacts(
    plans: httpx.AsyncClient,
    units: list[dict[str, Any]],
    contacts: Mapping[str, dict[str, str]],
    plan: Mapping[str, Any],
) -> dict[str, Any]:
    """Register ``units`` with their ``contacts``, then draft and issue ``plan``."""
    for unit in units:
        body = {**unit, "contacts": contacts.get(unit["code"], {})}
        assert (await plans.post("/units", json=body)).status_code == 201
    return await issue_plan(plans, plan)
