"""Submit, review, publish, raise and answer difficulties, request reports: one function
each, calling the owning service as the signed-in user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

from services.portal.adapters.api import ServiceApi
from services.portal.domain.session import Session


@dataclass(frozen=True)
class SubmitReport:
    obligation_id: str
    narrative: dict[str, str]
    indicators: dict[str, int]
    idempotency_key: str
    """From the form as it was shown: sending it twice gives one report and one receipt."""


async def submit_report(command: SubmitReport, session: Session, api: ServiceApi) -> Any:
    body = {
        "obligation_id": command.obligation_id,
        "unit_code": session.unit_code,
        "submitted_by": f"{session.unit_name} (cổng thông tin)",
        "narrative": command.narrative,
        "indicators": command.indicators,
    }
    headers = {"Idempotency-Key": command.idempotency_key} if command.idempotency_key else {}
    return await api.post("reports", "/reports", session.token, body, headers=headers)


MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
"""The reports service's default limit; it judges, this only stops reading a huge upload."""


@dataclass(frozen=True)
class AttachFile:
    report_id: str
    filename: str
    content_type: str
    content: bytes


async def attach_file(command: AttachFile, session: Session, api: ServiceApi) -> Any:
    path = f"/reports/{command.report_id}/attachments/{quote(command.filename, safe='')}"
    answer = await api.response(
        "reports",
        "PUT",
        path,
        session.token,
        content=command.content,
        headers={"Content-Type": command.content_type or "application/octet-stream"},
    )
    return answer.json()


async def review_report(
    report_id: str, accept: bool, reason: str, session: Session, api: ServiceApi
) -> Any:
    if accept:
        body: dict[str, str] = {"reviewer_unit": session.unit_code}
        return await api.post("reports", f"/reports/{report_id}/accept", session.token, body)
    body = {"reviewer_unit": session.unit_code, "reason": reason}
    return await api.post("reports", f"/reports/{report_id}/return", session.token, body)


async def publish_consolidation(
    plan_id: str, schedule_key: str, session: Session, api: ServiceApi
) -> Any:
    body = {
        "plan_id": plan_id,
        "schedule_key": schedule_key,
        "receiving_unit": session.unit_code,
        "published_by": session.unit_name,
    }
    return await api.post("reports", "/consolidations/publish", session.token, body)


async def raise_difficulty(
    plan_id: str, content_area: str, description: str, session: Session, api: ServiceApi
) -> Any:
    body = {
        "plan_id": plan_id,
        "unit_code": session.unit_code,
        "content_area": content_area or None,
        "description": description,
    }
    return await api.post("plans", "/difficulties", session.token, body)


async def answer_difficulty(
    difficulty_id: str, answer: str, session: Session, api: ServiceApi
) -> Any:
    body = {"answered_by": session.unit_code, "answer": answer}
    path = f"/difficulties/{difficulty_id}/answer"
    return await api.post("plans", path, session.token, body)


@dataclass(frozen=True)
class RequestReports:
    kind: str
    topic: str
    units: list[str]
    indicators: list[str]
    period_start: date
    period_end: date
    due_before: date
    plan_id: str


async def request_reports(command: RequestReports, session: Session, api: ServiceApi) -> Any:
    body = {
        "requesting_unit": session.unit_code,
        "kind": command.kind,
        "topic": command.topic,
        "units": command.units,
        "indicators": command.indicators,
        "period_start": command.period_start.isoformat(),
        "period_end": command.period_end.isoformat(),
        "due_before": command.due_before.isoformat(),
        "plan_id": command.plan_id or None,
    }
    return await api.post("plans", "/report-requests", session.token, body)
