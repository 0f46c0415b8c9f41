"""Who gets what: the rules that turn an event into e-mail recipients, as configuration.

A rule says, for one event type, which template goes to whom, and optionally when::

    deadline.missed:
      - template: deadline_missed
        to: [unit.focal, receiving_unit.focal]
      - template: deadline_missed
        to: [unit.head]
        when: escalated

A target is ``<role>.<person>``: the role names units the event concerns (``unit``: the unit
the event is about; ``receiving_unit``: the unit that receives its report; ``assignees``:
the units a plan or a request binds; ``tag:<tag>``: every unit carrying that tag, e.g.
``tag:home_affairs``), the person is ``focal`` (the focal person) or ``head``. ``when``
names a boolean field of the event (``not <field>`` for its negation).

:data:`DEFAULT_RULES` is the default table; a YAML file of the same shape replaces the rules
of the event types it lists (an empty list silences one). Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.notify.domain.model import Contact
from shared.events import (
    BY_TYPE,
    CATALOGUE,
    ConsolidationPublished,
    DeadlineApproaching,
    DeadlineMissed,
    DifficultyAnswered,
    DifficultyRaised,
    Event,
    InspectionActionClosed,
    InspectionActionReported,
    InspectionActionReturned,
    InspectionFindingsRecorded,
    InspectionScheduled,
    PlanAmended,
    PlanIssued,
    RecommendationAnswered,
    RecommendationImplementationReported,
    RecommendationRegistered,
    ReportAccepted,
    ReportRequested,
    ReportReturned,
    ReportSubmitted,
    SubPlanRegistered,
    UnitRegistered,
)

PERSONS = ("focal", "head")
ROLES = ("unit", "receiving_unit", "assignees", "tag")
REQUIRED_ROLES = frozenset({"unit", "assignees"})
"""Roles whose units the registry must have announced before the event can be handled:
their contacts arrive on another consumer and may lag, so a miss is retried. Other roles
(a receiving unit, a tag) are best effort: a missing one must not hold up the rest."""

_OBLIGATION_EVENTS = (
    ReportSubmitted,
    ReportAccepted,
    ReportReturned,
    DeadlineApproaching,
    DeadlineMissed,
)
_RECOMMENDATION_EVENTS = (
    RecommendationRegistered,
    RecommendationAnswered,
    RecommendationImplementationReported,
)
"""Their ``unit`` is the addressed unit; their ``receiving_unit`` the unit that registered
the recommendation (the source organisation's channel: the Front's own unit, or the
addressed unit that received it)."""
_INSPECTION_EVENTS = (
    InspectionScheduled,
    InspectionFindingsRecorded,
    InspectionActionReported,
    InspectionActionClosed,
    InspectionActionReturned,
)
"""Their ``unit`` is the inspected unit; their ``receiving_unit`` the inspecting unit (it
receives the follow-up reports)."""
_ROLE_EVENTS: dict[str, tuple[type[Event], ...]] = {
    "receiving_unit": (
        *_OBLIGATION_EVENTS,
        ConsolidationPublished,
        DifficultyRaised,
        *_RECOMMENDATION_EVENTS,
        *_INSPECTION_EVENTS,
    ),
    "assignees": (PlanIssued, PlanAmended, ReportRequested),
}

DEFAULT_RULES: dict[str, list[dict[str, Any]]] = {
    "deadline.approaching": [{"template": "deadline_approaching", "to": ["unit.focal"]}],
    "deadline.missed": [
        {"template": "deadline_missed", "to": ["unit.focal", "receiving_unit.focal"]},
        {"template": "deadline_missed", "to": ["unit.head"], "when": "escalated"},
        {
            "template": "deadline_missed",
            "to": ["receiving_unit.head"],
            "when": "escalated_to_receiving_unit",
        },
    ],
    "report.submitted": [
        {"template": "report_submitted", "to": ["unit.focal"]},
        # The receiving unit takes in every unit's report, thousands on a deadline's eve:
        # it reads them in its daily digest (and on the board), not in one mail each.
        {"template": "report_received_notice", "to": ["receiving_unit.focal"], "digest": True},
    ],
    "report.returned": [{"template": "report_returned", "to": ["unit.focal"]}],
    "report.accepted": [{"template": "report_accepted", "to": ["unit.focal"]}],
    "plan.issued": [{"template": "plan_issued", "to": ["assignees.focal"]}],
    "plan.amended": [{"template": "plan_amended", "to": ["assignees.focal"]}],
    "request.issued": [{"template": "report_requested", "to": ["assignees.focal"]}],
    # To the unit it was raised to (the plan may name one), and Home Affairs, through which
    # difficulties reach the province (one message where they are the same unit).
    "difficulty.raised": [
        {
            "template": "difficulty_raised",
            "to": ["receiving_unit.focal", "tag:home_affairs.focal"],
        }
    ],
    # The unit that raised it hears each answer (unit: the raiser).
    "difficulty.answered": [{"template": "difficulty_answered", "to": ["unit.focal"]}],
    # The addressed unit learns what it must answer, and by when; the unit that registered
    # it (for the source organisation) hears the answer and each implementation report.
    "recommendation.registered": [{"template": "recommendation_registered", "to": ["unit.focal"]}],
    "recommendation.answered": [
        {"template": "recommendation_answered", "to": ["receiving_unit.focal"]}
    ],
    "recommendation.implementation_reported": [
        {"template": "recommendation_implementation_reported", "to": ["receiving_unit.focal"]}
    ],
    # The inspected unit learns of the inspection, its findings and the actions required
    # (with their deadlines), and whether each action it reported done is closed or
    # returned; the inspecting unit hears each follow-up report.
    "inspection.scheduled": [{"template": "inspection_scheduled", "to": ["unit.focal"]}],
    "inspection.findings_recorded": [
        {"template": "inspection_findings_recorded", "to": ["unit.focal"]}
    ],
    "inspection.action_reported": [
        {"template": "inspection_action_reported", "to": ["receiving_unit.focal"]}
    ],
    "inspection.action_closed": [{"template": "inspection_action_closed", "to": ["unit.focal"]}],
    "inspection.action_returned": [
        {"template": "inspection_action_returned", "to": ["unit.focal"]}
    ],
}

SUBSCRIBER_TEMPLATES: dict[str, str] = {
    "qcdc.deadline.approaching.v1": "deadline_approaching",
    "qcdc.deadline.missed.v1": "deadline_missed",
    "qcdc.report.submitted.v1": "report_received_notice",
    "qcdc.report.returned.v1": "report_returned",
    "qcdc.report.accepted.v1": "report_accepted",
    "qcdc.plan.issued.v1": "plan_issued",
    "qcdc.plan.amended.v1": "plan_amended",
    "qcdc.request.issued.v1": "report_requested",
    "qcdc.difficulty.raised.v1": "difficulty_raised",
    "qcdc.difficulty.answered.v1": "difficulty_answered",
    "qcdc.recommendation.registered.v1": "recommendation_registered",
    "qcdc.recommendation.answered.v1": "recommendation_answered",
    "qcdc.recommendation.implementation_reported.v1": "recommendation_implementation_reported",
    "qcdc.inspection.scheduled.v1": "inspection_scheduled",
    "qcdc.inspection.findings_recorded.v1": "inspection_findings_recorded",
    "qcdc.inspection.action_reported.v1": "inspection_action_reported",
    "qcdc.inspection.action_closed.v1": "inspection_action_closed",
    "qcdc.inspection.action_returned.v1": "inspection_action_returned",
}
"""What an e-mail subscriber gets per event type: the observer's view (a subscriber to
``report.submitted`` is told a report arrived, not handed the submitter's receipt)."""

