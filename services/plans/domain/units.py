"""The unit registry: a hierarchy of any depth; who reports to whom is data. Pure, no I/O.

``parent`` is the administrative hierarchy (it gives the unit path carried in subjects);
``reports_to`` is who receives the unit's reports (departments and districts report to Home
Affairs; communes to their district, or to Home Affairs in a two-level province). Units are
dissolved, never deleted, so history survives mergers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from shared.errors import Refused
from shared.events import Contacts, Event, UnitRegistered, UnitUpdated


class UnitRefused(Refused):
    """A command the unit rules refuse."""


@dataclass(frozen=True)
class UnitKind:
    """A kind of unit, as configured (data/unit_kinds.yaml): code, Vietnamese label, level."""

    code: str
    label: str
    level: int


@dataclass
class Unit:
    code: str
    name: str
    kind: str
    path: list[str]
    parent_code: str | None = None
    reports_to_code: str | None = None
    contacts: Contacts = field(default_factory=Contacts)
    tags: tuple[str, ...] = ()
    active: bool = True
    established_on: date | None = None
    dissolved_on: date | None = None
    events: list[Event] = field(default_factory=list, repr=False)

    @classmethod
    def register(
        cls,
        *,
        code: str,
        name: str,
        kind: str,
        parent: Unit | None,
        reports_to: Unit | None,
        contacts: Contacts,
        tags: tuple[str, ...] = (),
        established_on: date | None = None,
    ) -> Unit:
        if parent is not None and not parent.active:
            raise UnitRefused(f"parent unit {parent.code} is dissolved", field="parent_code")
        if reports_to is not None and not reports_to.active:
            raise UnitRefused(
                f"unit {reports_to.code} is dissolved and receives no reports",
                field="reports_to_code",
            )
        unit = cls(
            code=code,
            name=name,
            kind=kind,
            path=[*parent.path, code] if parent else [code],
            parent_code=parent.code if parent else None,
            reports_to_code=reports_to.code if reports_to else None,
            contacts=contacts,
            tags=tuple(tags),
            established_on=established_on,
        )
        unit.events.append(UnitRegistered(**unit._state()))
        return unit

    def _state(self) -> dict[str, object]:
        return {
            "unit_path": self.path,
            "code": self.code,
            "name": self.name,
            "kind": self.kind,
            "parent_code": self.parent_code,
            "reports_to_code": self.reports_to_code,
            "contacts": self.contacts,
            "tags": list(self.tags),
            "active": self.active,
        }

    def update(
        self,
        *,
        name: str | None = None,
        contacts: Contacts | None = None,
        reports_to: Unit | None = None,
        tags: tuple[str, ...] | None = None,
    ) -> bool:
        """Change what may change; records UnitUpdated when anything did."""
        if not self.active:
            raise UnitRefused(f"unit {self.code} is dissolved")
        before = replace(self, events=[])
        if name is not None:
            self.name = name
        if contacts is not None:
            self.contacts = contacts
        if reports_to is not None:
            if not reports_to.active:
                raise UnitRefused(f"unit {reports_to.code} is dissolved", field="reports_to_code")
            self.reports_to_code = reports_to.code
        if tags is not None:
            self.tags = tuple(tags)
        changed = replace(self, events=[]) != before
        if changed:
            self.events.append(UnitUpdated(**self._state(), dissolved_on=self.dissolved_on))
        return changed

    def dissolve(self, on: date) -> None:
        if not self.active:
            raise UnitRefused(f"unit {self.code} is already dissolved")
        self.active = False
        self.dissolved_on = on
        self.events.append(UnitUpdated(**self._state(), dissolved_on=on))

    def is_within(self, ancestor_code: str) -> bool:
        return ancestor_code in self.path

    def has_tag(self, tag: str) -> bool:
        return tag in self.tags


def reporting_line(unit: Unit, registry: dict[str, Unit]) -> list[str]:
    """Codes of the units receiving this unit's reports, nearest first (cycles cut)."""
    line: list[str] = []
    current = unit.reports_to_code
    while current and current not in line and current in registry:
        line.append(current)
        current = registry[current].reports_to_code
    return line


def resolve_reference(reference: str, scope: Unit | None, registry: dict[str, Unit]) -> str:
    """A unit named in a plan document: ``kind:<kind>`` or ``tag:<tag>`` (the one active unit
    of that kind, or with that tag, in the scope's subtree) or a plain unit code."""
    prefix, _, value = reference.partition(":")
    if not value:
        return reference
    if prefix not in ("kind", "tag"):
        raise UnitRefused(f"unknown reference {reference!r}: use kind:, tag: or a unit code")
    if scope is None:
        raise UnitRefused(f"{reference!r} needs a province to resolve against", field="province")
    matches = [
        unit.code
        for unit in registry.values()
        if unit.active
        and unit.is_within(scope.code)
        and (unit.kind == value if prefix == "kind" else unit.has_tag(value))
    ]
    if len(matches) != 1:
        found = "no unit" if not matches else f"{len(matches)} units ({', '.join(matches[:5])})"
        raise UnitRefused(f"{reference!r} matches {found} in {scope.code}; it must match one")
    return matches[0]
