"""OpenTelemetry traces across HTTP, the outbox, the bus and the consumers.

Off by default: with no ``OTEL_TRACES_EXPORTER`` (or ``none``, or ``OTEL_SDK_DISABLED=true``)
a service gets the API's no-op tracer, and the hot paths skip tracing altogether (one
boolean test). On with the standard settings, e.g. ``OTEL_TRACES_EXPORTER=otlp``,
``OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318``, ``OTEL_SERVICE_NAME`` (default
``qcdc-<service>``), ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf`` by default, or
``grpc``), ``OTEL_TRACES_SAMPLER``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``.

The W3C trace context travels with each event as the CloudEvents distributed-tracing
extension: a ``traceparent`` (and ``tracestate``) header, written into the outbox row's
headers when the event is recorded, so the relay publishes it whenever it gets to it and
the consumer's span continues the trace of the request that caused the event.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NoOpTracerProvider, SpanKind, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.asgi import HttpMiddleware, ResponseStatus

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
INSTRUMENTATION = "qcdc"
_PROPAGATOR = TraceContextTextMapPropagator()

if TYPE_CHECKING:  # the SDK is imported only when tracing is on
    from opentelemetry.sdk.trace import TracerProvider as TracerProviderSDK
    from opentelemetry.sdk.trace.export import SpanExporter


@dataclass(frozen=True)
class Tracing:
    """A service's tracer, and whether it records anything (False: skip all tracing)."""

    provider: TracerProvider
    enabled: bool

    @property
    def tracer(self) -> Tracer:
        return self.provider.get_tracer(INSTRUMENTATION)

    def flush(self) -> None:
        """Export the spans still buffered (when the service stops; the SDK shuts the
        provider down itself when the process exits)."""
        flush = getattr(self.provider, "force_flush", None)
        if callable(flush):
            flush()


OFF = Tracing(NoOpTracerProvider(), enabled=False)


def tracing_from_environment(service: str) -> Tracing:
    """The tracing the standard ``OTEL_*`` settings ask for; :data:`OFF` without them."""
    names = [
        name.strip().lower()
        for name in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",")
        if name.strip()
    ]
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    names = [name for name in names if name != "none"]
    if disabled or not names:
        return OFF
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = sdk_provider(service)
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    return Tracing(provider, enabled=True)


def sdk_provider(service: str) -> TracerProviderSDK:
    """An SDK provider naming the service (``OTEL_SERVICE_NAME`` wins), with the sampler
    the environment asks for."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"qcdc-{service}"}
    return SdkTracerProvider(resource=Resource.create(attributes))


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={name!r} is not supported (otlp, console, none)")
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def current_trace_headers() -> dict[str, str]:
    """The current span's W3C trace context as headers (empty outside a recorded span)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def context_from(headers: Mapping[str, str]) -> Context | None:
    """The trace context carried by a message's or a request's headers, if any."""
    if TRACEPARENT not in headers:
        return None
    return _PROPAGATOR.extract(dict(headers))


def inject(headers: dict[str, str]) -> None:
    """Write the current span's context into ``headers`` (replacing what was there)."""
    _PROPAGATOR.inject(headers)


class HttpTracing(HttpMiddleware):
    """ASGI middleware (added only when tracing is on): a server span per request, named by
    the route template, continuing the caller's ``traceparent`` if it sent one."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        super().__init__(app)
        self.tracer = tracer

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        parent = context_from(Headers(scope=scope))
        method = scope["method"]
        with self.tracer.start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:
            status = ResponseStatus(send)
            try:
                await self.app(scope, receive, status)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status.code)
                if status.code >= 500:
                    span.set_status(trace.StatusCode.ERROR)