SUBSCRIBABLE_AGGREGATES = (
    "unit",
    "plan",
    "subplan",
    "request",
    "difficulty",
    "report",
    "deadline",
    "consolidation",
    "recommendation",
    "inspection",
    "conference",
)
"""What notify consumes and offers to subscribers. Not its own notifications (a delivery of
NotificationDelivered would cause another one, without end), nor anything not meant for
outside systems (API tokens)."""

SUBSCRIBABLE: frozenset[str] = frozenset(
    cls.ce_type() for cls in CATALOGUE if cls.aggregate in SUBSCRIBABLE_AGGREGATES
)


class RuleError(ValueError):
    """A rule table that cannot be used; the message says where."""


def event_type_of(name: str) -> str:
    """The CloudEvents type for ``report.submitted`` or ``qcdc.report.submitted.v1``."""
    candidate = name.strip()
    if candidate not in BY_TYPE:
        candidate = f"qcdc.{candidate}.v1"
    if candidate not in BY_TYPE:
        raise ValueError(f"unknown event type {name!r}")
    return candidate


@dataclass(frozen=True)
class Target:
    role: str
    person: str
    tag: str | None = None

    @property
    def key(self) -> str:
        """The units this target addresses: ``unit``, ``assignees``, ``tag:home_affairs``…"""
        return f"tag:{self.tag}" if self.role == "tag" else self.role

    @classmethod
    def parse(cls, text: str) -> Target:
        role, _, person = text.strip().rpartition(".")
        if person not in PERSONS:
            raise RuleError(f"target {text!r}: the person is one of {', '.join(PERSONS)}")
        if role.startswith("tag:") and len(role) > 4:
            return cls("tag", person, role[4:])
        if role not in ROLES or role == "tag":
            raise RuleError(
                f"target {text!r}: the role is unit, receiving_unit, assignees or tag:<tag>"
            )
        return cls(role, person)


