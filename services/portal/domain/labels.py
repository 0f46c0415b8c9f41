"""What the portal says to its readers, in Vietnamese: statuses, roles, kinds, dates."""

from __future__ import annotations

from datetime import date, datetime

from shared.vntime import ICT

ROLE_LABELS = {
    "submitter": "Cán bộ đầu mối (nộp báo cáo)",
    "reviewer": "Cán bộ tiếp nhận, xem xét báo cáo",
    "planner": "Cán bộ lập kế hoạch",
    "administrator": "Quản trị",
    "integrator": "Chỉ đọc",
    "front": "Mặt trận Tổ quốc (kiến nghị sau giám sát)",
}

KIND_LABELS = {
    "province": "Cấp tỉnh",
    "department": "Sở, ban, ngành",
    "public_service_unit": "Đơn vị sự nghiệp công lập",
    "district": "Cấp huyện",
    "commune": "Cấp xã",
}

REPORT_KIND_LABELS = {
    "six_month": "Báo cáo 06 tháng",
    "annual": "Báo cáo năm",
    "thematic": "Báo cáo chuyên đề",
    "ad_hoc": "Báo cáo đột xuất",
    "sub_plan": "Kế hoạch triển khai",
}

RECOMMENDATION_PREFIX = "recommendation-"
"""Schedule key prefix of the answer to a recommendation after supervision."""
FOLLOW_UP_PREFIX = "inspection-"
"""Schedule key prefix of the follow-up of an action an inspection requires."""
CONFERENCE_KEY = "staff_conference"
CONFERENCE_OBLIGATION = "Hội nghị cán bộ, công chức, viên chức và người lao động"


def obligation_title(obligation: dict[str, object]) -> str:
    """What an obligation asks for: its report kind, the staff conference, the answer to a
    recommendation or the follow-up of an inspection."""
    key = str(obligation.get("schedule_key", ""))
    if key == CONFERENCE_KEY:
        return CONFERENCE_OBLIGATION
    if key.startswith(RECOMMENDATION_PREFIX):
        return "Trả lời kiến nghị sau giám sát"
    if key.startswith(FOLLOW_UP_PREFIX):
        return "Khắc phục sau kiểm tra, khảo sát"
    return label(REPORT_KIND_LABELS, str(obligation.get("report_kind", "")))


OBLIGATION_LABELS = {
    "open": "Chưa nộp",
    "submitted": "Đã nộp, chờ xem xét",
    "accepted": "Đã tiếp nhận",
    "returned": "Trả lại để hoàn thiện",
    "waived": "Không phải nộp",
}

REPORT_LABELS = {
    "submitted": "Chờ xem xét",
    "accepted": "Đã tiếp nhận",
    "returned": "Trả lại để hoàn thiện",
}

PLAN_LABELS = {
    "draft": "Dự thảo",
    "issued": "Đã ban hành",
    "amended": "Đã điều chỉnh",
    "closed": "Đã kết thúc",
}

DELIVERY_LABELS = {
    "pending": "Đang chờ gửi",
    "sending": "Đang gửi",
    "sent": "Đã gửi",
    "failed": "Gửi không được",
    "held": "Gom vào bản tin ngày",
}


def label(table: dict[str, str], key: str | None) -> str:
    """A known key's label; an unknown one (kinds and statuses are data) shows as it is."""
    if not key:
        return ""
    return table.get(key, key)


def parse_instant(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def day(value: str | date | datetime | None) -> str:
    """dd/mm/yyyy, in Vietnam time for instants."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = parse_instant(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.astimezone(ICT).date()
    assert value is not None
    return value.strftime("%d/%m/%Y")


def moment(value: str | datetime | None) -> str:
    """HH:MM dd/mm/yyyy in Vietnam time."""
    instant = parse_instant(value)
    return instant.astimezone(ICT).strftime("%H:%M %d/%m/%Y") if instant else ""
