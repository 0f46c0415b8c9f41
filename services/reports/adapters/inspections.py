"""Inspections and surveys, their findings, actions and follow-up: rows in, domain objects out."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa

from services.reports.adapters.db import (
    inspected_units,
    inspection_action_history,
    inspection_actions,
    inspection_findings,
    inspections,
)
from services.reports.adapters.session_repository import SessionRepository
from services.reports.domain.inspections import (
    Action,
    Finding,
    InspectedUnit,
    Inspection,
    Step,
)
from shared.mapping import RowMapping
from shared.uow import seen

_ACTION_STATE = ("done_reported_at", "closed_at", "closed_on_time")


INSPECTIONS = RowMapping(Inspection, inspections)
"""An inspection's heading is a row of ``inspections`` (its units are read beside it)."""
ACTIONS = RowMapping(Action, inspection_actions, given=("kind", "topic", "inspecting_unit"))
"""An action is a row of ``inspection_actions``, with its inspection's kind and topic."""


def _inspection(row: Any) -> Inspection:
    return INSPECTIONS.from_mapping(row)


def _action(row: Any, heading: Inspection, history: list[Step]) -> Action:
    return ACTIONS.from_mapping(
        row,
        kind=heading.kind,
        topic=heading.topic,
        inspecting_unit=heading.inspecting_unit,
        history=history,
    )


VISITS = RowMapping(
    InspectedUnit, inspected_units, renamed={"unit_code": "code", "unit_path": "path"}
)
"""An inspected unit is a row of ``inspected_units`` (its findings are read beside it)."""
FINDINGS = RowMapping(Finding, inspection_findings)
"""A finding is a row of ``inspection_findings`` (its actions are read beside it)."""
STEPS = RowMapping(Step, inspection_action_history)
"""A step of an action's history is a row of ``inspection_action_history``."""
_step = STEPS.from_mapping


