"""Health and metrics from outside, on a real nats-server and real HTTP: ``/readyz`` follows
NATS going away and coming back, and a durable consumer disappearing; ``/metrics`` shows a
stopped consumer's lag and an outbox backlog rise, and both fall once the consumer is back
and NATS returns. (The database going away: tests/integration/test_database_outage.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from services.natsd import NatsServer
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from tests.integration.scenario import UNITS, register_units_and_issue_plan
from tests.stack import sqlite_urls, start_services, stop_services
from tests.support import InProcessService, SmtpInbox, eventually


@pytest.fixture
async def plans_and_notify(
    nats_server: NatsServer, tmp_path: Path, smtp_inbox: SmtpInbox
) -> AsyncIterator[dict[str, InProcessService]]:
    mail = {"notify": {"smtp_port": smtp_inbox.port}}
    services = await start_services(
        (PLANS, NOTIFY), sqlite_urls(tmp_path), extra=mail, nats_url=nats_server.url
    )
    yield services
    await stop_services(services)


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics``, by name and labels."""
    answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def readiness(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/readyz")
    body: dict[str, Any] = answer.json()
    assert answer.status_code == (200 if body["status"] == "ready" else 503), body
    return body


async def test_readyz_follows_nats_and_the_durable_consumers(
    plans_and_notify: dict[str, InProcessService], nats_server: NatsServer
) -> None:
    async with plans_and_notify["notify"].client() as notify:
        assert (await readiness(notify)) == {
            "service": "notify",
            "status": "ready",
            "checks": {"database": "ok", "nats": "ok", "streams": "ok", "consumers": "ok"},
        }
        assert (await notify.get("/healthz")).json()["status"] == "ready"

        nats_server.stop()

        async def nats_down() -> dict[str, Any] | None:
            body = await readiness(notify)
            return body if body["checks"]["nats"] == "down" else None

        body = await eventually(nats_down)
        assert body["status"] == "not ready"
        assert body["reasons"] == ["NATS is not connected"]
        assert body["checks"]["database"] == "ok"
        assert (await notify.get("/healthz")).status_code == 503
        assert (await notify.get("/livez")).json() == {"service": "notify", "status": "alive"}

        nats_server.start()

        async def ready() -> bool:
            return bool((await readiness(notify))["status"] == "ready")

        await eventually(ready)

        # A durable consumer deleted under the running service (a restored NATS store, an
        # operator's mistake) is named.
        nc = await nats.connect(nats_server.url)
        try:
            await nc.jetstream().delete_consumer("QCDC_REPORTS", "notify-deadlines")
        finally:
            await nc.close()
        body = await readiness(notify)
        assert body["status"] == "not ready"
        assert body["checks"]["consumers"] == "missing"
        assert body["reasons"] == ["durable consumer(s) not found: notify-deadlines"]


async def test_readyz_names_a_database_behind_the_code(
    plans_and_notify: dict[str, InProcessService],
) -> None:
    notify = plans_and_notify["notify"]
    engine = notify.runtime.engine
    async with engine.begin() as conn:
        head = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    async with notify.client() as client:
        body = await readiness(client)
        assert body["status"] == "not ready"
        assert body["checks"]["database"] == "not migrated"
        assert body["reasons"] == [f"the database is at revision 0001, this code expects {head}"]
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("UPDATE alembic_version SET version_num = :head"), {"head": head}
            )
        assert (await readiness(client))["status"] == "ready"


def _subscriber(service: InProcessService, durable: str) -> Any:
    subscribers: list[Any] = list(service.runtime.broker.subscribers)
    found = [s for s in subscribers if s.config.durable_name == durable]
    assert len(found) == 1, durable
    return found[0]


