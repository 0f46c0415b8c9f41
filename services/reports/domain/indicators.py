"""The indicator catalogue of a grassroots-democracy report, and the rules between indicators.

Each indicator has a code, a Vietnamese label, a unit of measure and how it aggregates across
units (a sum, or a count of units reporting "yes"). Rules give field-level errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Aggregation(StrEnum):
    SUM = "sum"
    """Totals add up across units (people, sessions, cases)."""


@dataclass(frozen=True)
class Indicator:
    code: str
    label: str
    unit: str
    aggregation: Aggregation = Aggregation.SUM
    content_area: str = ""


CATALOGUE: tuple[Indicator, ...] = (
    Indicator(
        "conferences_held",
        "Số hội nghị cán bộ, công chức, viên chức, người lao động đã tổ chức",
        "hội nghị",
        content_area="4",
    ),
    Indicator(
        "training_classes",
        "Số lớp tập huấn, bồi dưỡng về thực hiện dân chủ ở cơ sở",
        "lớp",
        content_area="3",
    ),
    Indicator(
        "training_participants",
        "Số lượt người tham gia tập huấn, bồi dưỡng",
        "lượt người",
        content_area="3",
    ),
    Indicator("reception_sessions", "Số buổi tiếp công dân", "buổi", content_area="3"),
    Indicator("citizens_received", "Số lượt công dân được tiếp", "lượt người", content_area="3"),
    Indicator("complaints_received", "Số đơn khiếu nại đã tiếp nhận", "đơn", content_area="3"),
    Indicator("complaints_resolved", "Số đơn khiếu nại đã giải quyết", "đơn", content_area="3"),
    Indicator("denunciations_received", "Số đơn tố cáo đã tiếp nhận", "đơn", content_area="3"),
    Indicator("denunciations_resolved", "Số đơn tố cáo đã giải quyết", "đơn", content_area="3"),
    Indicator(
        "petitions_received", "Số đơn kiến nghị, phản ánh đã tiếp nhận", "đơn", content_area="3"
    ),
    Indicator(
        "petitions_resolved", "Số đơn kiến nghị, phản ánh đã giải quyết", "đơn", content_area="3"
    ),
    Indicator(
        "inspections_conducted",
        "Số cuộc thanh tra, kiểm tra việc thực hiện dân chủ ở cơ sở",
        "cuộc",
        content_area="6",
    ),
    Indicator("violations_handled", "Số vụ việc vi phạm đã xử lý", "vụ việc", content_area="6"),
    Indicator(
        "people_inspection_boards",
        "Số Ban Thanh tra nhân dân đang hoạt động",
        "ban",
        content_area="2",
    ),
    Indicator(
        "investment_supervision_boards",
        "Số Ban Giám sát đầu tư cộng đồng đang hoạt động",
        "ban",
        content_area="2",
    ),
    Indicator(
        "front_recommendations_received",
        "Số kiến nghị của Mặt trận Tổ quốc và các tổ chức chính trị - xã hội đã nhận",
        "kiến nghị",
        content_area="5",
    ),
    Indicator(
        "front_recommendations_answered",
        "Số kiến nghị của Mặt trận Tổ quốc và các tổ chức chính trị - xã hội đã trả lời",
        "kiến nghị",
        content_area="5",
    ),
    Indicator(
        "public_consultations",
        "Số lần lấy ý kiến Nhân dân về quy hoạch, kế hoạch, chính sách",
        "lần",
        content_area="5",
    ),
)

BY_CODE: dict[str, Indicator] = {indicator.code: indicator for indicator in CATALOGUE}

# (part, whole): the part can never exceed the whole it is counted from.
NOT_MORE_THAN: tuple[tuple[str, str], ...] = (
    ("complaints_resolved", "complaints_received"),
    ("denunciations_resolved", "denunciations_received"),
    ("petitions_resolved", "petitions_received"),
    ("front_recommendations_answered", "front_recommendations_received"),
)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


def validate_indicators(values: dict[str, Any]) -> list[FieldError]:
    """Every problem with a report's indicator values, each naming its field."""
    errors: list[FieldError] = []
    for code, value in values.items():
        where = f"indicators.{code}"
        if code not in BY_CODE:
            errors.append(FieldError(where, f"unknown indicator {code!r}"))
        elif isinstance(value, bool) or not isinstance(value, int):
            errors.append(FieldError(where, "must be a whole number"))
        elif value < 0:
            errors.append(FieldError(where, "must not be negative"))
    for part, whole in NOT_MORE_THAN:
        got_part, got_whole = values.get(part), values.get(whole)
        if isinstance(got_part, int) and isinstance(got_whole, int) and got_part > got_whole:
            errors.append(
                FieldError(
                    f"indicators.{part}",
                    f"{BY_CODE[part].label} ({got_part}) exceeds "
                    f"{BY_CODE[whole].label.lower()} ({got_whole})",
                )
            )
    return errors
