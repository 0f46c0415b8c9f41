"""The portal's view of inspections and of which page meets each kind of obligation."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.portal.domain.inspections import (
    inspection_rows,
    inspection_tally,
    public_inspections,
    work_link,
)
from services.portal.domain.labels import obligation_title


def obligation(key: str, status: str = "open", unit: str = "X001") -> dict[str, Any]:
    return {"id": "o-1", "schedule_key": key, "status": status, "unit_code": unit}


def test_each_kind_of_obligation_leads_to_its_own_form() -> None:
    cases = {
        ("six_month", "open"): ("/nop/o-1", "Nộp báo cáo", True),
        ("six_month", "returned"): ("/nop/o-1", "Nộp lại", True),
        ("six_month", "submitted"): ("/nghia-vu/o-1", "Xem", False),
        ("recommendation-r-1", "open"): ("/kien-nghi/o-1", "Trả lời kiến nghị", True),
        ("recommendation-r-1", "accepted"): ("/kien-nghi/o-1", "Báo cáo thực hiện", False),
        ("inspection-a-1", "open"): ("/khac-phuc/o-1", "Báo cáo khắc phục", True),
        ("inspection-a-1", "returned"): ("/khac-phuc/o-1", "Báo cáo khắc phục", True),
        ("inspection-a-1", "submitted"): ("/khac-phuc/o-1", "Xem", False),
        ("staff_conference", "open"): ("/hoi-nghi/o-1", "Ghi nhận hội nghị", True),
    }
    for (key, status), expected in cases.items():
        link = work_link(obligation(key, status), "X001", submits=True)
        assert (link.href, link.text, link.button) == expected, (key, status)
    # Another unit, or a role that does not submit, only looks; never at the report form.
    for key in ("recommendation-r-1", "inspection-a-1", "staff_conference"):
        for unit, submits in (("X002", True), ("X001", False)):
            link = work_link(obligation(key), unit, submits)
            assert not link.button and not link.href.startswith("/nop/")
    page = work_link(obligation("six_month", "returned"), "X001", True, page=True)
    assert page.text == "Sửa và nộp lại"
    assert work_link(obligation("inspection-a-1"), "X002", True, page=True).text == (
        "Việc phải khắc phục và quá trình khắc phục"
    )
    assert obligation_title(obligation("recommendation-r-1")) == "Trả lời kiến nghị sau giám sát"
    assert obligation_title(obligation("inspection-a-1")) == "Khắc phục sau kiểm tra, khảo sát"


def action(unit: str, status: str, due: str, on_time: bool | None = None) -> dict[str, Any]:
    return {"inspected_unit": unit, "status": status, "due_at": due, "closed_on_time": on_time}


def test_board_rows_carry_the_nearest_open_deadline_and_a_total() -> None:
    summary = {
        "by_unit": [
            {"code": "X001", "name": "Xã A", "scheduled": 2, "done": 1, "actions_required": 3,
             "actions_closed_on_time": 1, "actions_closed_late": 0, "actions_open": 2},
            {"code": "X002", "name": "Xã B", "scheduled": 1},
        ],
        "total": {"scheduled": 3, "done": 1, "actions_required": 3,
                  "actions_closed_on_time": 1, "actions_open": 2},
    }  # fmt: skip
    actions = [
        action("X001", "open", "2023-04-30T16:59:59Z"),
        action("X001", "reported_done", "2023-03-15T16:59:59Z"),
        action("X001", "closed", "2023-02-01T16:59:59Z"),  # closed: not a deadline ahead
        action("X009", "open", "2023-01-01T16:59:59Z"),  # not on this board
    ]
    [a, b, total] = inspection_rows(summary, actions)
    assert (a.scheduled, a.done, a.actions_required, a.closed_on_time, a.open) == (2, 1, 3, 1, 2)
    assert a.nearest_due == datetime(2023, 3, 15, 16, 59, 59, tzinfo=UTC)
    assert (b.scheduled, b.nearest_due) == (1, None)
    assert (total.name, total.scheduled, total.nearest_due) == ("Tổng cộng", 3, a.nearest_due)
    assert inspection_rows({"by_unit": []}, actions) == []


def inspection(unit: dict[str, Any], kind: str = "inspection") -> dict[str, Any]:
    return {"kind": kind, "topic": "Kiểm tra QCDC", "inspecting_unit": "SNV", "units": [unit]}


def visit(code: str, done: bool, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "code": code,
        "done": done,
        "conducted_on": "2023-02-17" if done else None,
        "conclusion": "Ông Nguyễn Văn A chịu trách nhiệm.",
        "findings": [{"content": "Chưa niêm yết.", "actions": actions}] if actions else [],
    }


def test_a_units_tally_and_the_public_rows_without_texts() -> None:
    found = [
        inspection(
            visit(
                "X001",
                True,
                [
                    action("X001", "closed", "2023-03-15T16:59:59Z", on_time=False),
                    action("X001", "open", "2023-04-30T16:59:59Z"),
                ],
            )
        ),
        inspection(visit("X001", False, []), kind="survey"),
    ]
    tally = inspection_tally(found, "X001", "Xã A")
    assert (tally.scheduled, tally.done, tally.actions_required) == (2, 1, 2)
    assert (tally.closed_on_time, tally.closed_late, tally.open) == (0, 1, 1)
    assert tally.nearest_due == datetime(2023, 4, 30, 16, 59, 59, tzinfo=UTC)
    [shown] = public_inspections(found, {"SNV": "Sở Nội vụ", "X001": "Xã A"})
    assert (shown.kind_label, shown.inspecting_name, shown.inspected_name) == (
        "Kiểm tra",
        "Sở Nội vụ",
        "Xã A",
    )
    assert (shown.conducted_on, shown.actions_required, shown.actions_closed) == (
        date(2023, 2, 17),
        2,
        1,
    )
    assert "Nguyễn" not in repr(shown) and "niêm yết" not in repr(shown)
