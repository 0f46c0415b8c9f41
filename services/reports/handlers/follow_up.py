"""Obligations no plan holds, a recommendation's answer and an inspection action's
follow-up: each opens on the deadline clock beside its aggregate, and moves with the steps
recorded on it."""

from __future__ import annotations

from datetime import datetime

from services.reports.adapters.repositories import ObligationRepository
from services.reports.domain.deadlines import ClockRules, first_step_at
from services.reports.domain.model import Obligation
from shared.auth import Principal
from shared.security import audit
from shared.uow import UnitOfWork


async def open_on_the_clock(
    uow: UnitOfWork, obligation: Obligation, rules: ClockRules, now: datetime
) -> None:
    """Open ``obligation`` (once: a replayed command opens nothing new) with its first step
    planned, so the deadline clock reminds and urges it like a report's."""
    obligation.next_step_at = first_step_at(obligation.due_at, rules)
    await uow.repository(ObligationRepository).add_if_missing(obligation, now)


async def commit_step(
    uow: UnitOfWork, caller: Principal, obligation: Obligation, what: str, subject_id: str
) -> None:
    """Once a step of the aggregate is stored: its obligation as the step left it, the audit
    line (``what`` of ``subject_id``), and the one commit."""
    await uow.repository(ObligationRepository).save(obligation)
    audit(uow, caller, what, subject_id)
    await uow.commit()
