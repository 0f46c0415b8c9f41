"""The rest of the work: a unit's page, consolidations (figures, downloads, publish),
difficulties (raise, read, answer), report requests, and the delivery log."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portal.adapters.api import ApiError
from services.portal.domain import board, oversight
from services.portal.domain.entry import indicator_fields, refusal_message
from services.portal.domain.session import Session
from services.portal.entrypoints.http import oversight as oversight_pages
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


@router.get("/don-vi/{code}")
async def unit_page(request: Request, session: SignedIn, code: str) -> Response:
    """Obligations and deadlines, reports and their versions, reminders and urgings sent."""
    api = portal(request).api
    unit, obligations = await asyncio.gather(
        api.get("plans", f"/units/{code}", session.token),
        api.get("reports", "/obligations", session.token, {"unit": code}),
    )

    async def versions(obligation: dict[str, Any]) -> list[Any]:
        found: list[Any] = await api.get(
            "reports", f"/obligations/{obligation['id']}/reports", session.token
        )
        return found

    all_versions = await asyncio.gather(*(versions(o) for o in obligations))
    await learn_names(request, session.token, (o["receiving_unit"] for o in obligations))
    try:
        deliveries = await api.get(
            "notify", "/deliveries", session.token, {"unit": code, "limit": 50}
        )
    except ApiError:
        deliveries = []  # the notify API is the administrators' and the unit's own
    context = {
        "unit": unit,
        "items": list(zip(obligations, all_versions, strict=True)),
        "deliveries": deliveries,
        **await _unit_oversight(request, session, unit),
    }
    return render(request, "unit.html.j2", context)


async def _unit_oversight(
    request: Request, session: Session, unit: dict[str, Any]
) -> dict[str, Any]:
    """The unit's staff conference per plan and its recommendations after supervision."""
    api, code = portal(request).api, unit["code"]
    conferences, recommendations, inspections = await asyncio.gather(
        api.get("reports", "/conferences", session.token, {"unit": code}),
        api.get("reports", "/recommendations", session.token, {"addressed_unit": code}),
        oversight_pages.unit_inspections(request, session, unit),
    )
    rows = [
        replace(row, name=f"Kế hoạch {state['plan_doc_number']}")
        for row, state in zip(
            oversight.conference_rows_of_states(conferences, {}), conferences, strict=True
        )
    ]
    tally = oversight.recommendation_tally(recommendations, code, unit["name"])
    return {
        "conferences": rows,
        "first_column": "Kế hoạch",
        "recommendations": [tally] if tally.received else [],
        "inspections": inspections,
    }


@router.get("/tong-hop")
async def consolidations(
    request: Request, session: SignedIn, plan_id: str = "", schedule_key: str = ""
) -> Response:
    api = portal(request).api
    plans = [p for p in await api.get("plans", "/plans", session.token) if p["status"] != "draft"]
    context: dict[str, Any] = {"plans": plans, "plan_id": plan_id, "schedule_key": schedule_key}
    if plan_id and schedule_key:
        key = {
            "plan_id": plan_id,
            "schedule_key": schedule_key,
            "receiving_unit": session.unit_code,
        }
        current, published = await asyncio.gather(
            api.get("reports", "/consolidations", session.token, key),
            api.get("reports", "/consolidations/published", session.token, key),
        )
        context.update(
            consolidation=current,
            published=published,
            key=key,
            percent=board.percent_text,
            error=request.query_params.get("loi", ""),
        )
    return render(request, "consolidations.html.j2", context)


@router.get("/tong-hop/tai-ve")
async def download(
    request: Request,
    session: SignedIn,
    plan_id: str,
    schedule_key: str,
    format: str = "docx",
    published: str = "",
) -> Response:
    """The DOCX or XLSX document, passed through from the reports service."""
    if format not in ("docx", "xlsx"):
        format = "docx"
    api = portal(request).api
    if published:
        path, params = f"/consolidations/published/{published}", {"format": format}
    else:
        path = "/consolidations"
        params = {
            "plan_id": plan_id,
            "schedule_key": schedule_key,
            "receiving_unit": session.unit_code,
            "format": format,
        }
    answer = await api.response("reports", "GET", path, session.token, params=params)
    headers = {
        "Content-Disposition": answer.headers.get("content-disposition", "attachment"),
    }
    return Response(answer.content, media_type=answer.headers.get("content-type"), headers=headers)


@router.post("/tong-hop/cong-bo")
async def publish(request: Request, session: SignedIn, form: Form) -> Response:
    plan_id, key = form.get("plan_id", ""), form.get("schedule_key", "")
    where = f"/tong-hop?plan_id={plan_id}&schedule_key={key}"
    try:
        await commands.publish_consolidation(plan_id, key, session, portal(request).api)
    except ApiError as exc:
        return redirect(where + "&loi=" + _q(refusal_message(exc.status, exc.message)))
    return redirect(where + "&da_cong_bo=1")


