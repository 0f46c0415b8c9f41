"""Bus entrypoints of the plans service. It consumes nothing yet; it publishes through its
outbox (UnitRegistered, PlanIssued, …)."""

from __future__ import annotations

from shared.bus.consumer import ConsumerSpec


def consumer_specs() -> list[ConsumerSpec]:
    return []
