"""Live updates for the board: a plain NATS subscription (no durable consumer: a board that
missed something while disconnected reads the API again on its next load) to report,
consolidation, staff conference, recommendation and inspection events, fanned out to the
browsers' server-sent event streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import nats
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.portal.settings import PortalSettings
from shared.bus.streams import PORTAL_SUBJECTS as SUBJECTS

log = structlog.get_logger(__name__)
QUEUE_SIZE = 100
ANY = "*"
"""A change's plan, schedule key or receiving unit that matches every board's. A staff
conference has no schedule key (each board of its plan and receiving unit shows the
conferences); a recommendation or an inspection names neither an entry nor a receiving unit,
and an inspection outside a plan no plan (the boards count them per unit for their period)."""
OVERSIGHT_IDS = ("recommendation_id", "inspection_id", "action_id")


@dataclass(frozen=True)
class Change:
    """Something that changes a board: which plan entry and receiving unit, which unit."""

    plan_id: str
    schedule_key: str
    receiving_unit: str
    unit_code: str
    event_type: str

    def json(self) -> str:
        return json.dumps(self.__dict__)


def change_of(subject: str, headers: dict[str, str], data: bytes) -> Change | None:
    try:
        body: Any = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    nested = body.get("obligation")
    ref: dict[str, Any] = nested if isinstance(nested, dict) else body
    if "conference_id" in body and "schedule_key" not in body:
        ref = {**body, "schedule_key": ANY}
    elif any(key in body for key in OVERSIGHT_IDS) and "schedule_key" not in body:
        unit = body.get("addressed_unit") or body.get("inspected_unit") or ""
        plan = body.get("plan_id") or ANY
        ref = {"plan_id": plan, "schedule_key": ANY, "receiving_unit": ANY, "unit_code": unit}
    try:
        return Change(
            plan_id=str(ref["plan_id"]),
            schedule_key=str(ref["schedule_key"]),
            receiving_unit=str(ref["receiving_unit"]),
            unit_code=str(ref.get("unit_code", "")),
            event_type=headers.get("ce-type", subject),
        )
    except KeyError:
        return None


@dataclass
class LiveHub:
    """Each open board has a queue; a change goes to the boards it concerns. A board too slow
    to drain its queue misses changes rather than holding up the others."""

    listeners: dict[asyncio.Queue[Change | None], tuple[str, str, str]] = field(
        default_factory=dict
    )

    def listen(self, key: tuple[str, str, str]) -> asyncio.Queue[Change | None]:
        queue: asyncio.Queue[Change | None] = asyncio.Queue(QUEUE_SIZE)
        self.listeners[queue] = key
        return queue

    def leave(self, queue: asyncio.Queue[Change | None]) -> None:
        self.listeners.pop(queue, None)

    def publish(self, change: Change) -> None:
        key = (change.plan_id, change.schedule_key, change.receiving_unit)
        for queue, wanted in list(self.listeners.items()):
            if all(have in (ANY, want) for have, want in zip(key, wanted, strict=True)):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(change)

    def close(self) -> None:
        """Ends every stream (at shutdown, so that open boards do not hold the server)."""
        for queue in list(self.listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self.listeners.clear()


class BusFeed:
    def __init__(self, settings: PortalSettings, hub: LiveHub) -> None:
        self.settings = settings
        self.hub = hub
        self.connection: Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect in the background: the portal serves pages while NATS is away, and its
        boards go live once it is there (nats-py keeps trying, and reconnects later)."""
        self._task = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        async def on_message(msg: Msg) -> None:
            change = change_of(msg.subject, dict(msg.headers or {}), msg.data)
            if change is not None:
                self.hub.publish(change)

        warned = False

        async def on_error(exc: Exception) -> None:
            nonlocal warned
            if not warned:  # once, not at every attempt
                log.warning("portal: no live updates while NATS is away", error=repr(exc))
                warned = True

        connection = await nats.connect(
            [u.strip() for u in self.settings.nats_url.split(",")],
            name="qcdc-portal",
            user=self.settings.nats_user,
            password=self.settings.nats_password,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=2,
            error_cb=on_error,
        )
        for subject in SUBJECTS:
            await connection.subscribe(subject, cb=on_message)
        self.connection = connection

    @property
    def connected(self) -> bool:
        return self.connection is not None and self.connection.is_connected

    async def stop(self) -> None:
        self.hub.close()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
