"""The public page ("dân biết, dân kiểm tra"), without sign-in: each issued plan, its
content, the units it binds, which of them reported on time, and the published
consolidations. Nothing personal: no names of people, no narratives, no addresses."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portal.adapters.api import ApiError, Service
from services.portal.domain import board, oversight
from services.portal.domain import inspections as inspection_views
from services.portal.entrypoints.http.common import portal, render

router = APIRouter()
NOT_SET_UP = (
    "Trang công khai chưa đọc được dữ liệu: quản trị hệ thống cần cấp cho cổng thông tin một "
    "mã truy cập chỉ đọc (QCDC_PUBLIC_TOKEN)."
)


async def _read(request: Request, service: Service, path: str, params: Any = None) -> Any:
    """A read with the portal's read-only token: a visitor is never sent to sign in."""
    parts = portal(request)
    try:
        return await parts.api.get(service, path, parts.settings.public_token, params)
    except ApiError as exc:
        if exc.status in (401, 403):
            raise ApiError(503, {"message": NOT_SET_UP}) from exc
        raise


def _cacheable(request: Request, response: Response) -> Response:
    seconds = portal(request).settings.public_cache_seconds
    response.headers["Cache-Control"] = f"public, max-age={seconds}"
    response.headers["Vary"] = "Accept-Encoding"
    return response


@router.get("/cong-khai")
async def public_plans(request: Request) -> Response:
    plans = await _read(request, "plans", "/plans")
    plans = [p for p in plans if p["status"] in ("issued", "amended", "closed")]
    context = {"plans": plans, **await _public_oversight(request)}
    return _cacheable(request, render(request, "public_plans.html.j2", context))


async def _public_oversight(request: Request) -> dict[str, Any]:
    """Answered and closed recommendations after supervision (organisation, topic, unit and
    dates) and inspections done with their actions closed (kind, topic, units, day and
    counts): never a text an official wrote (a recommendation, an answer, a conclusion, a
    finding, a report), nor who wrote it. A list that cannot be read says so alone."""

    async def read(path: str) -> list[dict[str, Any]] | None:
        try:
            found: list[dict[str, Any]] = await _read(request, "reports", path)
        except ApiError:
            return None
        return found

    recommendations, inspections, units = await asyncio.gather(
        read("/recommendations"), read("/inspections"), _read(request, "plans", "/units")
    )
    names = {u["code"]: u["name"] for u in units}
    return {
        "recommendations": oversight.public_recommendations(recommendations or [], names),
        "recommendations_unavailable": recommendations is None,
        "inspections": inspection_views.public_inspections(inspections or [], names),
        "inspections_unavailable": inspections is None,
    }


@router.get("/cong-khai/ke-hoach/{plan_id}")
async def public_plan(request: Request, plan_id: str) -> Response:
    plan, units = await asyncio.gather(
        _read(request, "plans", f"/plans/{plan_id}"), _read(request, "plans", "/units")
    )
    if plan["status"] == "draft":
        raise ApiError(404, {"message": "no such plan"})
    names = {u["code"]: u["name"] for u in units}
    entries = await asyncio.gather(
        *(_entry(request, plan_id, entry["key"], entry) for entry in plan["schedule"])
    )
    try:
        states = await _read(request, "reports", "/conferences", {"plan_id": plan_id})
    except ApiError:
        states = []
    context = {
        "plan": plan,
        "bound": sorted(names.get(code, code) for code in plan["assignees"]),
        "entries": entries,
        "percent": board.percent_text,
        "conferences": oversight.conference_rows_of_states(states, names),
    }
    return _cacheable(request, render(request, "public_plan.html.j2", context))


async def _entry(request: Request, plan_id: str, key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """One schedule entry: per receiving unit, every expected unit's status and the
    published consolidations."""
    obligations = await _read(
        request, "reports", "/obligations", {"plan_id": plan_id, "schedule_key": key}
    )
    receivers = sorted({o["receiving_unit"] for o in obligations})
    groups = []
    for receiving in receivers:
        query = {"plan_id": plan_id, "schedule_key": key, "receiving_unit": receiving}
        current, published = await asyncio.gather(
            _read(request, "reports", "/consolidations", query),
            _read(request, "reports", "/consolidations/published", query),
        )
        rows = board.rows_of(current)
        groups.append(
            {
                "receiving_unit": current["receiving_unit"],
                "rows": rows,
                "tally": board.tally(rows),
                "published": published,
            }
        )
    return {"entry": entry, "groups": groups}


@router.get("/cong-khai/tong-hop/{consolidation_id}")
async def public_consolidation(request: Request, consolidation_id: str) -> Response:
    found = await _read(request, "reports", f"/consolidations/published/{consolidation_id}")
    context = {"published": found, "consolidation": found["consolidation"]}
    context["percent"] = board.percent_text
    return _cacheable(request, render(request, "public_consolidation.html.j2", context))
