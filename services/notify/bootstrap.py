"""Composition root of the notify service: the one place that knows every part."""

from __future__ import annotations

from services.notify.adapters import db
from services.notify.entrypoints.bus import consumer_specs
from services.notify.entrypoints.digest import run_digest_job
from services.notify.entrypoints.http import build_routes
from services.notify.entrypoints.worker import run_delivery_worker
from services.notify.settings import NotifySettings
from shared.service import ServiceDefinition

SERVICE = ServiceDefinition.with_tables(
    db,
    name="notify",
    description="Contacts and subscriptions, e-mail and webhooks, the delivery log.",
    settings_type=NotifySettings,
    consumer_specs=consumer_specs,
    routes=build_routes,
    background_jobs=(run_delivery_worker, run_digest_job),
)
