"""Pages of the work itself: a unit's obligations, the entry form and its receipt, a report
with its review, the reviewer's inbox."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from services.portal.adapters.api import ApiError
from services.portal.domain import entry as forms
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


@router.get("/")
async def home(request: Request, session: SignedIn) -> Response:
    """A unit's own obligations; a reviewer's inbox beside them."""
    api = portal(request).api
    own = await api.get("reports", "/obligations", session.token, {"unit": session.unit_code})
    inbox = await _inbox(request, session) if session.reviews else []
    own = [o for o in own if o["status"] != "waived"]
    return render(request, "home.html.j2", {"obligations": own, "inbox": inbox})


async def _inbox(request: Request, session: Session) -> list[dict[str, Any]]:
    api = portal(request).api
    waiting = await api.get(
        "reports",
        "/obligations",
        session.token,
        {"receiving_unit": session.unit_code, "status": "submitted"},
    )

    async def latest(obligation: dict[str, Any]) -> dict[str, Any]:
        versions = await api.get(
            "reports", f"/obligations/{obligation['id']}/reports", session.token
        )
        return {"obligation": obligation, "report": versions[-1] if versions else None}

    return list(await asyncio.gather(*(latest(o) for o in waiting)))


@router.get("/hop-thu")
async def inbox(request: Request, session: SignedIn) -> Response:
    waiting = await _inbox(request, session)
    await learn_names(request, session.token, (i["obligation"]["unit_code"] for i in waiting))
    return render(request, "inbox.html.j2", {"inbox": waiting})


async def _obligation_context(request: Request, session: Session, obligation_id: str) -> Any:
    api = portal(request).api
    obligation, versions = await asyncio.gather(
        api.get("reports", f"/obligations/{obligation_id}", session.token),
        api.get("reports", f"/obligations/{obligation_id}/reports", session.token),
    )
    codes = [obligation["unit_code"], obligation["receiving_unit"]]
    await learn_names(request, session.token, codes + [v["reviewed_by_unit"] for v in versions])
    return obligation, versions


@router.get("/nghia-vu/{obligation_id}")
async def obligation_page(request: Request, session: SignedIn, obligation_id: str) -> Response:
    obligation, versions = await _obligation_context(request, session, obligation_id)
    plan = await _plan(request, session, obligation["plan_id"])
    context = {"obligation": obligation, "versions": versions, "plan": plan}
    return render(request, "obligation.html.j2", context)


async def _plan(request: Request, session: Session, plan_id: str) -> dict[str, Any]:
    try:
        found: dict[str, Any] = await portal(request).api.get(
            "plans", f"/plans/{plan_id}", session.token
        )
        return found
    except ApiError:
        return {"id": plan_id, "doc_number": "", "title": "", "content_areas": []}


async def _catalogue(request: Request, session: Session) -> list[forms.IndicatorField]:
    return forms.indicator_fields(
        await portal(request).api.get("reports", "/indicators", session.token)
    )


async def _form_context(
    request: Request, session: Session, obligation_id: str, entry: forms.Entry
) -> dict[str, Any]:
    obligation, versions = await _obligation_context(request, session, obligation_id)
    plan = await _plan(request, session, obligation["plan_id"])
    fields = await _catalogue(request, session)
    latest = versions[-1] if versions else None
    if not entry.narrative and not entry.indicators and latest is not None:
        # A revision starts from what was sent last.
        entry.narrative = dict(latest["narrative"])
        entry.indicators = {k: str(v) for k, v in latest["indicators"].items()}
    areas = {a["code"]: a for a in plan.get("content_areas", [])}
    groups = [(area, [f for f in fields if f.content_area == code]) for code, area in areas.items()]
    loose = [f for f in fields if f.content_area not in areas]
    return {
        "obligation": obligation,
        "plan": plan,
        "latest": latest,
        "groups": groups,
        "loose": loose,
        "entry": entry,
        "idempotency_key": secrets.token_urlsafe(16),
    }


@router.get("/nop/{obligation_id}")
async def entry_form(request: Request, session: SignedIn, obligation_id: str) -> Response:
    context = await _form_context(request, session, obligation_id, forms.Entry())
    return render(request, "entry.html.j2", context)


@router.post("/nop/{obligation_id}")
async def submit(request: Request, session: SignedIn, form: Form, obligation_id: str) -> Response:
    api = portal(request).api
    obligation = await api.get("reports", f"/obligations/{obligation_id}", session.token)
    plan = await _plan(request, session, obligation["plan_id"])
    fields = await _catalogue(request, session)
    areas = [a["code"] for a in plan.get("content_areas", [])]
    entry = forms.read_form(form, areas, fields)
    values = forms.values_or_errors(entry, fields)
    if not entry.errors:
        command = commands.SubmitReport(
            obligation_id, entry.narrative, values, form.get("idempotency_key", "")
        )
        try:
            receipt = await commands.submit_report(command, session, api)
        except ApiError as exc:
            if exc.status != 422:
                entry.message = forms.refusal_message(exc.status, exc.message)
            else:
                entry.errors = forms.explain_refusal(exc.error, fields, values)
                entry.message = forms.refusal_message(422, "")
        else:
            note = await _attach_upload(request, session, receipt["report_id"])
            return redirect(f"/bien-nhan/{receipt['report_id']}{note}")
    else:
        entry.message = forms.refusal_message(422, "")
    context = await _form_context(request, session, obligation_id, entry)
    context["idempotency_key"] = form.get("idempotency_key") or context["idempotency_key"]
    return render(request, "entry.html.j2", context, status=422)


async def _attach_upload(request: Request, session: Session, report_id: str) -> str:
    """Sends the form's file, if any, to the report; the query telling the receipt page how
    it went (the report itself is received either way)."""
    upload = (await request.form()).get("attachment")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return ""
    content = await upload.read(commands.MAX_ATTACHMENT_BYTES + 1)
    command = commands.AttachFile(report_id, upload.filename, upload.content_type or "", content)
    try:
        await commands.attach_file(command, session, portal(request).api)
    except ApiError as exc:
        return "?tep_loi=" + quote(_attachment_refusal(exc), safe="")
    return "?tep=" + quote(upload.filename, safe="")


def _attachment_refusal(exc: ApiError) -> str:
    field = str(exc.error.get("field", ""))
    reason = {
        "content_type": "loại tệp không được nhận (chỉ PDF, DOCX, DOC, XLSX, JPEG, PNG)",
        "content": "tệp rỗng, quá lớn hoặc nội dung không đúng loại tệp",
        "filename": "tên tệp không hợp lệ",
    }.get(field, exc.message)
    return f"Tệp đính kèm chưa được nhận: {reason}."


@router.post("/bao-cao/{report_id}/dinh-kem")
async def attach(request: Request, session: SignedIn, form: Form, report_id: str) -> Response:
    note = await _attach_upload(request, session, report_id)
    return redirect(f"/bien-nhan/{report_id}{note or '?tep_loi=' + quote('Chưa chọn tệp.')}")


@router.get("/bien-nhan/{report_id}")
async def receipt(request: Request, session: SignedIn, report_id: str) -> Response:
    report = await portal(request).api.get("reports", f"/reports/{report_id}", session.token)
    obligation = await portal(request).api.get(
        "reports", f"/obligations/{report['obligation_id']}", session.token
    )
    await learn_names(
        request, session.token, (obligation["unit_code"], obligation["receiving_unit"])
    )
    context = {
        "report": report,
        "obligation": obligation,
        "attached": request.query_params.get("tep", ""),
        "attachment_error": request.query_params.get("tep_loi", ""),
    }
    return render(request, "receipt.html.j2", context)


@router.get("/bao-cao/{report_id}")
async def report_page(request: Request, session: SignedIn, report_id: str) -> Response:
    return await _report_view(request, session, report_id)


async def _report_view(
    request: Request, session: Session, report_id: str, error: str = "", status: int = 200
) -> Response:
    api = portal(request).api
    report = await api.get("reports", f"/reports/{report_id}", session.token)
    obligation, versions = await _obligation_context(request, session, report["obligation_id"])
    plan = await _plan(request, session, obligation["plan_id"])
    fields = {f.code: f for f in await _catalogue(request, session)}
    context = {
        "report": report,
        "obligation": obligation,
        "versions": versions,
        "plan": plan,
        "fields": fields,
        "can_review": session.reviews
        and report["status"] == "submitted"
        and report["version"] == len(versions)
        and obligation["receiving_unit"] == session.unit_code,
        "error": error,
        "done": request.query_params.get("da_xu_ly", ""),
    }
    return render(request, "report.html.j2", context, status=status)


@router.post("/bao-cao/{report_id}/tiep-nhan")
async def accept(request: Request, session: SignedIn, form: Form, report_id: str) -> Response:
    return await _review(request, session, report_id, accept=True, reason="")


@router.post("/bao-cao/{report_id}/tra-lai")
async def return_report(
    request: Request, session: SignedIn, form: Form, report_id: str
) -> Response:
    reason = form.get("reason", "").strip()
    if not reason:
        return await _review_refused(request, session, report_id, "Hãy ghi rõ lý do trả lại.")
    return await _review(request, session, report_id, accept=False, reason=reason)


async def _review(
    request: Request, session: Session, report_id: str, *, accept: bool, reason: str
) -> Response:
    try:
        await commands.review_report(report_id, accept, reason, session, portal(request).api)
    except ApiError as exc:
        message = forms.refusal_message(exc.status, exc.message)
        return await _review_refused(request, session, report_id, message)
    return redirect(f"/bao-cao/{report_id}?da_xu_ly={'tiep-nhan' if accept else 'tra-lai'}")


async def _review_refused(
    request: Request, session: Session, report_id: str, message: str
) -> Response:
    return await _report_view(request, session, report_id, error=message, status=422)
