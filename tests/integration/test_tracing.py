"""Traces across services: one submission's spans (the HTTP request in reports, the outbox
relay's publish, notify's consumer) share one trace, carried on the bus by the CloudEvents
``traceparent`` header that the outbox row stored with the event. The services run
in-process with the OpenTelemetry SDK's in-memory exporter; everything else is real."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.natsd import NatsServer
from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared.clock import ManualClock
from shared.tracing import Tracing, sdk_provider
from tests.integration.scenario import obligated_codes, register_units_and_issue_plan
from tests.support import BusSpy, InProcessService, SmtpInbox, eventually, service_settings

LAST_ON_TIME = datetime(2023, 6, 9, 16, 59, 59, tzinfo=UTC)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced_system(
    nats_server: NatsServer, tmp_path: Path, smtp_inbox: SmtpInbox, spans: InMemorySpanExporter
) -> AsyncIterator[dict[str, InProcessService]]:
    clock = ManualClock(LAST_ON_TIME)
    services = {}
    for definition, extra in (
        (PLANS, {}),
        (REPORTS, {}),
        (NOTIFY, {"smtp_port": smtp_inbox.port, "delivery_poll_seconds": 0.05}),
    ):
        provider = sdk_provider(definition.name)
        provider.add_span_processor(SimpleSpanProcessor(spans))
        settings = service_settings(
            definition,
            nats_url=nats_server.url,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/{definition.name}.db",
            **extra,
        )
        service = InProcessService(definition, settings, clock, Tracing(provider, enabled=True))
        services[definition.name] = await service.start()
    yield services
    for service in reversed(services.values()):
        await service.stop()


def _service_of(span: Any) -> str:
    return str(span.resource.attributes["service.name"])


async def test_one_submissions_spans_in_reports_and_notify_share_a_trace(
    traced_system: dict[str, InProcessService], spans: InMemorySpanExporter, bus_spy: BusSpy
) -> None:
    async with traced_system["plans"].client() as plans, traced_system["reports"].client() as rc:
        await register_units_and_issue_plan(plans)

        async def obligation() -> dict[str, Any] | None:
            found: list[dict[str, Any]] = (await rc.get("/obligations")).json()
            if {o["unit_code"] for o in found} < obligated_codes():
                return None
            return next(o for o in found if o["unit_code"] == "STP")

        owed = await eventually(obligation)
        answer = await rc.post(
            "/reports",
            json={"obligation_id": owed["id"], "unit_code": "STP"},
            headers={"Idempotency-Key": "stp-traced"},
        )
    assert answer.status_code == 201, answer.text

    [submitted] = await bus_spy.wait_for_type("qcdc.report.submitted.v1")
    event_id = submitted.headers["ce-id"]
    traceparent = submitted.headers["traceparent"]
    version, trace_hex, parent_hex, _flags = traceparent.split("-")
    assert version == "00" and len(trace_hex) == 32 and len(parent_hex) == 16

    def consumed_by_notify() -> list[Any]:
        return [
            span
            for span in spans.get_finished_spans()
            if span.name == "notify-reports process"
            and span.attributes is not None
            and span.attributes.get("messaging.message.id") == event_id
        ]

    async def notify_span() -> list[Any]:
        return consumed_by_notify()

    [consumer] = await eventually(notify_span)
    finished = spans.get_finished_spans()
    [request] = [
        s
        for s in finished
        if s.name == "POST /reports" and s.attributes and s.attributes["http.route"] == "/reports"
    ]
    [publish] = [
        s
        for s in finished
        if s.kind is SpanKind.PRODUCER
        and s.attributes
        and s.attributes.get("messaging.message.id") == event_id
    ]
    assert _service_of(request) == _service_of(publish) == "qcdc-reports"
    assert _service_of(consumer) == "qcdc-notify"
    assert consumer.kind is SpanKind.CONSUMER
    # One trace: request → publish (relay) → notify's consumer, each the parent of the next.
    trace_id = request.context.trace_id
    assert publish.context.trace_id == consumer.context.trace_id == trace_id
    assert f"{trace_id:032x}" == trace_hex
    assert publish.parent is not None and publish.parent.span_id == request.context.span_id
    assert consumer.parent is not None and consumer.parent.span_id == publish.context.span_id
    assert f"{publish.context.span_id:016x}" == parent_hex
    assert consumer.attributes is not None
    assert consumer.attributes["qcdc.outcome"] == "handled"