async def test_metrics_show_lag_and_outbox_backlog_rise_and_fall(
    plans_and_notify: dict[str, InProcessService], nats_server: NatsServer
) -> None:
    plans_service, notify_service = plans_and_notify["plans"], plans_and_notify["notify"]
    async with plans_service.client() as plans, notify_service.client() as notify:
        before = await scrape(notify)
        assert value(before, "qcdc_consumer_pending", consumer="notify-units") == 0
        assert value(before, "qcdc_events_total", consumer="notify-units", outcome="handled") == 0
        assert value(before, "qcdc_nats_connected") == 1

        # Notify's consumer of unit events stops; the registry goes on registering units.
        units = _subscriber(notify_service, "notify-units")
        await units.stop()
        await register_units_and_issue_plan(plans)

        async def lag_risen() -> dict[Any, float] | None:
            samples = await scrape(notify)
            pending = value(samples, "qcdc_consumer_pending", consumer="notify-units") or 0
            return samples if pending >= len(UNITS) else None

        samples = await eventually(lag_risen)
        handled = value(samples, "qcdc_events_total", consumer="notify-units", outcome="handled")
        assert handled == 0

        # Without the units' contacts, the plan's notices wait: retried, not lost.
        async def plan_retried() -> bool:
            samples = await scrape(notify)
            return bool(
                value(samples, "qcdc_events_total", consumer="notify-plans", outcome="retried")
            )

        await eventually(plan_retried)

        await units.start()

        async def lag_gone() -> dict[Any, float] | None:
            samples = await scrape(notify)
            pending = value(samples, "qcdc_consumer_pending", consumer="notify-units")
            in_hand = value(samples, "qcdc_consumer_ack_pending", consumer="notify-units")
            return samples if pending == 0 and in_hand == 0 else None

        samples = await eventually(lag_gone)
        assert value(
            samples, "qcdc_events_total", consumer="notify-units", outcome="handled"
        ) == len(UNITS)

        async def plan_handled() -> bool:
            samples = await scrape(notify)
            return bool(
                value(samples, "qcdc_events_total", consumer="notify-plans", outcome="handled")
            )

        await eventually(plan_handled)

        # The plan's notices go out by e-mail: counted by channel and status.
        async def mailed() -> bool:
            samples = await scrape(notify)
            sent = value(samples, "qcdc_deliveries_total", channel="email", status="sent")
            return bool(sent)

        await eventually(mailed)
        samples = await scrape(notify)
        assert value(samples, "qcdc_deliveries_total", channel="webhook", status="failed") == 0
        # FastStream's own metrics, with the subject cut to the event type (no unit codes).
        faststream = [name for name, labels in samples if name.startswith("faststream_")]
        assert "faststream_received_messages_total" in faststream
        handlers = {
            dict(labels).get("handler")
            for name, labels in samples
            if name == "faststream_received_messages_total"
        }
        assert "qcdc.v1.unit.registered" in handlers, handlers
        assert not any("T89" in (handler or "") for handler in handlers), handlers

        # NATS goes away: the registry still takes a unit, which waits in the outbox.
        assert value(await scrape(plans), "qcdc_outbox_backlog") == 0
        nats_server.stop()

        async def disconnected() -> bool:
            return value(await scrape(plans), "qcdc_nats_connected") == 0

        await eventually(disconnected)
        added = await plans.post(
            "/units",
            json={"code": "X99999", "name": "Xã Thử", "kind": "commune", "parent_code": "T89"},
        )
        assert added.status_code == 201, added.text

        async def backlog_aged() -> dict[Any, float] | None:
            samples = await scrape(plans)
            backlog = value(samples, "qcdc_outbox_backlog") or 0
            age = value(samples, "qcdc_outbox_oldest_unpublished_age_seconds") or 0
            return samples if backlog >= 1 and age > 0 else None

        await eventually(backlog_aged)

        nats_server.start()

        async def backlog_gone() -> bool:
            samples = await scrape(plans)
            return (
                value(samples, "qcdc_outbox_backlog") == 0
                and value(samples, "qcdc_outbox_oldest_unpublished_age_seconds") == 0
            )

        await eventually(backlog_gone)
        samples = await scrape(plans)
        assert (value(samples, "qcdc_outbox_published_total") or 0) >= len(UNITS) + 2
        routes = {
            dict(labels)["route"]
            for name, labels in samples
            if name == "qcdc_http_requests_total" and dict(labels)["status"] == "201"
        }
        assert "/units" in routes and "/plans" in routes, routes
        # Route templates, never concrete paths with ids in them.
        assert "/plans/{plan_id}/issue" in {
            dict(labels)["route"] for name, labels in samples if name == "qcdc_http_requests_total"
        }


DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "qcdc.json"
METRIC_NAME = re.compile(r"\b((?:qcdc|faststream|process)_[a-z0-9_]+)\b")
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created")


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    variables = dashboard["templating"]["list"]
    exprs += [v["definition"] for v in variables if v.get("type") == "query"]
    return exprs


async def test_every_metric_the_dashboard_queries_is_exported(
    plans_and_notify: dict[str, InProcessService],
) -> None:
    queried = {name for expr in dashboard_queries() for name in METRIC_NAME.findall(expr)}
    assert len(queried) >= 15, queried
    for service in plans_and_notify.values():
        async with service.client() as client:
            answer = await client.get("/metrics")
        exported = {
            family.name + suffix
            for family in text_string_to_metric_families(answer.text)
            for suffix in SUFFIXES
        }
        missing = queried - exported
        assert not missing, f"{service.definition.name} does not export {sorted(missing)}"
