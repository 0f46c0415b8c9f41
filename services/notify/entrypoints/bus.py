"""Bus entrypoints of the notify service: which events it consumes, and their handlers.

Every event goes to the same handler (rules, then subscriptions); consumers are split by
aggregate so that each keeps its own order (PlanAmended after its PlanIssued) and one slow
kind of event holds up no other.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from services.notify.adapters.templates import Links, available
from services.notify.domain.rules import RuleBook, RuleError, rulebook
from services.notify.handlers import events as handlers
from services.notify.settings import NotifySettings
from shared.bus.consumer import ConsumerSpec, Handler
from shared.bus.streams import PLANS, REPORTS, StreamSpec
from shared.events import CATALOGUE, Event

CONSUMERS: tuple[tuple[str, StreamSpec, str], ...] = (
    # (consumer name, stream, aggregate). "units" and "reports" keep their durable names.
    ("units", PLANS, "unit"),
    ("plans", PLANS, "plan"),
    ("subplans", PLANS, "subplan"),
    ("requests", PLANS, "request"),
    ("difficulties", PLANS, "difficulty"),
    ("reports", REPORTS, "report"),
    ("deadlines", REPORTS, "deadline"),
    ("consolidations", REPORTS, "consolidation"),
    ("recommendations", REPORTS, "recommendation"),
    ("inspections", REPORTS, "inspection"),
    ("conferences", REPORTS, "conference"),
)


def load_rules(path: str | None) -> RuleBook:
    """The default rules, with those of a YAML file (``QCDC_RULES_PATH``) replacing them per
    event type; refuses a file naming a template that does not exist."""
    overrides: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else None
    if overrides is not None and not isinstance(overrides, dict):
        raise RuleError(f"{path}: a mapping of event type to rules is expected")
    book = rulebook(overrides)
    unknown = book.templates() - available()
    if unknown:
        raise RuleError(f"{path}: no template named {', '.join(sorted(unknown))}")
    return book


def consumer_specs(settings: Any) -> list[ConsumerSpec]:
    assert isinstance(settings, NotifySettings)
    config = handlers.NotifyConfig(
        rules=load_rules(settings.rules_path),
        links=Links(
            reports_url=settings.reports_url,
            plans_url=settings.plans_url,
            portal_url=settings.portal_url,
        ),
        contacts_key=settings.contacts_key,
    )
    handle: Handler = functools.partial(handlers.on_event, config=config)
    return [
        ConsumerSpec(
            service="notify",
            name=name,
            stream=stream,
            subjects=[f"qcdc.v1.{aggregate}.>"],
            handlers=_every(aggregate, handle),
        )
        for name, stream, aggregate in CONSUMERS
    ]


def _every(aggregate: str, handle: Handler) -> dict[type[Event], Handler]:
    return {cls: handle for cls in CATALOGUE if cls.aggregate == aggregate}
