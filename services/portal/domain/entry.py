"""The report entry form: the plan's content areas as narrative fields, the catalogue's
indicators with their rules in words, the form's text parsed into a submission, and the
reports service's refusals told in Vietnamese beside the field they concern. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class IndicatorField:
    code: str
    label: str
    unit: str
    content_area: str
    not_more_than: str = ""
    """Code of the indicator this one may not exceed."""
    not_more_than_label: str = ""

    @property
    def rule(self) -> str:
        text = f"Số nguyên, không âm ({self.unit})"
        if self.not_more_than:
            text += f"; không lớn hơn “{self.not_more_than_label}”"
        return text + "."


def indicator_fields(catalogue: Mapping[str, Any]) -> list[IndicatorField]:
    """From GET /indicators of the reports service."""
    labels = {i["code"]: i["label"] for i in catalogue.get("indicators", [])}
    wholes = {r["part"]: r["whole"] for r in catalogue.get("not_more_than", [])}
    return [
        IndicatorField(
            code=i["code"],
            label=i["label"],
            unit=i["unit"],
            content_area=i.get("content_area", ""),
            not_more_than=wholes.get(i["code"], ""),
            not_more_than_label=labels.get(wholes.get(i["code"], ""), ""),
        )
        for i in catalogue.get("indicators", [])
    ]


@dataclass
class Entry:
    """What the form holds, as typed: re-shown unchanged when something is refused."""

    narrative: dict[str, str] = field(default_factory=dict)
    indicators: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    """Field name (``narrative.<area>``, ``indicators.<code>``) → message."""
    message: str = ""


_INTEGER = re.compile(r"^\d{1,12}$")


def read_form(form: Mapping[str, str], areas: list[str], fields: list[IndicatorField]) -> Entry:
    entry = Entry()
    for area in areas:
        text = form.get(f"narrative.{area}", "").strip()
        if text:
            entry.narrative[area] = text
    for f in fields:
        raw = form.get(f"indicators.{f.code}", "").strip().replace(".", "").replace(" ", "")
        if raw:
            entry.indicators[f.code] = raw
    return entry


def values_or_errors(entry: Entry, fields: list[IndicatorField]) -> dict[str, int]:
    """The indicator values as numbers; what is not a whole number is an error here (the
    rules between values are the reports service's to judge)."""
    values: dict[str, int] = {}
    for f in fields:
        raw = entry.indicators.get(f.code)
        if raw is None:
            continue
        if raw.startswith("-") and _INTEGER.match(raw[1:]):
            entry.errors[f"indicators.{f.code}"] = "Không được là số âm."
        elif not _INTEGER.match(raw):
            entry.errors[f"indicators.{f.code}"] = "Phải là một số nguyên, ví dụ 12."
        else:
            values[f.code] = int(raw)
    return values


def explain_refusal(
    error: Mapping[str, Any], fields: list[IndicatorField], values: Mapping[str, int]
) -> dict[str, str]:
    """The service's field errors (422: ``{"message", "errors": [{field, message}]}``) in
    Vietnamese, by field. A message this does not know is shown as the service wrote it."""
    by_code = {f.code: f for f in fields}
    found: dict[str, str] = {}
    problems = list(error.get("errors") or [])
    if error.get("field") and not problems:
        problems = [{"field": error["field"], "message": error.get("message", "")}]
    for problem in problems:
        name = str(problem.get("field", ""))
        message = str(problem.get("message", ""))
        code = name.removeprefix("indicators.")
        indicator = by_code.get(code) if name.startswith("indicators.") else None
        found[name] = _in_vietnamese(message, indicator, by_code, values)
    return found


def _in_vietnamese(
    message: str,
    indicator: IndicatorField | None,
    by_code: Mapping[str, IndicatorField],
    values: Mapping[str, int],
) -> str:
    if indicator is None:
        return f"Không hợp lệ: {message}"
    if "exceeds" in message and indicator.not_more_than:
        whole = by_code.get(indicator.not_more_than)
        whole_label = whole.label if whole else indicator.not_more_than
        return (
            f"“{indicator.label}” ({values.get(indicator.code, '?')}) không được lớn hơn "
            f"“{whole_label}” ({values.get(indicator.not_more_than, '?')})."
        )
    if "negative" in message:
        return "Không được là số âm."
    if "whole number" in message:
        return "Phải là một số nguyên, ví dụ 12."
    if "unknown indicator" in message:
        return "Chỉ tiêu này không có trong danh mục."
    return f"Không hợp lệ: {message}"


def refusal_message(status: int, message: str) -> str:
    """A refusal that concerns no field, said in Vietnamese with the service's words after."""
    lead = {
        401: "Phiên làm việc không còn hiệu lực; vui lòng đăng nhập lại.",
        403: "Tài khoản của bạn không có quyền thực hiện việc này.",
        404: "Không tìm thấy nội dung được yêu cầu.",
        409: "Thao tác không thực hiện được vì dữ liệu đã thay đổi.",
        413: "Tệp hoặc nội dung gửi lên quá lớn.",
        422: "Báo cáo chưa hợp lệ; vui lòng sửa các ô được đánh dấu.",
    }.get(status, "Hệ thống chưa xử lý được yêu cầu; vui lòng thử lại sau.")
    return f"{lead} (Chi tiết: {message})" if message else lead
