"""A unit's annual staff conference (hội nghị cán bộ, công chức, viên chức và người lao
động): see it, record that it was held, attach its minutes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from services.portal.adapters.api import ApiError
from services.portal.domain.oversight import CONFERENCE_KEY, conference_refusal
from services.portal.domain.session import Session
from services.portal.entrypoints.http.common import (
    Form,
    SignedIn,
    learn_names,
    portal,
    redirect,
    render,
)
from services.portal.handlers import commands

router = APIRouter()


async def _context(request: Request, session: Session, obligation_id: str) -> dict[str, Any]:
    api = portal(request).api
    obligation = await api.get("reports", f"/obligations/{obligation_id}", session.token)
    if obligation["schedule_key"] != CONFERENCE_KEY:
        raise ApiError(404, {"message": "not a staff conference"})
    states = await api.get(
        "reports",
        "/conferences",
        session.token,
        {"plan_id": obligation["plan_id"], "unit": obligation["unit_code"]},
    )
    await learn_names(request, session.token, [obligation["unit_code"]])
    state = states[0] if states else {"state": "missing", "conference": None}
    return {"obligation": obligation, "state": state, "conference": state.get("conference")}


@router.get("/hoi-nghi/{obligation_id}")
async def conference_page(request: Request, session: SignedIn, obligation_id: str) -> Response:
    context = await _context(request, session, obligation_id)
    context["attached"] = request.query_params.get("tep", "")
    context["attachment_error"] = request.query_params.get("tep_loi", "")
    return render(request, "conference.html.j2", context)


@router.post("/hoi-nghi/{obligation_id}")
async def record(request: Request, session: SignedIn, form: Form, obligation_id: str) -> Response:
    context = await _context(request, session, obligation_id)
    obligation = context["obligation"]
    participants = form.get("participants", "").strip()
    body: dict[str, Any] = {
        "plan_id": obligation["plan_id"],
        "unit_code": obligation["unit_code"],
        "held_on": form.get("held_on", ""),
        "participants": int(participants) if participants.isdigit() else None,
    }
    try:
        recorded = await portal(request).api.post("reports", "/conferences", session.token, body)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        context.update(error=conference_refusal(exc.status, exc.error.get("field")), form=form)
        return render(request, "conference.html.j2", context, status=exc.status)
    note = await _attach_minutes(request, session, recorded["id"])
    return redirect(f"/hoi-nghi/{obligation_id}{note}")


async def _attach_minutes(request: Request, session: Session, conference_id: str) -> str:
    """The minutes sent with the form, if any; the conference is recorded whatever becomes
    of the file (the page says why a file was not taken)."""
    upload = (await request.form()).get("minutes")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return ""
    content = await upload.read(commands.MAX_ATTACHMENT_BYTES + 1)
    path = f"/conferences/{conference_id}/minutes/{quote(upload.filename, safe='')}"
    try:
        await portal(request).api.response(
            "reports",
            "PUT",
            path,
            session.token,
            content=content,
            headers={"Content-Type": upload.content_type or "application/octet-stream"},
        )
    except ApiError:
        message = "Không đính kèm được tệp: chỉ nhận PDF, DOCX, DOC, XLSX, JPEG, PNG đến 20 MB."
        return "?tep_loi=" + quote(message, safe="")
    return "?tep=" + quote(upload.filename, safe="")