@dataclass(frozen=True)
class Rule:
    event_type: str
    template: str
    to: tuple[Target, ...]
    when: str | None = None
    digest: bool = False
    """Held for the recipients' daily digest instead of sent on its own."""

    def applies(self, event: Event) -> bool:
        if event.ce_type() != self.event_type:
            return False
        if self.when is None:
            return True
        negated = self.when.startswith("not ")
        value = bool(getattr(event, self.when.removeprefix("not ").strip(), False))
        return value != negated


@dataclass(frozen=True)
class RuleBook:
    rules: tuple[Rule, ...]

    def for_event(self, event: Event) -> list[Rule]:
        return [rule for rule in self.rules if rule.applies(event)]

    def templates(self) -> set[str]:
        return {rule.template for rule in self.rules}


def rulebook(overrides: Mapping[str, Any] | None = None) -> RuleBook:
    """The default rules, with the event types listed in ``overrides`` replaced."""
    table: dict[str, Any] = {event_type_of(k): v for k, v in DEFAULT_RULES.items()}
    for name, rules in (overrides or {}).items():
        try:
            table[event_type_of(str(name))] = rules
        except ValueError as exc:
            raise RuleError(str(exc)) from exc
    return RuleBook(
        tuple(
            _rule(event_type, entry, index)
            for event_type, entries in table.items()
            for index, entry in enumerate(_entries(event_type, entries))
        )
    )


def _entries(event_type: str, entries: Any) -> list[Mapping[str, Any]]:
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise RuleError(f"{event_type}: a list of rules (template, to, when, digest) is expected")
    return entries


def _rule(event_type: str, entry: Mapping[str, Any], index: int) -> Rule:
    where = f"{event_type} rule {index + 1}"
    template, to, when = entry.get("template"), entry.get("to"), entry.get("when")
    digest = entry.get("digest", False)
    if not isinstance(digest, bool):
        raise RuleError(f"{where}: 'digest' is true or false")
    if not isinstance(template, str) or not template.isidentifier():
        raise RuleError(f"{where}: 'template' names a template set, e.g. deadline_missed")
    if not isinstance(to, list) or not to:
        raise RuleError(f"{where}: 'to' lists at least one target, e.g. unit.focal")
    targets = tuple(Target.parse(str(t)) for t in to)
    event_class = BY_TYPE[event_type]
    for target in targets:
        allowed = _ROLE_EVENTS.get(target.role)
        if allowed is not None and not issubclass(event_class, allowed):
            raise RuleError(f"{where}: {event_class.__name__} has no {target.role}")
    if when is not None:
        _check_condition(where, event_class, str(when))
    return Rule(event_type, template, targets, None if when is None else str(when), digest)


