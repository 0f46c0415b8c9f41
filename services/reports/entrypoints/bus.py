"""Bus entrypoints of the reports service: which events it consumes, and their handlers."""

from __future__ import annotations

from services.reports import handlers
from shared.bus.consumer import ConsumerSpec
from shared.bus.streams import PLANS
from shared.events import PlanIssued
from shared.settings import ServiceSettings


def consumer_specs(_settings: ServiceSettings) -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            service="reports",
            name="plans",
            stream=PLANS,
            subjects=["qcdc.v1.plan.>"],
            handlers={PlanIssued: handlers.on_plan_issued},
        )
    ]
