"""The plans service's request and document schemas, shared by the HTTP API and the CLI
(a plan YAML file is a PlanIn). Commands refuse unknown fields."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from services.plans.domain.plans import (
    DEFAULT_CONFERENCE_KINDS,
    Plan,
    StaffConferenceRequirement,
)
from services.plans.domain.units import Unit
from shared.events import Contacts, ContentArea, ReportKind
from shared.limits import Identifier
from shared.mapping import shown, taken
from shared.units import NfcName, NfcText, UnitCode

UnitReference = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^((kind|tag):[a-z_]{1,32}|[A-Za-z0-9_-]{1,32})$",
        description="A unit code, or kind:<kind> / tag:<tag> resolved within the province.",
    ),
]
ShortText = Annotated[NfcName, Field(max_length=1000)]
DocNumber = Annotated[NfcName, Field(min_length=1, max_length=64)]
"""A document's number and symbol, e.g. 2398/QĐ-UBND: printed on documents and in e-mail
subjects, so one line of NFC text like a name."""
AreaCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,16}$")]
IndicatorCode = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]
Day = date  # the legal document's field is called date


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# No spaces nor control characters anywhere: addresses end up in mail headers and URLs.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"
URL_PATTERN = r"^https?://[^\s\x00-\x1f\x7f]+$"


class ContactsIn(Strict):
    focal_email: str | None = Field(None, max_length=256, pattern=EMAIL_PATTERN)
    head_email: str | None = Field(None, max_length=256, pattern=EMAIL_PATTERN)
    webhook_url: str | None = Field(None, max_length=2048, pattern=URL_PATTERN)


Tag = Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]


class UnitIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "X30337",
                    "name": "Ủy ban nhân dân xã Mỹ Hòa Hưng",
                    "kind": "commune",
                    "parent_code": "T89",
                    "reports_to_code": "SNV",
                    "contacts": {"focal_email": "vanphong@myhoahung.demo.gov.vn"},
                    "tags": ["bien_gioi"],
                    "established_on": "2025-07-01",
                }
            ]
        },
    )

    code: UnitCode
    name: NfcName = Field(min_length=1, max_length=256)
    kind: str = Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")
    parent_code: UnitCode | None = None
    reports_to_code: UnitCode | None = None
    contacts: ContactsIn = Field(default_factory=ContactsIn)
    tags: list[Tag] = Field(default_factory=list, max_length=16)
    established_on: date | None = None


class UnitPatch(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Ủy ban nhân dân xã Mỹ Hòa Hưng",
                    "contacts": {
                        "focal_email": "vanphong@myhoahung.demo.gov.vn",
                        "head_email": "chutich@myhoahung.demo.gov.vn",
                    },
                }
            ]
        },
    )

    name: NfcName | None = Field(None, min_length=1, max_length=256)
    reports_to_code: UnitCode | None = None
    contacts: ContactsIn | None = None
    tags: list[Tag] | None = Field(None, max_length=16)


class DissolveIn(Strict):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"on": "2025-06-30"}]}
    )

    on: date


class UnitOut(BaseModel):
    code: str
    name: str
    kind: str
    path: list[str]
    parent_code: str | None
    reports_to_code: str | None
    contacts: Contacts
    tags: list[str]
    active: bool
    established_on: date | None
    dissolved_on: date | None

    @classmethod
    def of(cls, unit: Unit, *, with_contacts: bool = True) -> UnitOut:
        """``with_contacts=False``: the e-mail addresses (personal data) left out, for a
        caller outside the unit's subtree; a webhook is a system's, and stays."""
        contacts = (
            unit.contacts if with_contacts else Contacts(webhook_url=unit.contacts.webhook_url)
        )
        return shown(cls, unit, contacts=contacts)


class LegalDocumentIn(Strict):
    number: DocNumber
    date: Day | None = None
    issuer: ShortText = ""
    title: ShortText = ""


class SignerIn(Strict):
    name: NfcName = Field("", max_length=128)
    position: NfcName = Field("", max_length=128)


class ContentAreaIn(Strict):
    code: AreaCode
    title: ShortText = Field(min_length=1)
    description: NfcText = Field("", max_length=5000)


class AssigneesIn(Strict):
    kinds: list[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]] = Field(default_factory=list)
    kinds_via_parent: list[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]] = Field(
        default_factory=list
    )
    subtrees: list[UnitReference] = Field(default_factory=list)
    units: list[UnitReference] = Field(default_factory=list)


class ScheduleEntryIn(Strict):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")
    kind: ReportKind
    title: ShortText = ""
    period_start: date
    period_end: date
    due_before: date = Field(description="The plan's 'before <date>': due by the day before.")
    receiving_unit: UnitReference


class SubPlanIn(Strict):
    required: bool = True
    due_before: date | None = None


class StaffConferenceIn(Strict):
    """The annual conference of officials, civil servants and employees (seed part II.4)."""

    required: bool = True
    due_before: date | None = Field(
        None,
        description="The plan's 'before <date>' for holding it; default: before 1 April of "
        "the plan year (within the first quarter, a project default).",
    )
    unit_kinds: list[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]] = Field(
        default_factory=lambda: list(DEFAULT_CONFERENCE_KINDS),
        min_length=1,
        description="Kinds of the assignees that hold one (default: department, "
        "public_service_unit).",
    )

    @classmethod
    def of(cls, requirement: StaffConferenceRequirement) -> StaffConferenceIn:
        return cls(
            required=requirement.required,
            due_before=requirement.due_before,
            unit_kinds=list(requirement.unit_kinds),
        )


PLAN_EXAMPLE: dict[str, JsonValue] = {
    "doc_number": "123/KH-UBND",
    "title": "Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2026",
    "issuing_unit": "T89",
    "issued_on": "2026-02-15",
    "year": 2026,
    "place": "An Bình",
    "signer": {"name": "Lê Văn Nam", "position": "Phó Chủ tịch"},
    "legal_basis": [
        {
            "number": "10/2022/QH15",
            "date": "2022-11-10",
            "issuer": "Quốc hội",
            "title": "Luật Thực hiện dân chủ ở cơ sở",
        }
    ],
    "content_areas": [
        {"code": "1", "title": "Công tác lãnh đạo, chỉ đạo của cấp ủy Đảng, chính quyền"},
        {"code": "6", "title": "Kiểm tra, đánh giá và chế độ báo cáo"},
    ],
    "assignees": {"kinds": ["department", "commune"]},
    "schedule": [
        {
            "key": "six_month",
            "kind": "six_month",
            "title": "Báo cáo 6 tháng",
            "period_start": "2025-12-15",
            "period_end": "2026-06-14",
            "due_before": "2026-06-20",
            "receiving_unit": "SNV",
        }
    ],
    "distribution": ["Bộ Nội vụ", "Thường trực Tỉnh ủy", "Lưu: VT, NC"],
}
"""A province's yearly plan, as the API and the CLI's YAML take it (the OpenAPI example)."""


class PlanIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [PLAN_EXAMPLE]})

    doc_number: DocNumber
    title: ShortText = Field(min_length=1)
    issuing_unit: UnitReference
    issued_on: date
    year: int = Field(ge=2000, le=2100)
    place: NfcName = Field("", max_length=128)
    signer: SignerIn = Field(default_factory=SignerIn)
    legal_basis: list[LegalDocumentIn] = Field(default_factory=list, max_length=100)
    content_areas: list[ContentAreaIn] = Field(default_factory=list, max_length=50)
    assignees: AssigneesIn
    schedule: list[ScheduleEntryIn] = Field(default_factory=list, max_length=50)
    on_request: list[ReportKind] = Field(default_factory=list)
    sub_plan: SubPlanIn = Field(default_factory=lambda: SubPlanIn(required=False))
    staff_conference: StaffConferenceIn = Field(
        default_factory=lambda: StaffConferenceIn(required=False)
    )
    distribution: list[ShortText] = Field(default_factory=list, max_length=100)
    parent_plan_id: Identifier | None = None
    difficulties_to: UnitReference | None = Field(
        None,
        description="Who answers difficulties raised against the plan (default: Home Affairs).",
    )
    province: UnitCode | None = Field(
        None, description="Where kind:/tag: references are resolved (default: the issuer's root)."
    )

    def to_plan(self) -> Plan:
        # The document's "assignees" is the rule; the plan's are the units it expands to
        # once issued (none yet).
        return taken(Plan, self, id="", assignee_rule=self.assignees.model_dump(), assignees=[])


class PlanOut(BaseModel):
    id: str
    doc_number: str
    title: str
    issuing_unit: str
    issued_on: date
    year: int
    status: str
    parent_plan_id: str | None
    amendments: int
    assignees: list[str]
    content_areas: list[ContentArea]
    schedule: list[ScheduleEntryIn]
    sub_plan: SubPlanIn
    staff_conference: StaffConferenceIn | None = None
    legal_basis: list[LegalDocumentIn]
    distribution: list[str]
    difficulties_to: str | None = None

    @classmethod
    def of(cls, plan: Plan) -> PlanOut:
        return shown(cls, plan, staff_conference=StaffConferenceIn.of(plan.staff_conference))


class AmendmentIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reason": "Điều chỉnh thời hạn báo cáo 6 tháng theo Công văn số 45/UBND-NC",
                    "deadlines": {"six_month": "2026-06-20"},
                    "add_units": ["X30337"],
                }
            ]
        },
    )

    reason: NfcText = Field(min_length=1, max_length=5000)
    deadlines: dict[Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,64}$")], date] = Field(
        default_factory=dict, description="New 'before' date per schedule key."
    )
    add_units: list[UnitCode] = Field(default_factory=list)
    remove_units: list[UnitCode] = Field(default_factory=list)


class CloseIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "Đã hoàn thành kế hoạch năm 2026"}]},
    )

    reason: NfcText = Field("", max_length=5000)


class RollOverIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"year": 2027}]})

    year: int = Field(ge=2000, le=2100)


class SubPlanRegistrationIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "unit_code": "H886",
                    "doc_number": "57/KH-UBND",
                    "issued_on": "2026-03-02",
                    "title": "Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2026",
                }
            ]
        },
    )

    unit_code: UnitCode
    doc_number: DocNumber
    issued_on: date
    title: ShortText = ""


class ReportRequestIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "requesting_unit": "SNV",
                    "kind": "thematic",
                    "topic": "Báo cáo chuyên đề về tổ chức hội nghị nhân dân ở thôn, tổ dân phố",
                    "units": ["X30337", "STP"],
                    "content_areas": ["1"],
                    "indicators": ["conferences_held"],
                    "period_start": "2026-01-01",
                    "period_end": "2026-03-31",
                    "due_before": "2026-04-15",
                }
            ]
        },
    )

    requesting_unit: UnitCode
    kind: ReportKind
    topic: ShortText = Field(min_length=1)
    units: list[UnitCode] = Field(min_length=1, max_length=5000)
    content_areas: list[AreaCode] = Field(default_factory=list, max_length=50)
    indicators: list[IndicatorCode] = Field(default_factory=list, max_length=100)
    period_start: date
    period_end: date
    due_before: date
    plan_id: Identifier | None = None


class DifficultyIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "plan_id": "pl-4f6c2a",
                    "unit_code": "X30337",
                    "content_area": "1",
                    "description": "Thiếu kinh phí tổ chức hội nghị nhân dân ở các thôn vùng sâu",
                }
            ]
        },
    )

    plan_id: Identifier
    unit_code: UnitCode
    content_area: AreaCode | None = None
    description: NfcText = Field(min_length=1, max_length=10000)


class AnswerIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "answered_by": "SNV",
                    "answer": "Đề nghị xã sử dụng kinh phí chi thường xuyên năm 2026",
                }
            ]
        },
    )

    answered_by: UnitCode = Field(description="The answering unit: the one it was raised to.")
    answer: NfcText = Field(min_length=1, max_length=10000)