def _check_condition(where: str, event_class: type[Event], when: str) -> None:
    name = when.removeprefix("not ").strip()
    info = event_class.model_fields.get(name)
    if info is None or info.annotation is not bool:
        raise RuleError(f"{where}: 'when' names a yes/no field of {event_class.__name__}")


def subject_unit(event: Event) -> str:
    """The unit an event is about: what the ``unit`` role addresses."""
    if isinstance(event, _OBLIGATION_EVENTS):
        return event.obligation.unit_code
    if isinstance(event, DifficultyRaised | DifficultyAnswered | SubPlanRegistered):
        return event.unit_code
    if isinstance(event, PlanIssued):
        return event.issuing_unit
    if isinstance(event, ReportRequested):
        return event.requesting_unit
    if isinstance(event, UnitRegistered):
        return event.code
    return event.unit_path[-1]


def role_codes(role: str, event: Event, plan_assignees: Sequence[str] = ()) -> list[str]:
    """Unit codes a role addresses for this event (tags are looked up by the caller).
    ``plan_assignees``: a plan's assignees after a PlanAmended, which carries only changes;
    when its deadlines move every assignee is told, otherwise only the added ones."""
    if role == "unit":
        return [subject_unit(event)]
    if role == "receiving_unit" and isinstance(event, _OBLIGATION_EVENTS):
        return [event.obligation.receiving_unit]
    if role == "receiving_unit" and isinstance(event, ConsolidationPublished):
        return [event.receiving_unit]
    if role == "receiving_unit" and isinstance(event, _RECOMMENDATION_EVENTS):
        return [event.registered_by_unit]
    if role == "receiving_unit" and isinstance(event, _INSPECTION_EVENTS):
        return [event.inspecting_unit]
    if role == "receiving_unit" and isinstance(event, DifficultyRaised):
        return [event.raised_to] if event.raised_to else []
    if role == "assignees":
        return _assignees(event, plan_assignees)
    return []


def _assignees(event: Event, plan_assignees: Sequence[str]) -> list[str]:
    if isinstance(event, PlanIssued):
        return [a.code for a in event.assignees]
    if isinstance(event, ReportRequested):
        return [a.code for a in event.units]
    if isinstance(event, PlanAmended):
        added = [a.code for a in event.added_assignees]
        if not event.schedule_changes:
            return added
        return _unique([*added, *plan_assignees])
    return []


def mentioned_units(event: Event) -> list[str]:
    """Units a message about the event names (whose names it needs)."""
    codes = [subject_unit(event), *role_codes("receiving_unit", event)]
    if isinstance(event, ReportAccepted | ReportReturned):
        codes.append(event.reviewed_by_unit)
    if isinstance(event, DifficultyAnswered):
        codes.append(event.answered_by_unit)
    return _unique(codes)


@dataclass(frozen=True)
class Recipient:
    """One e-mail address a rule (or a subscription) reaches, and in which capacity."""

    address: str
    contact: Contact
    """The unit addressed ("Kính gửi")."""
    template: str
    audience: str
    """The rule's role (``unit``, ``receiving_unit``, ``assignees``, ``tag``) or
    ``subscriber``: the template words the message for it."""
    person: str
    digest: bool = False
    """Held for the recipient's daily digest (the rule says so)."""


def resolve(rules: Sequence[Rule], contacts: Mapping[str, Sequence[Contact]]) -> list[Recipient]:
    """Recipients of the rules, given the contacts of each target key (``unit``,
    ``tag:home_affairs`` …). One per address: the first rule to reach an address wins, so
    two rules hitting the same person make one message (its delivery key is the same)."""
    found: dict[str, Recipient] = {}
    for rule in rules:
        for target in rule.to:
            for contact in contacts.get(target.key, ()):
                address = contact.email(target.person)
                if address and address.lower() not in found:
                    found[address.lower()] = Recipient(
                        address, contact, rule.template, target.role, target.person, rule.digest
                    )
    return list(found.values())


def _unique(codes: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(codes))
