"""Prometheus metrics of one service process, served at ``/metrics``.

Counters are bumped where things happen (an HTTP answer, an event handled, a delivery
attempt, a deadline step fired): an increment of a labelled child, nothing more on the hot
paths. What needs a question to the database or to JetStream (outbox backlog and the age of
its oldest row, each durable consumer's pending and ack-pending counts) is asked once per
scrape, by :meth:`Metrics.refresh`, never per request.

Labels stay bounded: route templates (``/reports/{report_id}``), consumer durables, event
outcomes, channels, statuses, step kinds and reason classes; never unit codes or ids.
Each service (each :class:`shared.runtime.Runtime`) has its own registry, so several
services in one process (the tests) do not mix their numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
import structlog
from faststream.nats.prometheus.provider import (
    BatchNatsMetricsSettingsProvider,
    NatsMetricsSettingsProvider,
    settings_provider_factory,
)
from faststream.prometheus import ConsumeAttrs
from faststream.prometheus.middleware import PrometheusMiddleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.asgi import HttpMiddleware, ResponseStatus
from shared.bus.streams import Durable

log = structlog.get_logger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
SCRAPE_TIMEOUT_S = 3.0
"""At most this long asking JetStream and the database during one scrape."""
UNMATCHED_ROUTE = "<unmatched>"
"""The route label of a request that matched no route (404s, refusals before routing)."""

EVENT_OUTCOMES = ("handled", "skipped", "retried", "dead_lettered")
DEAD_LETTER_REASONS = ("malformed", "undeliverable", "gave_up", "max_deliveries")


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        # Every metric of this service in its registry, never in the process's default one.
        counter = partial(Counter, registry=registry)
        gauge = partial(Gauge, registry=registry)
        self.http_requests = counter(
            "qcdc_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
        )
        self.http_duration = Histogram(
            "qcdc_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.events = counter(
            "qcdc_events",
            "Events taken from the bus by each consumer, by outcome: handled, skipped "
            "(already handled, unknown type, no handler), retried, dead_lettered",
            ["consumer", "outcome"],
        )
        self.dead_letters = counter(
            "qcdc_dead_letters",
            "Messages sent to the dead letters, by consumer and reason class: malformed "
            "(cannot be decoded), undeliverable (a handler refused it), gave_up (the "
            "handler kept failing), max_deliveries (JetStream's delivery limit)",
            ["consumer", "reason"],
        )
        self.outbox_published = counter(
            "qcdc_outbox_published",
            "Outbox rows the relay published to JetStream",
        )
        self.deliveries = counter(
            "qcdc_deliveries",
            "Notification delivery attempts, by channel and status: sent, retry, failed",
            ["channel", "status"],
        )
        self.clock_steps = counter(
            "qcdc_clock_steps",
            "Deadline steps the clock fired, by kind: approaching, missed, urge",
            ["kind"],
        )
        self.outbox_backlog = gauge(
            "qcdc_outbox_backlog",
            "Outbox rows not yet published (at the last scrape)",
        )
        self.outbox_oldest_age = gauge(
            "qcdc_outbox_oldest_unpublished_age_seconds",
            "Age of the oldest outbox row not yet published; 0 when none waits",
        )
        self.consumer_pending = gauge(
            "qcdc_consumer_pending",
            "Messages of the stream the durable consumer has not been given yet",
            ["consumer"],
        )
        self.consumer_ack_pending = gauge(
            "qcdc_consumer_ack_pending",
            "Messages given to the durable consumer and not acknowledged yet",
            ["consumer"],
        )
        self.nats_connected = gauge("qcdc_nats_connected", "1 while connected to NATS")
        self.database_up = gauge(
            "qcdc_database_up", "1 when the database answered at the last scrape"
        )

    def declare_consumer(self, consumer: str) -> None:
        """Show a consumer's counters at 0 before its first event, so rates work."""
        for outcome in EVENT_OUTCOMES:
            self.events.labels(consumer, outcome)
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(consumer, reason)

    def broker_middleware(self) -> PrometheusMiddleware[Any, Any]:
        """FastStream's own message metrics (``faststream_*``), with subjects cut to their
        event type so that unit codes never become labels."""
        return PrometheusMiddleware(
            settings_provider_factory=_subject_templates,
            registry=self.registry,
            app_name=self.service,
        )

    async def refresh(
        self,
        *,
        engine: AsyncEngine,
        outbox: sa.Table,
        now: datetime,
        jetstream: Any | None,
        durables: Sequence[Durable],
    ) -> None:
        """Ask the database and JetStream for the gauges, at scrape time, within a bound."""
        await asyncio.gather(
            self._refresh_outbox(engine, outbox, now),
            self._refresh_lag(jetstream, durables),
        )

    async def _refresh_outbox(self, engine: AsyncEngine, outbox: sa.Table, now: datetime) -> None:
        # The unpublished rows are few and indexed (published_at, seq): one cheap query.
        query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
            outbox.c.published_at.is_(None)
        )
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT_S), engine.connect() as conn:
                count, oldest = (await conn.execute(query)).one()
        except Exception as exc:
            log.warning("metrics: outbox not read", error=repr(exc))
            self.database_up.set(0)
            return
        self.database_up.set(1)
        self.outbox_backlog.set(count)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        self.outbox_oldest_age.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)

    async def _refresh_lag(self, jetstream: Any | None, durables: Sequence[Durable]) -> None:
        self.nats_connected.set(1 if jetstream is not None else 0)
        if jetstream is None:  # unknown while NATS is away: no numbers rather than stale ones
            self.consumer_pending.clear()
            self.consumer_ack_pending.clear()
            return
        await asyncio.gather(*(self._read_lag(jetstream, durable) for durable in durables))

    async def _read_lag(self, jetstream: Any, durable: Durable) -> None:
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT_S):
                info = await jetstream.consumer_info(durable.stream, durable.name)
        except Exception as exc:
            # Unknown now: no number rather than a stale one.
            log.warning("metrics: consumer not read", consumer=durable.name, error=repr(exc))
            for gauge in (self.consumer_pending, self.consumer_ack_pending):
                with contextlib.suppress(KeyError):
                    gauge.remove(durable.name)
            return
        self.consumer_pending.labels(durable.name).set(info.num_pending or 0)
        self.consumer_ack_pending.labels(durable.name).set(info.num_ack_pending or 0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class HttpMetrics(HttpMiddleware):
    """ASGI middleware: one counter increment and one histogram observation per request,
    labelled with the route template the router matched (never the concrete path). The
    labelled children are looked up once per method, route and status (a bounded set),
    not through the registry's lock on every request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = ResponseStatus(send)
        try:
            await self.app(scope, receive, status)
        finally:
            route = scope.get("route")
            key = (scope["method"], getattr(route, "path", None) or UNMATCHED_ROUTE, status.code)
            children = self._children.get(key)
            if children is None:
                method, template, _ = key
                children = self._children[key] = (
                    self.metrics.http_requests.labels(method, template, str(status.code)),
                    self.metrics.http_duration.labels(method, template),
                )
            requests, duration = children
            requests.inc()
            duration.observe(time.perf_counter() - started)


def subject_template(subject: str) -> str:
    """``qcdc.v1.report.submitted.T89.H886`` → ``qcdc.v1.report.submitted``: the event type
    without the unit path (dead-letter subjects keep their consumer, a bounded set)."""
    tokens = subject.split(".")
    if len(tokens) > 2 and tokens[2] == "deadletter":
        return subject
    return ".".join(tokens[:4])


class _Templated:
    """FastStream's own provider of a message's metric attributes, with the subject cut to
    its event type."""

    def __init__(
        self, inner: NatsMetricsSettingsProvider | BatchNatsMetricsSettingsProvider
    ) -> None:
        self.inner = inner
        self.messaging_system = inner.messaging_system

    def get_consume_attrs_from_message(self, msg: Any) -> ConsumeAttrs:
        attrs = self.inner.get_consume_attrs_from_message(msg)
        attrs["destination_name"] = subject_template(attrs["destination_name"])
        return attrs

    def get_publish_destination_name_from_cmd(self, cmd: Any) -> str:
        return subject_template(self.inner.get_publish_destination_name_from_cmd(cmd))


def _subject_templates(msg: Any) -> Any:
    inner = settings_provider_factory(msg)
    return _Templated(inner) if inner is not None else None
