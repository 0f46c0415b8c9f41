"""CLI of the plans service: ``qcdc units …`` and ``qcdc plans …``.

Commands work on the service's database directly (through the handlers, in a unit of
work); events they cause wait in the outbox until the running service publishes them."""

from __future__ import annotations

from services.plans.entrypoints.cli.plans import plans_app
from services.plans.entrypoints.cli.units import units_app

__all__ = ["plans_app", "units_app"]
