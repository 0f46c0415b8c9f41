"""The thin flow's demo data, shared by integration and end-to-end tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests import stack
from tests.bodies import schedule_entry

UNITS: list[dict[str, Any]] = [
    {"code": "T89", "name": "Ủy ban nhân dân tỉnh An Bình", "kind": "province"},
    {
        "code": "SNV",
        "name": "Sở Nội vụ",
        "kind": "department",
        "parent_code": "T89",
        "contacts": {"focal_email": "vanphong@snv.anbinh.demo.gov.vn"},
    },
    {
        "code": "STP",
        "name": "Sở Tư pháp",
        "kind": "department",
        "parent_code": "T89",
        "reports_to_code": "SNV",
        "contacts": {
            "focal_email": "dauMoi@stp.anbinh.demo.gov.vn",
            "head_email": "giamdoc@stp.anbinh.demo.gov.vn",
        },
    },
    {
        "code": "X30337",
        "name": "Ủy ban nhân dân xã Mỹ Hòa Hưng",
        "kind": "commune",
        "parent_code": "T89",
        "reports_to_code": "SNV",
        "contacts": {"focal_email": "vanphong@myhoahung.demo.gov.vn"},
    },
]

PLAN: dict[str, Any] = {
    "doc_number": "123/KH-UBND",
    "title": "Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2023",
    "issuing_unit": "T89",
    "issued_on": "2023-02-15",
    "year": 2023,
    "content_areas": [
        {"code": "1", "title": "Công tác lãnh đạo, chỉ đạo của cấp ủy Đảng, chính quyền"},
        {"code": "6", "title": "Kiểm tra, đánh giá và chế độ báo cáo"},
    ],
    "assignees": {"kinds": ["department", "commune"]},
    "schedule": [schedule_entry(title="Báo cáo 6 tháng", receiving_unit="SNV")],
}


async def register_units_and_issue_plan(plans: httpx.AsyncClient) -> dict[str, Any]:
    return await stack.register_units_and_issue_plan(plans, UNITS, PLAN)


def obligated_codes() -> set[str]:
    """Assigned units that owe the six-month report: all but its receiver, Home Affairs."""
    receiver = PLAN["schedule"][0]["receiving_unit"]
    return {
        u["code"]
        for u in UNITS
        if u["kind"] in PLAN["assignees"]["kinds"] and u["code"] != receiver
    }
