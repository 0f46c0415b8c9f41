"""Obligations and reports: what each unit owes, by when, and what it submitted. Pure, no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from shared.errors import Refused
from shared.events import (
    Event,
    ObligationRef,
    PlanIssued,
    ReportKind,
    ReportSubmitted,
    ScheduledReport,
)
from shared.vntime import is_on_time

OBLIGATION_NAMESPACE = uuid.UUID("6f1b8f0e-9a43-4c3e-9d7e-4f7a2d3c1b10")


class ObligationStatus(StrEnum):
    OPEN = "open"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RETURNED = "returned"
    WAIVED = "waived"


class ReportRefused(Refused):
    """A command the report rules refuse."""


def obligation_id(plan_id: str, schedule_key: str, unit_code: str) -> str:
    """Deterministic, so the same plan event always opens the same obligations."""
    return str(uuid.uuid5(OBLIGATION_NAMESPACE, f"{plan_id}|{schedule_key}|{unit_code}"))


@dataclass
class Obligation:
    id: str
    plan_id: str
    schedule_key: str
    report_kind: ReportKind
    unit_code: str
    unit_path: list[str]
    receiving_unit: str
    period_start: date
    period_end: date
    due_at: datetime
    plan_doc_number: str = ""
    plan_title: str = ""
    status: ObligationStatus = ObligationStatus.OPEN
    events: list[Event] = field(default_factory=list, repr=False)

    def ref(self) -> ObligationRef:
        return ObligationRef(
            obligation_id=self.id,
            plan_id=self.plan_id,
            schedule_key=self.schedule_key,
            report_kind=self.report_kind,
            unit_code=self.unit_code,
            receiving_unit=self.receiving_unit,
            period_start=self.period_start,
            period_end=self.period_end,
            due_at=self.due_at,
            plan_doc_number=self.plan_doc_number,
            plan_title=self.plan_title,
        )

    def submit(
        self,
        *,
        report_id: str,
        receipt_number: str,
        version: int,
        submitted_at: datetime,
        submitted_by: str | None,
    ) -> Report:
        if self.status in (ObligationStatus.ACCEPTED, ObligationStatus.WAIVED):
            raise ReportRefused(f"this obligation is {self.status.value}; nothing to submit")
        self.status = ObligationStatus.SUBMITTED
        report = Report(
            id=report_id,
            obligation_id=self.id,
            version=version,
            receipt_number=receipt_number,
            submitted_at=submitted_at,
            on_time=is_on_time(submitted_at, self.due_at),
            submitted_by=submitted_by,
        )
        self.events.append(
            ReportSubmitted(
                unit_path=self.unit_path,
                report_id=report.id,
                receipt_number=receipt_number,
                version=version,
                obligation=self.ref(),
                submitted_at=submitted_at,
                on_time=report.on_time,
                submitted_by=submitted_by,
            )
        )
        return report


@dataclass
class Report:
    id: str
    obligation_id: str
    version: int
    receipt_number: str
    submitted_at: datetime
    on_time: bool
    submitted_by: str | None
    narrative: dict[str, str] = field(default_factory=dict)
    indicators: dict[str, Any] = field(default_factory=dict)


def obligations_for_plan(event: PlanIssued) -> list[Obligation]:
    """One obligation per assignee × periodic report of the plan's schedule."""
    return [
        _obligation(event.plan_id, entry, assignee.code, assignee.unit_path, event)
        for entry in event.schedule
        if entry.kind in (ReportKind.SIX_MONTH, ReportKind.ANNUAL)
        for assignee in event.assignees
    ]


def _obligation(
    plan_id: str, entry: ScheduledReport, unit_code: str, unit_path: list[str], plan: PlanIssued
) -> Obligation:
    return Obligation(
        id=obligation_id(plan_id, entry.key, unit_code),
        plan_id=plan_id,
        schedule_key=entry.key,
        report_kind=entry.kind,
        unit_code=unit_code,
        unit_path=list(unit_path),
        receiving_unit=entry.receiving_unit,
        period_start=entry.period_start,
        period_end=entry.period_end,
        due_at=entry.due_at,
        plan_doc_number=plan.doc_number,
        plan_title=plan.title,
    )
