"""Bus entrypoints of the reports service: which events it consumes, and their handlers."""

from __future__ import annotations

from services.reports.handlers import obligations as handlers
from shared.bus.consumer import ConsumerSpec
from shared.bus.streams import PLANS
from shared.events import (
    PlanAmended,
    PlanIssued,
    ReportRequested,
    UnitRegistered,
    UnitUpdated,
)
from shared.settings import ServiceSettings


def consumer_specs(_settings: ServiceSettings) -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            service="reports",
            name="plans",
            stream=PLANS,
            subjects=["qcdc.v1.plan.>"],
            handlers={
                PlanIssued: handlers.on_plan_issued,
                PlanAmended: handlers.on_plan_amended,
            },
        ),
        ConsumerSpec(
            service="reports",
            name="requests",
            stream=PLANS,
            subjects=["qcdc.v1.request.>"],
            handlers={ReportRequested: handlers.on_report_requested},
        ),
        ConsumerSpec(
            service="reports",
            name="units",
            stream=PLANS,
            subjects=["qcdc.v1.unit.>"],
            handlers={
                UnitRegistered: handlers.on_unit_registered,
                UnitUpdated: handlers.on_unit_updated,
            },
        ),
    ]
