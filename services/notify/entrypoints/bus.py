"""Bus entrypoints of the notify service: which events it consumes, and their handlers."""

from __future__ import annotations

import functools
from typing import Any

from services.notify.handlers import events as handlers
from services.notify.settings import NotifySettings
from shared.bus.consumer import ConsumerSpec
from shared.bus.streams import PLANS, REPORTS
from shared.events import ReportSubmitted, UnitRegistered, UnitUpdated


def consumer_specs(settings: Any) -> list[ConsumerSpec]:
    assert isinstance(settings, NotifySettings)
    links = handlers.Links(reports_url=settings.reports_url)
    return [
        ConsumerSpec(
            service="notify",
            name="units",
            stream=PLANS,
            subjects=["qcdc.v1.unit.>"],
            handlers={
                UnitRegistered: handlers.on_unit_registered,
                UnitUpdated: handlers.on_unit_registered,
            },
        ),
        ConsumerSpec(
            service="notify",
            name="reports",
            stream=REPORTS,
            subjects=["qcdc.v1.report.>"],
            handlers={
                ReportSubmitted: functools.partial(handlers.on_report_submitted, links=links),
            },
        ),
    ]
