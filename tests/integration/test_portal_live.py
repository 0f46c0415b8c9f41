"""The portal's live feed: it starts before NATS does, keeps trying, and once connected
passes each report event to the boards open on its plan entry and receiving unit, and each
recommendation or inspection event to every board that counts it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from services.natsd import NatsServer, free_port
from services.portal.adapters.live import BusFeed, LiveHub
from services.portal.settings import PortalSettings
from tests.support import eventually, patience


async def _publish(client: Client, subject: str, body: dict[str, Any]) -> None:
    """An event as the feed reads it: the JSON body, and the ce-type its subject names."""
    _, _, aggregate, event, *_ = subject.split(".")
    headers = {"ce-type": f"qcdc.{aggregate}.{event}.v1"}
    await client.publish(subject, json.dumps(body).encode(), headers=headers)


async def test_the_feed_waits_for_nats_and_then_follows_the_reports(tmp_path: Path) -> None:
    port = free_port()
    hub = LiveHub()
    feed = BusFeed(PortalSettings(nats_url=f"nats://127.0.0.1:{port}"), hub)
    await feed.start()  # nothing listens yet
    assert not feed.connected
    board = hub.listen(("p1", "six_month", "T89-SNV"))
    elsewhere = hub.listen(("p1", "six_month", "H801"))
    server = NatsServer(tmp_path / "nats", port)
    server.start()
    try:

        async def connected() -> bool:
            return feed.connected

        await eventually(connected)
        client = await nats.connect(server.url)
        body = {
            "report_id": "r1",
            "obligation": {
                "plan_id": "p1",
                "schedule_key": "six_month",
                "receiving_unit": "T89-SNV",
                "unit_code": "X001",
            },
        }
        await _publish(client, "qcdc.v1.report.returned.T89.X001", body)
        await client.publish("qcdc.v1.plan.issued.T89", b"{}")  # not the board's business
        # A staff conference recorded concerns every board of its plan and receiving unit.
        conference = {
            "conference_id": "c1",
            "plan_id": "p1",
            "unit_code": "T89-STP",
            "receiving_unit": "T89-SNV",
        }
        await _publish(client, "qcdc.v1.conference.recorded.T89.T89-STP", conference)
        # A recommendation answered changes the recommendation counts of every board.
        answered = {
            "recommendation_id": "k1",
            "addressed_unit": "H801",
            "registered_by_unit": "H801",
        }
        await _publish(client, "qcdc.v1.recommendation.answered.T89.H801", answered)
        await client.flush()
        change = await asyncio.wait_for(board.get(), patience(10))
        assert change is not None
        assert (change.unit_code, change.event_type) == ("X001", "qcdc.report.returned.v1")
        recorded = await asyncio.wait_for(board.get(), patience(10))
        assert recorded is not None
        assert (recorded.unit_code, recorded.event_type) == (
            "T89-STP",
            "qcdc.conference.recorded.v1",
        )
        for listening in (board, elsewhere):
            recommendation = await asyncio.wait_for(listening.get(), patience(10))
            assert recommendation is not None
            assert recommendation.event_type == "qcdc.recommendation.answered.v1"
        assert elsewhere.empty()  # another receiving unit's board is told nothing else
        await client.close()
    finally:
        await feed.stop()
        server.stop()
    assert await board.get() is None  # stopping ends the open boards' streams
