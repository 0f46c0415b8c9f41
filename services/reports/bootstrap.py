"""Composition root of the reports service: the one place that knows every part."""

from __future__ import annotations

from pathlib import Path

from services.reports.adapters.db import messaging, security
from services.reports.entrypoints.bus import consumer_specs, register_submit_responder
from services.reports.entrypoints.clock import run_deadline_clock
from services.reports.entrypoints.http import build_routes, refine_openapi
from services.reports.settings import ReportsSettings
from shared.service import ServiceDefinition

SERVICE = ServiceDefinition(
    name="reports",
    title="QCDC reports",
    description="Obligations, report intake and review, the deadline clock, consolidations.",
    settings_type=ReportsSettings,
    messaging=messaging,
    security=security,
    migrations=Path(__file__).parent / "adapters" / "migrations",
    consumer_specs=consumer_specs,
    routes=build_routes,
    background_jobs=(run_deadline_clock,),
    responders=(register_submit_responder,),
    refine_openapi=refine_openapi,
)
