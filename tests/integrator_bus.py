"""A secured bus with real events on it, for the integrator tests (Python and Node.js).

The server runs with the users and permissions ``qcdc nats config`` generates; streams are
provisioned by ``admin``; events are real CloudEvents (``shared.bus.envelope.encode``)
published by the service that owns them, with that service's own credential.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import nats
from nats.aio.client import Client

from services import nats_auth
from services.nats_auth import RegistryUnit
from services.nats_principals import principals
from services.natsd import NatsServer, free_port
from shared.bus.envelope import encode
from shared.bus.streams import provision
from shared.events import DeadlineMissed, Event, ObligationRef, ReportKind, UnitRegistered

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = [
    RegistryUnit("T89", "province", ("T89",)),
    RegistryUnit("H801", "district", ("T89", "H801")),
    RegistryUnit("X80101", "commune", ("T89", "H801", "X80101")),
    RegistryUnit("H802", "district", ("T89", "H802")),
    RegistryUnit("X80201", "commune", ("T89", "H802", "X80201")),
]
INTEGRATORS = ("dash", "egov-h801:H801")
NAMES = {
    "T89": "Ủy ban nhân dân tỉnh An Bình",
    "H801": "Ủy ban nhân dân huyện Tân Phú",
    "X80101": "Ủy ban nhân dân xã Tân An",
    "H802": "Ủy ban nhân dân huyện Long Hòa",
    "X80201": "Ủy ban nhân dân xã Long Hòa",
}
OWNER = {"unit": "plans", "deadline": "reports"}


@dataclass
class SecuredBus:
    server: NatsServer
    passwords: dict[str, str]
    envs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    async def connect(self, user: str, **options: object) -> Client:
        return await nats.connect(
            self.url,
            user=user,
            password=self.passwords[user],
            allow_reconnect=False,
            **options,  # type: ignore[arg-type]
        )

    def env(self, user: str) -> dict[str, str]:
        """What the user's generated env file says, plus the server's URL."""
        return {
            "QCDC_NATS_URL": self.url,
            "QCDC_NATS_USER": user,
            "QCDC_NATS_PASSWORD": self.passwords[user],
            **self.envs.get(user, {}),
        }


def start_secured_bus(store: Path, integrators: Sequence[str] = INTEGRATORS) -> SecuredBus:
    bundle = nats_auth.credentials(principals(REGISTRY, integrators=integrators), existing={})
    server = NatsServer(store, free_port(), authorization=nats_auth.render_authorization(bundle))
    server.start()
    return SecuredBus(
        server,
        {c.user: c.password for c in bundle},
        {c.user: dict(c.principal.env) for c in bundle},
    )


async def provision_streams(bus: SecuredBus) -> None:
    admin = await bus.connect("admin")
    try:
        await provision(admin.jetstream())
    finally:
        await admin.close()


def unit_events() -> list[Event]:
    """One registration per unit, in registry order."""
    return [
        UnitRegistered(
            unit_path=list(unit.path),
            code=unit.code,
            name=NAMES[unit.code],
            kind=unit.kind,
            parent_code=unit.path[-2] if len(unit.path) > 1 else None,
        )
        for unit in REGISTRY
    ]


def deadline_events(step: int = 0) -> list[Event]:
    """A missed deadline for each commune."""
    due = datetime(2026, 6, 20, 10, tzinfo=UTC)
    return [
        DeadlineMissed(
            unit_path=list(unit.path),
            obligation=ObligationRef(
                obligation_id=f"ob-{unit.code}-{step}",
                plan_id="plan-1",
                schedule_key="2026-H1",
                report_kind=ReportKind.SIX_MONTH,
                unit_code=unit.code,
                receiving_unit=unit.path[-2],
                period_start=date(2025, 12, 15),
                period_end=date(2026, 6, 14),
                due_at=due,
            ),
            step=step,
        )
        for unit in REGISTRY
        if unit.kind == "commune"
    ]


async def publish_events(
    bus: SecuredBus, events: Sequence[Event], at: datetime | None = None
) -> list[tuple[str, dict[str, str]]]:
    """Publish as the owning service; returns (subject, headers) of each, in order."""
    sent: list[tuple[str, dict[str, str]]] = []
    clients: dict[str, Client] = {}
    try:
        for index, event in enumerate(events):
            owner = OWNER[event.aggregate]
            if owner not in clients:
                clients[owner] = await bus.connect(f"svc-{owner}")
            when = (at or datetime.now(UTC)) + timedelta(milliseconds=index)
            subject, headers, body = encode(
                event, source=f"/qcdc/{owner}", correlation_id="it-test", time=when
            )
            await clients[owner].jetstream().publish(subject, body, headers=headers, timeout=5)
            sent.append((subject, headers))
    finally:
        for client in clients.values():
            await client.close()
    return sent


# --- Node.js --------------------------------------------------------------------------------


async def publish_forged(bus: SecuredBus, event: Event) -> str:
    """Publish, as the reports service, a message in ``event``'s subtree whose Nats-Msg-Id
    is not its ce-id: not a QCDC event, which integrators must reject. Returns the ce-id."""
    subject, headers, body = encode(event, source="/qcdc/reports", correlation_id="forged")
    headers["Nats-Msg-Id"] = f"forged-{headers['ce-id']}"
    reports = await bus.connect("svc-reports")
    await reports.jetstream().publish(subject, body, headers=headers)
    await reports.close()
    return headers["ce-id"]


def npm_ready(package_dir: Path) -> str | None:
    """Install a package folder's locked dependencies (``npm ci``) when missing; the reason
    to skip when Node.js or npm is not on the machine, None when ready."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js and npm are not installed (apt-get install nodejs npm)"
    # One install at a time: a second test run (or xdist worker) on the same clone would
    # otherwise run `npm ci` in the same folder at once, each deleting the other's files.
    with (package_dir / ".npm-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (package_dir / "node_modules" / ".package-lock.json").is_file():
            cache = Path(os.environ.get("QCDC_NPM_CACHE", ROOT / ".npm-cache"))
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--cache", str(cache)],
                cwd=package_dir,
                check=True,
                capture_output=True,
                timeout=600,
            )
    return None
