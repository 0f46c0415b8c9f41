"""Tracing is off unless the standard OTEL_* settings turn it on; the W3C trace context
rides on events as the optional ``traceparent``/``tracestate`` headers; metric labels
never carry a unit path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace import TracerProvider

from shared.bus.envelope import decode, encode
from shared.events import UnitRegistered
from shared.metrics import subject_template
from shared.tracing import OFF, current_trace_headers, tracing_from_environment

EVENT = UnitRegistered(
    unit_path=["T89", "X30337"],
    code="X30337",
    name="Ủy ban nhân dân xã Mỹ Hòa Hưng",
    kind="commune",
    parent_code="T89",
    reports_to_code="T89",
    registered_at=datetime(2026, 11, 29, tzinfo=UTC),
)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(autouse=True)
def no_otel_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)


def test_tracing_is_off_without_settings_and_with_none_or_disabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert tracing_from_environment("reports") is OFF
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert tracing_from_environment("reports") is OFF
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing_from_environment("reports") is OFF
    assert not OFF.enabled
    # Outside any recorded span there is nothing to carry.
    assert current_trace_headers() == {}


def test_the_standard_settings_turn_it_on_and_name_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    tracing = tracing_from_environment("reports")
    assert tracing.enabled
    assert isinstance(tracing.provider, TracerProvider)
    assert tracing.provider.resource.attributes["service.name"] == "qcdc-reports"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "reports-H801")
    named = tracing_from_environment("reports")
    assert isinstance(named.provider, TracerProvider)
    assert named.provider.resource.attributes["service.name"] == "reports-H801"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ValueError, match="zipkin"):
        tracing_from_environment("reports")


def test_an_event_carries_traceparent_only_within_a_trace() -> None:
    subject, headers, body = encode(EVENT, source="/qcdc/plans", correlation_id="c")
    assert "traceparent" not in headers and "tracestate" not in headers
    envelope, _ = decode(subject, headers, body)
    assert envelope.traceparent is None

    trace = {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    subject, headers, body = encode(EVENT, source="/qcdc/plans", correlation_id="c", trace=trace)
    assert headers["traceparent"] == TRACEPARENT
    assert headers["tracestate"] == "vendor=1"
    envelope, _ = decode(subject, headers, body)
    assert envelope.traceparent == TRACEPARENT


def test_a_span_in_progress_is_what_an_event_carries() -> None:
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span("work") as span:
        carried = current_trace_headers()
    context = span.get_span_context()
    # The flags: sampled, and (W3C Trace Context level 2) a random trace id.
    assert carried["traceparent"].startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")


@pytest.mark.parametrize(
    ("subject", "template"),
    [
        ("qcdc.v1.report.submitted.T89.H886.X30337", "qcdc.v1.report.submitted"),
        ("qcdc.v1.unit.registered.T89", "qcdc.v1.unit.registered"),
        ("qcdc.v1.deadletter.retry.notify.units", "qcdc.v1.deadletter.retry.notify.units"),
    ],
)
def test_metric_labels_keep_the_event_type_and_drop_the_unit_path(
    subject: str, template: str
) -> None:
    assert subject_template(subject) == template
