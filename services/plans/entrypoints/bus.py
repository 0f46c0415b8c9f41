"""Bus entrypoints of the plans service. It consumes nothing yet; it publishes through its
outbox (UnitRegistered, PlanIssued, …)."""

from __future__ import annotations

from shared.bus.consumer import ConsumerSpec
from shared.settings import ServiceSettings


def consumer_specs(_settings: ServiceSettings) -> list[ConsumerSpec]:
    return []
