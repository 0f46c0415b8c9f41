"""Request bodies the tests send to plans' HTTP API, as a planner or the console writes
them: units of a province and its plan with a six-month report. One builder each, so that a
test names only the fields it is about."""

from __future__ import annotations

from typing import Any

PLAN_TITLE = "Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2023"


def province_units(home_affairs: str = "SNV") -> list[dict[str, Any]]:
    """The province T89 and its Home Affairs department (tag ``home_affairs``)."""
    return [
        {"code": "T89", "name": "Ủy ban nhân dân tỉnh An Bình", "kind": "province"},
        {
            "code": home_affairs,
            "name": "Sở Nội vụ",
            "kind": "department",
            "parent_code": "T89",
            "tags": ["home_affairs"],
        },
    ]


def unit_below(code: str, name: str, kind: str, reports_to: str, **fields: Any) -> dict[str, Any]:
    """A unit right below T89 (unless ``fields`` name another parent) reporting to
    ``reports_to``."""
    body = {"code": code, "name": name, "kind": kind, "parent_code": "T89"}
    return {**body, "reports_to_code": reports_to, **fields}


def schedule_entry(**fields: Any) -> dict[str, Any]:
    """The schedule's six-month report (15/12/2022 to 08/06/2023), due before 10/06/2023 to
    the unit tagged Home Affairs; ``fields`` replace any of it."""
    entry = {"key": "six_month", "kind": "six_month", "period_start": "2022-12-15"}
    due = {"period_end": "2023-06-08", "due_before": "2023-06-10"}
    return {**entry, **due, "receiving_unit": "tag:home_affairs", **fields}


def plan_body(**fields: Any) -> dict[str, Any]:
    """The province's plan 123/KH-UBND for 2023, issued 16/01/2023, with a six-month report;
    ``fields`` replace any of it (``assignees`` at least)."""
    plan: dict[str, Any] = {"doc_number": "123/KH-UBND", "title": PLAN_TITLE, "year": 2023}
    issued = {"issuing_unit": "kind:province", "province": "T89", "issued_on": "2023-01-16"}
    return {**plan, **issued, "schedule": [schedule_entry()], **fields}


def district_plan(parent_id: str, due_before: str = "2023-06-05") -> dict[str, Any]:
    """District H801's sub-plan 45/KH-UBND of the plan ``parent_id``: its units report
    their six months to it, due before ``due_before``."""
    return {
        "doc_number": "45/KH-UBND",
        "title": f"{PLAN_TITLE} của huyện Tân Phú",
        "issuing_unit": "H801",
        "issued_on": "2023-02-10",
        "year": 2023,
        "parent_plan_id": parent_id,
        "assignees": {"subtrees": ["H801"]},
        "schedule": [
            schedule_entry(period_end="2023-06-01", due_before=due_before, receiving_unit="H801")
        ],
    }


def report_body(obligation_id: str, unit_code: str, **fields: Any) -> dict[str, Any]:
    """A report as a unit submits it (``POST /reports``) for its obligation; ``fields`` add
    its narrative, indicators, signer and the rest."""
    return {"obligation_id": obligation_id, "unit_code": unit_code, **fields}


def difficulty_body(
    plan_id: str, unit_code: str, description: str, content_area: str = "3"
) -> dict[str, Any]:
    """A difficulty (vướng mắc) as a unit raises it against a plan (``POST /difficulties``),
    about one of the plan's content areas."""
    return {
        "plan_id": plan_id,
        "unit_code": unit_code,
        "content_area": content_area,
        "description": description,
    }
