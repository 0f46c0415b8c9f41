"""Oversight pages a unit works on: the written answer to a recommendation after supervision
and its implementation reports (``/kien-nghi/{obligation}``), the follow-up of an action an
inspection requires (``/khac-phuc/{obligation}``: the inspected unit reports, the inspecting
unit closes or returns), and the inspecting unit's list of the actions it follows up
(``/kiem-tra``). Every command goes to the reports service with the user's own credential."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portal.adapters.api import ApiError
from services.portal.domain import inspections as views
from services.portal.domain.entry import refusal_message
from services.portal.domain.session import Session
from services.portal.entrypoints.http.common import (
    Form,
    SignedIn,
    learn_names,
    portal,
    redirect,
    render,
)

router = APIRouter()


async def _obligation(
    request: Request, session: Session, obligation_id: str, kind: views.ObligationKind
) -> dict[str, Any]:
    found: dict[str, Any] = await portal(request).api.get(
        "reports", f"/obligations/{obligation_id}", session.token
    )
    if views.kind_of(found) is not kind:
        raise ApiError(404, {"message": "not an obligation of this kind"})
    return found


def _refusal(exc: ApiError) -> str:
    if exc.status not in (409, 422):
        raise exc
    return views.oversight_refusal(
        str(exc.error.get("field") or ""), refusal_message(exc.status, exc.message)
    )


# --- recommendations after supervision -------------------------------------------------------


async def _recommendation_context(
    request: Request, session: Session, obligation_id: str
) -> dict[str, Any]:
    obligation = await _obligation(
        request, session, obligation_id, views.ObligationKind.RECOMMENDATION
    )
    found = await portal(request).api.get(
        "reports", f"/recommendations/{views.subject_id(obligation)}", session.token
    )
    await learn_names(
        request, session.token, [found["addressed_unit"], found["registered_by_unit"]]
    )
    own = session.submits and session.unit_code == found["addressed_unit"]
    return {"obligation": obligation, "recommendation": found, "own": own}


@router.get("/kien-nghi/{obligation_id}")
async def recommendation_page(request: Request, session: SignedIn, obligation_id: str) -> Response:
    context = await _recommendation_context(request, session, obligation_id)
    return _shown(request, "recommendation.html.j2", context)


def _shown(request: Request, template: str, context: dict[str, Any]) -> Response:
    """A page as it is, saying what was just sent (``?da_gui=``) if anything."""
    context["done"] = request.query_params.get("da_gui", "")
    return render(request, template, context)


@router.post("/kien-nghi/{obligation_id}")
async def answer_recommendation(
    request: Request, session: SignedIn, form: Form, obligation_id: str
) -> Response:
    """The written answer, or (once answered) an implementation report."""
    context = await _recommendation_context(request, session, obligation_id)
    rid = context["recommendation"]["id"]
    text = form.get("text", "").strip()
    body: dict[str, Any]
    if context["recommendation"]["status"] == "awaiting_answer":
        path, body, field = f"/recommendations/{rid}/answer", {"answer": text}, "answer"
    else:
        completed = form.get("completed") == "1"
        path = f"/recommendations/{rid}/implementation"
        body, field = {"content": text, "completed": completed}, "content"
    page = ("/kien-nghi", "recommendation.html.j2")
    return await _send(request, session, context, form, (path, body, field, "1"), page)


# --- inspections: follow-ups of required actions ----------------------------------------------


async def _follow_up_context(
    request: Request, session: Session, obligation_id: str
) -> dict[str, Any]:
    obligation = await _obligation(request, session, obligation_id, views.ObligationKind.FOLLOW_UP)
    action = await portal(request).api.get(
        "reports", f"/inspection-actions/{views.subject_id(obligation)}", session.token
    )
    await learn_names(
        request,
        session.token,
        [
            action["inspected_unit"],
            action["inspecting_unit"],
            *(s["by_unit"] for s in action["history"]),
        ],
    )
    return {
        "obligation": obligation,
        "action": action,
        "reports": session.submits and session.unit_code == action["inspected_unit"],
        "decides": session.inspects and session.unit_code == action["inspecting_unit"],
        "action_label": views.ACTION_LABELS.get(action["status"], action["status"]),
        "step_labels": views.STEP_LABELS,
    }


@router.get("/khac-phuc/{obligation_id}")
async def follow_up_page(request: Request, session: SignedIn, obligation_id: str) -> Response:
    context = await _follow_up_context(request, session, obligation_id)
    return _shown(request, "follow_up.html.j2", context)


@router.post("/khac-phuc/{obligation_id}")
async def report_follow_up(
    request: Request, session: SignedIn, form: Form, obligation_id: str
) -> Response:
    """The inspected unit reports on the action (``done``: carried out, asks for closing)."""
    context = await _follow_up_context(request, session, obligation_id)
    content = form.get("content", "").strip()
    body = {"content": content, "done": form.get("done") == "1"}
    path = f"/inspection-actions/{context['action']['id']}/follow-ups"
    return await _send(request, session, context, form, (path, body, "content", "bao-cao"))


@router.post("/khac-phuc/{obligation_id}/quyet-dinh")
async def decide(request: Request, session: SignedIn, form: Form, obligation_id: str) -> Response:
    """The inspecting unit closes the action, or returns it with a reason."""
    context = await _follow_up_context(request, session, obligation_id)
    action_id = context["action"]["id"]
    if form.get("decision") == "close":
        path, body = f"/inspection-actions/{action_id}/close", {"note": form.get("note", "")}
        return await _send(request, session, context, form, (path, body, "", "dong"))
    reason = form.get("reason", "").strip()
    path = f"/inspection-actions/{action_id}/return"
    sent = (path, {"reason": reason}, "reason", "tra-lai")
    return await _send(request, session, context, form, sent)


async def _send(
    request: Request,
    session: Session,
    context: dict[str, Any],
    form: dict[str, str],
    sent: tuple[str, dict[str, Any], str, str],
    page: tuple[str, str] = ("/khac-phuc", "follow_up.html.j2"),
) -> Response:
    """Post an answer, a follow-up or a decision (``sent``: path, body, the field that must
    not be empty, what was done); back to the page (``page``: its path prefix, its
    template), or the page again with the refusal."""
    path, body, required, done = sent
    prefix, template = page
    error = views.oversight_refusal(required, "") if required and not body[required] else ""
    if not error:
        try:
            await portal(request).api.post("reports", path, session.token, body)
        except ApiError as exc:
            error = _refusal(exc)
        else:
            return redirect(f"{prefix}/{context['obligation']['id']}?da_gui={done}")
    context.update(error=error, form=form, failed=done)
    return render(request, template, context, status=422)


@router.get("/kiem-tra")
async def inspecting(request: Request, session: SignedIn) -> Response:
    """What the signed-in unit inspects: the actions it required, reported done first."""
    api = portal(request).api
    params = {"inspecting_unit": session.unit_code}
    found, inspections = await asyncio.gather(
        api.get("reports", "/inspection-actions", session.token, params),
        api.get("reports", "/inspections", session.token, params),
    )
    order = {"reported_done": 0, "open": 1, "closed": 2}
    actions = sorted(found, key=lambda a: order.get(a["status"], 3))
    codes = [a["inspected_unit"] for a in actions]
    codes += [u["code"] for i in inspections for u in i["units"]]
    await learn_names(request, session.token, codes)
    context = {
        "actions": actions,
        "inspections": inspections,
        "labels": views.ACTION_LABELS,
        "symbols": views.ACTION_SYMBOLS,
        "badges": views.ACTION_BADGES,
        "kinds": views.KIND_LABELS,
    }
    return render(request, "inspecting.html.j2", context)


# --- inspections on the board and the unit's page ---------------------------------------------


async def board_inspections(
    request: Request, session: Session, consolidation: dict[str, Any]
) -> dict[str, Any]:
    """Per unit of the board: inspections scheduled and done and the actions required (from
    the consolidation), with the nearest deadline of the actions not closed yet."""
    summary = consolidation.get("inspections") or {}
    if not summary.get("by_unit"):
        return {"inspections": []}
    api = portal(request).api

    async def actions(status: str) -> list[dict[str, Any]]:
        try:
            found: list[dict[str, Any]] = await api.get(
                "reports", "/inspection-actions", session.token, {"status": status, "limit": 1000}
            )
        except ApiError:
            return []  # the counts stand without the deadlines
        return found

    pending = await asyncio.gather(actions("open"), actions("reported_done"))
    return {"inspections": views.inspection_rows(summary, [a for p in pending for a in p])}


async def unit_inspections(request: Request, session: Session, unit: dict[str, Any]) -> Any:
    """The unit's own row: every inspection of it, whatever the period."""
    found = await portal(request).api.get(
        "reports", "/inspections", session.token, {"inspected_unit": unit["code"]}
    )
    tally = views.inspection_tally(found, unit["code"], unit["name"])
    return [tally] if tally.scheduled else []
