"""The unit registry: a hierarchy of any depth; who reports to whom is data. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.events import Contacts, Event, UnitRegistered


class UnitRefused(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass
class Unit:
    code: str
    name: str
    kind: str
    path: list[str]
    parent_code: str | None = None
    reports_to_code: str | None = None
    contacts: Contacts = field(default_factory=Contacts)
    active: bool = True
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
    ) -> Unit:
        if parent is not None and not parent.active:
            raise UnitRefused(f"parent unit {parent.code} is dissolved", field="parent_code")
        path = [*parent.path, code] if parent else [code]
        unit = cls(
            code=code,
            name=name,
            kind=kind,
            path=path,
            parent_code=parent.code if parent else None,
            reports_to_code=reports_to.code if reports_to else None,
            contacts=contacts,
        )
        unit.events.append(
            UnitRegistered(
                unit_path=path,
                code=code,
                name=name,
                kind=kind,
                parent_code=unit.parent_code,
                reports_to_code=unit.reports_to_code,
                contacts=contacts,
                active=True,
            )
        )
        return unit

    def is_within(self, ancestor_code: str) -> bool:
        return ancestor_code in self.path