class InspectionRepository(SessionRepository):
    async def add(self, inspection: Inspection) -> None:
        i = seen(self.session, inspection)
        await self._insert(INSPECTIONS, i)
        await self.session.execute(
            inspected_units.insert(),
            [
                VISITS.values(u, inspection_id=i.id, position=position)
                for position, u in enumerate(i.units)
            ],
        )

    async def save_findings(self, inspection: Inspection, code: str, actions: list[Action]) -> None:
        """Store what was recorded at unit ``code``: its state, findings and new actions."""
        unit = inspection.unit(code)
        await self.session.execute(
            inspected_units.update()
            .where(
                inspected_units.c.inspection_id == inspection.id,
                inspected_units.c.unit_code == code,
            )
            .values(
                conducted_on=unit.conducted_on,
                conclusion=unit.conclusion,
                findings_recorded_at=unit.findings_recorded_at,
            )
        )
        if unit.findings:
            await self.session.execute(
                inspection_findings.insert(),
                [
                    FINDINGS.values(f, inspection_id=inspection.id, unit_code=code)
                    for f in unit.findings
                ],
            )
        if actions:
            await self.session.execute(
                inspection_actions.insert(),
                [ACTIONS.values(a) for a in actions],
            )

    async def get(self, inspection_id: str, *, lock: bool = False) -> Inspection | None:
        row = await self._row_by_id(inspections, inspection_id, lock=lock)
        if row is None:
            return None
        (found,) = await self._complete([_inspection(row)], None)
        return seen(self.session, found)

    async def _complete(
        self, found: Sequence[Inspection], codes: Collection[str] | None
    ) -> list[Inspection]:
        """Fill in the inspected units (only ``codes`` when given), their findings and
        actions (without history)."""
        by_id = {i.id: i for i in found}
        if not by_id:
            return []
        ids = list(by_id)
        units_query = sa.select(inspected_units).where(inspected_units.c.inspection_id.in_(ids))
        findings_query = sa.select(inspection_findings).where(
            inspection_findings.c.inspection_id.in_(ids)
        )
        actions_query = sa.select(inspection_actions).where(
            inspection_actions.c.inspection_id.in_(ids)
        )
        if codes is not None:
            units_query = units_query.where(inspected_units.c.unit_code.in_(list(codes)))
            findings_query = findings_query.where(inspection_findings.c.unit_code.in_(list(codes)))
            actions_query = actions_query.where(inspection_actions.c.unit_code.in_(list(codes)))
        visits: dict[tuple[str, str], InspectedUnit] = {}
        for row in await self.session.execute(units_query.order_by(inspected_units.c.position)):
            visit = VISITS.from_mapping(row)
            by_id[row.inspection_id].units.append(visit)
            visits[(row.inspection_id, row.unit_code)] = visit
        findings: dict[tuple[str, str, int], Finding] = {}
        for row in await self.session.execute(
            findings_query.order_by(inspection_findings.c.number)
        ):
            finding = FINDINGS.from_mapping(row)
            visits[(row.inspection_id, row.unit_code)].findings.append(finding)
            findings[(row.inspection_id, row.unit_code, row.number)] = finding
        for row in await self.session.execute(actions_query.order_by(inspection_actions.c.number)):
            action = _action(row, by_id[row.inspection_id], [])
            findings[(row.inspection_id, row.unit_code, row.finding_number)].actions.append(action)
        return list(found)

    async def planned_for(
        self, unit_codes: Collection[str], start_from: date, start_to: date
    ) -> list[Inspection]:
        """Inspections of ``unit_codes`` whose planned window starts within the dates (both
        included), with only those units, their findings and actions (no history)."""
        codes = list(unit_codes)
        rows = await self.session.execute(
            sa.select(inspections)
            .where(
                inspections.c.planned_start >= start_from,
                inspections.c.planned_start <= start_to,
                inspections.c.id.in_(
                    sa.select(inspected_units.c.inspection_id).where(
                        inspected_units.c.unit_code.in_(codes)
                    )
                ),
            )
            .order_by(inspections.c.planned_start, inspections.c.id)
        )
        return await self._complete([_inspection(r) for r in rows], codes)

    async def listing(
        self, inspected_unit: str | None, inspecting_unit: str | None
    ) -> list[Inspection]:
        """Newest planned first, with their units, findings and actions (read scopes, which
        are paths, are applied by the caller)."""
        query = sa.select(inspections)
        if inspecting_unit is not None:
            query = query.where(inspections.c.inspecting_unit == inspecting_unit)
        if inspected_unit is not None:
            query = query.where(
                inspections.c.id.in_(
                    sa.select(inspected_units.c.inspection_id).where(
                        inspected_units.c.unit_code == inspected_unit
                    )
                )
            )
        query = query.order_by(inspections.c.planned_start.desc(), inspections.c.id)
        rows = await self.session.execute(query)
        return await self._complete([_inspection(r) for r in rows], None)

    async def action(self, action_id: str, *, lock: bool = False) -> Action | None:
        row = await self._row_by_id(inspection_actions, action_id, lock=lock)
        if row is None:
            return None
        heading = await self.session.execute(
            sa.select(inspections).where(inspections.c.id == row.inspection_id)
        )
        history = await self.session.execute(
            sa.select(inspection_action_history)
            .where(inspection_action_history.c.action_id == action_id)
            .order_by(inspection_action_history.c.number)
        )
        action = _action(row, _inspection(heading.one()), [_step(h) for h in history])
        return seen(self.session, action)

    async def actions(
        self, inspected_unit: str | None, inspecting_unit: str | None, status: str | None
    ) -> list[Action]:
        """Actions without their history, the nearest deadline first (read scopes, which are
        paths, are applied by the caller)."""
        query = sa.select(inspection_actions, *[c.label(f"i_{c.name}") for c in inspections.c])
        query = query.join(inspections, inspections.c.id == inspection_actions.c.inspection_id)
        if inspected_unit is not None:
            query = query.where(inspection_actions.c.unit_code == inspected_unit)
        if inspecting_unit is not None:
            query = query.where(inspections.c.inspecting_unit == inspecting_unit)
        if status is not None:
            query = query.where(inspection_actions.c.status == status)
        query = query.order_by(inspection_actions.c.due_at, inspection_actions.c.id)
        found = []
        for row in await self.session.execute(query):
            # The inspection's columns follow the action's, in its table's order.
            heading = INSPECTIONS.from_row(row[len(inspection_actions.columns) :])
            found.append(_action(row, heading, []))
        return found

    async def save_action(self, action: Action, new: Step) -> None:
        """Store the action's state and its one new history step."""
        await self.session.execute(
            inspection_actions.update()
            .where(inspection_actions.c.id == action.id)
            .values(**ACTIONS.changes(action, "status", *_ACTION_STATE))
        )
        await self._insert(STEPS, new, action_id=action.id)
