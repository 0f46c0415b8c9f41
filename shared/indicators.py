"""The indicator catalogue of a grassroots-democracy report, and the rules between indicators.

Each indicator has a code, a Vietnamese label, a unit of measure, a kind (what its values
are), an upper bound, and how it aggregates across units. Rules give field-level errors.

The catalogue is part of the public contract (a report request names indicators by code, a
``ReportSubmitted`` carries values by code), so it lives here, once: the plans service
checks the codes a request asks for, the reports service the values a report gives.

A rule between two indicators ("resolved ≤ received") holds when one side is missing too:
a missing value is *not reported*, never 0. A part may be reported only with its whole
(resolved without received is refused, naming the received field as required); a whole
without its part is fine (nothing is claimed about the part). So every report keeps the
rule, and so does every total of reports (a sum of parts never exceeds the sum of wholes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Aggregation(StrEnum):
    SUM = "sum"
    """Totals add up across units (people, sessions, cases)."""


class IndicatorKind(StrEnum):
    COUNT = "count"
    """A whole number from 0 up to the indicator's bound."""


COUNT_OF_EVENTS = 1_000_000
"""Bound of counts of sessions, conferences, classes, inspections, boards in one report:
far above what a province holds in a year, far below what a typing slip produces."""
COUNT_OF_CASES = 10_000_000
"""Bound of counts of petitions, complaints, cases, recommendations."""
COUNT_OF_PEOPLE = 100_000_000
"""Bound of counts of people or person-visits (Vietnam has about 100 million people)."""


@dataclass(frozen=True)
class Indicator:
    code: str
    label: str
    unit: str
    aggregation: Aggregation = Aggregation.SUM
    content_area: str = ""
    kind: IndicatorKind = IndicatorKind.COUNT
    maximum: int = COUNT_OF_EVENTS
    """The largest value one report may give (inclusive)."""


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
        maximum=COUNT_OF_PEOPLE,
    ),
    Indicator("reception_sessions", "Số buổi tiếp công dân", "buổi", content_area="3"),
    Indicator(
        "citizens_received",
        "Số lượt công dân được tiếp",
        "lượt người",
        content_area="3",
        maximum=COUNT_OF_PEOPLE,
    ),
    Indicator(
        "complaints_received",
        "Số đơn khiếu nại đã tiếp nhận",
        "đơn",
        content_area="3",
        maximum=COUNT_OF_CASES,
    ),
    Indicator(
        "complaints_resolved",
        "Số đơn khiếu nại đã giải quyết",
        "đơn",
        content_area="3",
        maximum=COUNT_OF_CASES,
    ),
    Indicator(
        "denunciations_received",
        "Số đơn tố cáo đã tiếp nhận",
        "đơn",
        content_area="3",
        maximum=COUNT_OF_CASES,
    ),
    Indicator(
        "denunciations_resolved",
        "Số đơn tố cáo đã giải quyết",
        "đơn",
        content_area="3",
        maximum=COUNT_OF_CASES,
    ),
    Indicator(
        "petitions_received",
        "Số đơn kiến nghị, phản ánh đã tiếp nhận",
        "đơn",
        content_area="3",
        maximum=COUNT_OF_CASES,
    ),
    Indicator(
        "petitions_resolved",
        "Số đơn kiến nghị, phản ánh đã giải quyết",
        "đơn",
        content_area="3",
        maximum=COUNT_OF_CASES,
    ),
    Indicator(
        "inspections_conducted",
        "Số cuộc thanh tra, kiểm tra việc thực hiện dân chủ ở cơ sở",
        "cuộc",
        content_area="6",
    ),
    Indicator(
        "violations_handled",
        "Số vụ việc vi phạm đã xử lý",
        "vụ việc",
        content_area="6",
        maximum=COUNT_OF_CASES,
    ),
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
        maximum=COUNT_OF_CASES,
    ),
    Indicator(
        "front_recommendations_answered",
        "Số kiến nghị của Mặt trận Tổ quốc và các tổ chức chính trị - xã hội đã trả lời",
        "kiến nghị",
        content_area="5",
        maximum=COUNT_OF_CASES,
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
    errors = [e for code, value in values.items() if (e := _value_error(code, value))]
    for part, whole in NOT_MORE_THAN:
        got_part, got_whole = values.get(part), values.get(whole)
        if not _is_count(got_part):
            continue  # not reported (or already refused): the rule claims nothing
        if got_whole is None:
            errors.append(
                FieldError(
                    f"indicators.{whole}",
                    f"required when {part} is reported: {BY_CODE[part].label.lower()} is "
                    f"counted from {BY_CODE[whole].label.lower()}",
                )
            )
        elif _is_count(got_whole) and got_part > got_whole:
            errors.append(
                FieldError(
                    f"indicators.{part}",
                    f"{BY_CODE[part].label} ({got_part}) exceeds "
                    f"{BY_CODE[whole].label.lower()} ({got_whole})",
                )
            )
    return errors


def _value_error(code: str, value: Any) -> FieldError | None:
    where = f"indicators.{code}"
    indicator = BY_CODE.get(code)
    if indicator is None:
        return FieldError(where, f"unknown indicator {code!r}")
    if isinstance(value, bool) or not isinstance(value, int):
        return FieldError(where, "must be a whole number")
    if value < 0:
        return FieldError(where, "must not be negative")
    if value > indicator.maximum:
        return FieldError(where, f"must be at most {indicator.maximum:,}".replace(",", "."))
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def unknown_codes(codes: Iterable[str]) -> list[str]:
    """The codes the catalogue does not have, in the order given."""
    return [code for code in codes if code not in BY_CODE]
