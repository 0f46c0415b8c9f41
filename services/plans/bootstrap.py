"""Composition root of the plans service: the one place that knows every part."""

from __future__ import annotations

from pathlib import Path

from services.plans.adapters.db import messaging, security
from services.plans.entrypoints.bus import consumer_specs
from services.plans.entrypoints.http import build_routes
from shared.service import ServiceDefinition
from shared.settings import ServiceSettings


class PlansSettings(ServiceSettings):
    http_port: int = 8301


SERVICE = ServiceDefinition(
    name="plans",
    title="QCDC plans",
    description="Unit registry, plans and their lifecycle, sub-plans, report requests.",
    settings_type=PlansSettings,
    messaging=messaging,
    security=security,
    migrations=Path(__file__).parent / "adapters" / "migrations",
    consumer_specs=consumer_specs,
    routes=build_routes,
)