def _q(text: str) -> str:
    return quote(text, safe="")


@router.get("/vuong-mac")
async def difficulties(request: Request, session: SignedIn, plan_id: str = "") -> Response:
    api = portal(request).api
    plans = [p for p in await api.get("plans", "/plans", session.token) if p["status"] != "draft"]
    plan_id = plan_id or (plans[0]["id"] if plans else "")
    found = await api.get("plans", "/difficulties", session.token, {"plan_id": plan_id})
    codes = [d["unit_code"] for d in found] + [d["answered_by"] for d in found]
    await learn_names(request, session.token, codes)
    plan = next((p for p in plans if p["id"] == plan_id), None)
    context = {
        "plans": plans,
        "plan": plan,
        "difficulties": found,
        "error": request.query_params.get("loi", ""),
    }
    return render(request, "difficulties.html.j2", context)


@router.post("/vuong-mac")
async def raise_difficulty(request: Request, session: SignedIn, form: Form) -> Response:
    plan_id = form.get("plan_id", "")
    try:
        await commands.raise_difficulty(
            plan_id,
            form.get("content_area", ""),
            form.get("description", "").strip(),
            session,
            portal(request).api,
        )
    except ApiError as exc:
        message = refusal_message(exc.status, exc.message)
        return redirect(f"/vuong-mac?plan_id={plan_id}&loi={_q(message)}")
    return redirect(f"/vuong-mac?plan_id={plan_id}")


@router.post("/vuong-mac/{difficulty_id}/tra-loi")
async def answer(request: Request, session: SignedIn, form: Form, difficulty_id: str) -> Response:
    plan_id = form.get("plan_id", "")
    try:
        await commands.answer_difficulty(
            difficulty_id, form.get("answer", "").strip(), session, portal(request).api
        )
    except ApiError as exc:
        message = refusal_message(exc.status, exc.message)
        return redirect(f"/vuong-mac?plan_id={plan_id}&loi={_q(message)}")
    return redirect(f"/vuong-mac?plan_id={plan_id}")


@router.get("/yeu-cau")
async def requests_page(request: Request, session: SignedIn) -> Response:
    return render(request, "requests.html.j2", await _request_context(request, session))


async def _request_context(request: Request, session: Session) -> dict[str, Any]:
    api = portal(request).api
    units, catalogue, found, plans = await asyncio.gather(
        api.get("plans", "/units", session.token),
        api.get("reports", "/indicators", session.token),
        api.get("plans", "/report-requests", session.token, {"requesting_unit": session.unit_code}),
        api.get("plans", "/plans", session.token),
    )
    return {
        "units": [u for u in units if u["active"] and u["code"] != session.unit_code],
        "indicators": indicator_fields(catalogue),
        "requests": found,
        "plans": [p for p in plans if p["status"] != "draft"],
        "names": {u["code"]: u["name"] for u in units},
    }


@router.post("/yeu-cau")
async def create_request(request: Request, session: SignedIn, values: Form) -> Response:
    form = await request.form()  # read once already; the lists are in it
    units = [v for v in form.getlist("units") if isinstance(v, str)]
    indicators = [v for v in form.getlist("indicators") if isinstance(v, str)]
    try:
        command = commands.RequestReports(
            kind=values.get("kind", "thematic"),
            topic=values.get("topic", "").strip(),
            units=units,
            indicators=indicators,
            period_start=date.fromisoformat(values.get("period_start", "")),
            period_end=date.fromisoformat(values.get("period_end", "")),
            due_before=date.fromisoformat(values.get("due_before", "")),
            plan_id=values.get("plan_id", ""),
        )
        await commands.request_reports(command, session, portal(request).api)
    except ValueError:
        error = "Hãy nhập đủ các ngày (ngày/tháng/năm)."
    except ApiError as exc:
        error = refusal_message(exc.status, exc.message)
    else:
        return redirect("/yeu-cau?da_gui=1")
    context = {**await _request_context(request, session), "error": error, "form": values}
    return render(request, "requests.html.j2", context, status=422)


@router.get("/nhat-ky-gui")
async def delivery_log(
    request: Request, session: SignedIn, status: str = "", unit: str = ""
) -> Response:
    params = {"status": status, "unit": unit, "limit": 200}
    found = await portal(request).api.get("notify", "/deliveries", session.token, params)
    context = {"deliveries": found, "status": status, "unit": unit}
    return render(request, "deliveries.html.j2", context)
