"""Composition root of the plans service: the one place that knows every part."""

from __future__ import annotations

from services.plans.adapters import db
from services.plans.entrypoints.bus import consumer_specs
from services.plans.entrypoints.http import build_routes
from shared.service import ServiceDefinition
from shared.settings import ServiceSettings


class PlansSettings(ServiceSettings):
    http_port: int = 8301


SERVICE = ServiceDefinition.with_tables(
    db,
    name="plans",
    description="Unit registry, plans and their lifecycle, sub-plans, report requests.",
    settings_type=PlansSettings,
    consumer_specs=consumer_specs,
    routes=build_routes,
)
