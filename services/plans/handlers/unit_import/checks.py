"""Checking a unit file against the registry: what it creates, changes, refuses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.plans.domain.unit_kinds import (
    unknown_kind_message,
)
from services.plans.domain.units import Unit, UnitKind
from services.plans.handlers.unit_import.rows import (
    REFERENCE_FIELDS,
    ImportRefused,
    ImportRow,
    ParsedFile,
    RowError,
)

# --- checking the file against the registry -------------------------------------------


@dataclass
class ImportPlan:
    creates: list[ImportRow] = field(default_factory=list)
    """New units, each after its parent and the unit it reports to."""
    updates: list[ImportRow] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportCounts:
    created: int
    updated: int
    unchanged: int


def plan_import(
    parsed: ParsedFile, registry: Mapping[str, Unit], kinds: Mapping[str, UnitKind]
) -> ImportPlan:
    """What importing ``parsed`` into ``registry`` does; refuses with every error found."""
    errors = list(parsed.errors)
    for row in parsed.rows:
        errors += _row_checks(row, parsed.codes, registry, kinds)
    cycles = _cycle_errors(parsed.rows, registry)
    errors += cycles
    plan = ImportPlan()
    for row in parsed.rows:
        existing = registry.get(row.code)
        if existing is None:
            plan.creates.append(row)
        elif _changes(existing, row):
            plan.updates.append(row)
        else:
            plan.unchanged.append(row.code)
    plan.creates, unordered = _creation_order(plan.creates)
    if not cycles:  # else these rows only wait on the cycles already reported
        errors += [
            RowError(row.line, "parent_code", "parent and reports_to form a loop with other rows")
            for row in unordered
        ]
    if errors:
        raise ImportRefused(errors)
    return plan


def _row_checks(
    row: ImportRow,
    codes: frozenset[str],
    registry: Mapping[str, Unit],
    kinds: Mapping[str, UnitKind],
) -> list[RowError]:
    unit, line = row.unit, row.line
    errors = []
    if unit.kind not in kinds:
        errors.append(RowError(line, "kind", unknown_kind_message(unit.kind, kinds)))
    for name in REFERENCE_FIELDS:
        reference = getattr(unit, name)
        if reference is None or reference == unit.code:
            continue  # a unit naming itself is a cycle, reported with the cycles
        if reference not in registry and reference not in codes:
            message = f"unknown unit {reference}: neither registered nor in this file"
            errors.append(RowError(line, name, message))
        elif reference in registry and not registry[reference].active:
            errors.append(RowError(line, name, f"unit {reference} is dissolved"))
    existing = registry.get(unit.code)
    if existing is not None:
        errors += _unchangeable(row, existing)
    return errors


def _unchangeable(row: ImportRow, existing: Unit) -> list[RowError]:
    unit, line = row.unit, row.line
    errors = []
    if unit.kind != existing.kind:
        errors.append(RowError(line, "kind", f"cannot change (registered as {existing.kind})"))
    if unit.parent_code != existing.parent_code:
        was = existing.parent_code or "no parent"
        errors.append(RowError(line, "parent_code", f"cannot change (registered under {was})"))
    if unit.established_on not in (None, existing.established_on):
        errors.append(RowError(line, "established_on", "cannot change by import"))
    if unit.reports_to_code is None and existing.reports_to_code is not None:
        message = f"cannot be cleared by import (reports to {existing.reports_to_code})"
        errors.append(RowError(line, "reports_to_code", message))
    if not existing.active and _changes(existing, row):
        errors.append(RowError(line, "code", f"unit {existing.code} is dissolved"))
    return errors


def _changes(existing: Unit, row: ImportRow) -> bool:
    unit = row.unit
    return (
        unit.name != existing.name
        or (not row.keep_contacts and unit.contacts != existing.contacts)
        or unit.reports_to_code != existing.reports_to_code
        or unit.tags != existing.tags
    )


def _cycle_errors(rows: Sequence[ImportRow], registry: Mapping[str, Unit]) -> list[RowError]:
    """A parent or reports_to chain that comes back to the row's own unit."""
    errors = []
    for name in REFERENCE_FIELDS:
        links: dict[str, str | None] = {c: getattr(u, name) for c, u in registry.items()}
        links.update({row.code: getattr(row.unit, name) for row in rows})
        for row in rows:
            loop = _loop_from(row.code, links)
            if loop:
                errors.append(RowError(row.line, name, f"cycle: {' → '.join(loop)}"))
    return errors


def _loop_from(start: str, links: Mapping[str, str | None]) -> list[str]:
    chain = [start]
    current = links.get(start)
    while current is not None and current not in chain:
        chain.append(current)
        current = links.get(current)
    return [*chain, start] if current == start else []


def _creation_order(rows: list[ImportRow]) -> tuple[list[ImportRow], list[ImportRow]]:
    """New units in file order, except that a unit comes after the new units it names as
    parent or reports_to (a depth-first walk, without recursion: a chain may be long).
    Returns those in order, and those that can never be (they wait on a loop)."""
    by_code = {row.code: row for row in rows}
    visiting: set[str] = set()
    visited: list[str] = []
    for row in rows:
        if row.code in visiting:
            continue
        stack = [row.code]
        while stack:
            code = stack[-1]
            visiting.add(code)
            waiting = [c for c in _needs(by_code[code]) if c in by_code and c not in visiting]
            if waiting:
                stack.append(waiting[0])
                continue
            visited.append(stack.pop())
    placed: set[str] = set()
    ordered, looped = [], []
    for code in visited:
        row = by_code[code]
        if all(c in placed for c in _needs(row) if c in by_code):
            placed.add(code)
            ordered.append(row)
        else:
            looped.append(row)
    return ordered, looped


def _needs(row: ImportRow) -> set[str]:
    unit = row.unit
    return {c for c in (unit.parent_code, unit.reports_to_code) if c and c != unit.code}
