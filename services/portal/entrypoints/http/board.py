"""The compliance board (bảng theo dõi): a plan entry's expected units with their status,
rates, chart, filters, CSV export, and live updates over server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from services.portal.adapters.api import ApiError
from services.portal.domain import board, oversight
from services.portal.domain.session import Session
from services.portal.entrypoints.http import oversight as oversight_pages
from services.portal.entrypoints.http.common import SignedIn, portal, render
from shared.vntime import ICT

router = APIRouter()
KEEPALIVE_SECONDS = 15.0


async def _picker(request: Request, session: Session) -> dict[str, Any]:
    plans = await portal(request).api.get("plans", "/plans", session.token)
    plans = [p for p in plans if p["status"] != "draft"]
    return {"plans": plans}


@router.get("/theo-doi")
async def board_page(
    request: Request,
    session: SignedIn,
    plan_id: str = "",
    schedule_key: str = "",
    receiving_unit: str = "",
    kind: str = "",
    district: str = "",
    status: str = "",
    format: str = "html",
    fragment: bool = False,
) -> Response:
    if not plan_id or not schedule_key:
        return render(request, "board_pick.html.j2", await _picker(request, session))
    receiving_unit = receiving_unit or session.unit_code
    key = {"plan_id": plan_id, "schedule_key": schedule_key, "receiving_unit": receiving_unit}
    try:
        consolidation = await portal(request).api.get(
            "reports", "/consolidations", session.token, key
        )
    except ApiError as exc:
        context = {**await _picker(request, session), "error": exc.message, "key": key}
        return render(request, "board_pick.html.j2", context, status=exc.status)
    rows = board.rows_of(consolidation)
    filters = board.Filters(kind=kind, district=district, status=status)
    shown = [r for r in rows if filters.keep(r)]
    if format == "csv":
        name = f"theo-doi_{receiving_unit}_{schedule_key}.csv"
        return Response(
            board.board_csv(shown),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    kinds, districts = board.choices(rows)
    due_at = datetime.fromisoformat(consolidation["heading"]["due_at"])
    # The services' clock, not ours: "today" is the consolidation's as-of.
    today = datetime.fromisoformat(consolidation["as_of"]).astimezone(ICT).date()
    context = {
        "key": key,
        "consolidation": consolidation,
        "heading": consolidation["heading"],
        "rows": shown,
        "tally": board.tally(shown),
        "filters": filters,
        "kinds": kinds,
        "districts": districts,
        "statuses": board.STATUS_LABELS,
        "chart": board.chart_svg(shown, due_at, today),
        "percent": board.percent_text,
        "live": portal(request).feed.connected,
        **_oversight(consolidation),
    }
    context.update(await oversight_pages.board_inspections(request, session, consolidation))
    template = "board_live.html.j2" if fragment else "board.html.j2"
    return render(request, template, context)


def _oversight(consolidation: dict[str, Any]) -> dict[str, Any]:
    """Staff conferences and recommendations per unit, from the same consolidation."""
    return {
        "conferences": oversight.conference_rows(consolidation.get("conferences") or {}),
        "recommendations": oversight.recommendation_rows(
            consolidation.get("recommendations") or {}
        ),
    }


@router.get("/theo-doi/su-kien")
async def board_events(
    request: Request,
    session: SignedIn,
    plan_id: str,
    schedule_key: str,
    receiving_unit: str = "",
) -> StreamingResponse:
    """Server-sent events: one ``change`` per event that concerns this board."""
    hub = portal(request).hub
    queue = hub.listen((plan_id, schedule_key, receiving_unit or session.unit_code))

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n\n"
            while True:
                try:
                    change = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keepalive\n\n"
                    continue
                if change is None:
                    return
                yield f"event: change\ndata: {change.json()}\n\n"
        finally:
            hub.leave(queue)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
