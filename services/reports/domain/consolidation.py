"""Consolidation (tổng hợp): what a receiving unit got for one entry of a plan's schedule.
Pure: plain data in (obligations, every submitted version, the unit read model), a
JSON-able :class:`Consolidation` out. No I/O, no clock (the caller passes ``as_of``).

Definitions (one obligation = one unit expected to report to the receiving unit):

- **expected**: obligations to the receiving unit for this plan and schedule key, except
  waived ones (a unit removed by an amendment or dissolved owes nothing);
- **received**: at least one version submitted; **on time** / **late**: by the *first*
  submission's ``on_time`` (a revision after a return does not make a late unit timely, nor
  an on-time unit late); **missing**: nothing submitted. So expected = received + missing
  and received = on time + late;
- **returned**: the latest version was returned for revision and nothing replaced it yet.
  Such a unit still counts as received (it did send something) and is listed apart;
- **completeness** = received ÷ expected, **timeliness** = on time ÷ expected, as fractions
  (4 decimals) and as percentages rounded half-up to one decimal; both 0 when nothing is
  expected;
- **indicator totals**: the sum over the *latest version* of each expected unit's report,
  unless that version was returned (its figures were sent back as wrong). Every indicator
  of the catalogue aggregates by sum today (:class:`Aggregation`);
- **breakdowns**: the same totals per unit kind, and per district: a unit's district is the
  nearest unit on its path (itself included, so a district's own report falls in its own
  group) whose kind is ``group_kind`` (``district`` by default; kinds are data). A unit with
  no such ancestor, such as a department, or any unit of a two-level province (no districts
  since 1 July 2025), falls in one group "Không thuộc cấp huyện". Grouping those by their
  receiving unit instead would add nothing: they all report to the unit consolidating;
- **narratives**: per content area code, each counted report's text with the unit's name.

Roll-up across levels: a district running its own instance (``scope`` = the district)
takes its communes' reports (receiving unit: the district) and consolidates them like any
receiving unit. It also takes the district's own report to Home Affairs; the province's
instance (with the district ``delegated``) mirrors that report from the bus, so the
province's consolidation counts the district as one unit among the departments and other
districts, with the indicator values its report carries. Those values are normally its
communes' totals: :attr:`Consolidation.prefill` gives them in the shape of a report
submission (``indicators``, ``narrative``), so the district submits its consolidation upward
instead of retyping it (and may correct it first). Communes are never counted twice: the
province's consolidation holds only the obligations addressed to Home Affairs, and the
communes' go to their district.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from services.reports.domain.conference_counts import ConferenceSummary
from services.reports.domain.indicators import CATALOGUE
from services.reports.domain.inspection_counts import InspectionSummary, summarise_inspections
from services.reports.domain.inspections import Inspection
from services.reports.domain.model import Obligation, ObligationStatus
from services.reports.domain.recommendation_counts import RecommendationSummary, summarise
from services.reports.domain.recommendations import Recommendation

DEFAULT_GROUP_KIND = "district"
NO_GROUP_LABEL = "Không thuộc cấp huyện"
_CODES = dict.fromkeys(i.code for i in CATALOGUE)
"""Catalogue codes, in catalogue order (a dict: ordered, and quick to look up)."""

# Short plural labels for tables; a kind not listed here shows its code (kinds are data, and
# a new kind must never break a consolidation).
DEFAULT_KIND_LABELS: Mapping[str, str] = {
    "province": "Cấp tỉnh",
    "department": "Sở, ban, ngành",
    "public_service_unit": "Đơn vị sự nghiệp công lập",
    "district": "Cấp huyện",
    "commune": "Cấp xã",
}

PEOPLES_COMMITTEE = "Ủy ban nhân dân"
_ADMINISTRATIVE_WORD = re.compile(
    r"^(tỉnh|thành phố|huyện|quận|thị xã|xã|phường|thị trấn|đặc khu)\s+", re.IGNORECASE
)

ReportState = Literal["on_time", "late", "missing"]
REPORT_RETURNED = "returned"
"""A report version's status once its receiving unit sent it back for revision."""


# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitFacts:
    """A unit of the read model, as far as a consolidation needs it."""

    code: str
    name: str
    kind: str
    path: tuple[str, ...]
    parent_code: str | None = None
    reports_to_code: str | None = None


@dataclass(frozen=True)
class SubmissionFacts:
    """One submitted version of a report; ``status`` is submitted, accepted or returned."""

    obligation_id: str
    report_id: str
    version: int
    receipt_number: str
    submitted_at: datetime
    on_time: bool
    status: str = "submitted"
    narrative: Mapping[str, str] = field(default_factory=dict)
    indicators: Mapping[str, Any] = field(default_factory=dict)


# --- output ---------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class UnitRef(_Out):
    code: str
    name: str
    kind: str


class UnitStatus(UnitRef):
    """One expected unit: where it stands, for the status table."""

    district_code: str | None
    district_name: str
    state: ReportState
    on_time: bool | None
    submitted_at: AwareDatetime | None
    """Time of the first submission: it decides on time or late."""
    receipt_number: str | None
    """Receipt of the first submission."""
    latest_version: int
    review: str
    """Status of the latest version (submitted, accepted, returned); empty when missing."""
    returned: bool
    counted: bool
    """Its latest version is in the indicator totals."""


class Counts(_Out):
    expected: int
    received: int
    on_time: int
    late: int
    missing: int
    returned: int


class Rates(_Out):
    completeness: float
    completeness_percent: float
    timeliness: float
    timeliness_percent: float


class UnitLists(_Out):
    expected: list[UnitRef]
    received: list[UnitRef]
    on_time: list[UnitRef]
    late: list[UnitRef]
    missing: list[UnitRef]
    returned: list[UnitRef]


class IndicatorTotal(_Out):
    code: str
    label: str
    unit: str
    aggregation: str
    content_area: str
    total: int | float
    reported_by: int
    """How many counted reports gave a value for it."""


class GroupTotals(_Out):
    key: str
    """Unit kind, or district code ("" for units outside any district)."""
    label: str
    expected: int
    reports: int
    """Reports counted in the totals."""
    totals: dict[str, int | float]


class NarrativeEntry(_Out):
    unit_code: str
    unit_name: str
    text: str


class NarrativeArea(_Out):
    code: str
    title: str
    """The plan's title for the area; empty when this service does not know it."""
    entries: list[NarrativeEntry]


class Heading(_Out):
    plan_id: str
    plan_doc_number: str
    plan_title: str
    schedule_key: str
    report_kind: str
    period_start: date
    period_end: date
    due_at: AwareDatetime


class ReceivingUnit(_Out):
    code: str
    name: str
    kind: str
    path: list[str]
    governing_body: str
    """Name of the authority directly above it ("cơ quan, tổ chức chủ quản", Decree
    30/2020/NĐ-CP), written above its own name in a document heading: a department's
    "Ủy ban nhân dân tỉnh An Bình", even when the province is registered as "Tỉnh An
    Bình". Empty for a People's Committee, which has none above it in its own name."""
    reports_to: str
    """Name of the authority it reports to (first line of the distribution list)."""
    locality: str
    """Place name for "<place>, ngày …": its nearest People's Committee's locality."""


class Prefill(_Out):
    """Fields of a report submission (POST /reports) filled from this consolidation."""

    indicators: dict[str, int | float]
    narrative: dict[str, str]


class Consolidation(_Out):
    heading: Heading
    receiving_unit: ReceivingUnit
    as_of: AwareDatetime
    counts: Counts
    rates: Rates
    units: UnitLists
    status: list[UnitStatus]
    indicators: list[IndicatorTotal]
    group_kind: str
    by_kind: list[GroupTotals]
    by_district: list[GroupTotals]
    narratives: list[NarrativeArea]
    reports_counted: int
    prefill: Prefill
    recommendations: RecommendationSummary = RecommendationSummary()
    """Recommendations after supervision addressed to the expected units within the period
    (empty in versions published before they were counted)."""
    inspections: InspectionSummary = InspectionSummary()
    """Inspections and surveys of the expected units planned to start within the period,
    and the follow-up of the actions their findings require (empty in versions published
    before they were counted)."""
    conferences: ConferenceSummary = ConferenceSummary()
    """Staff conferences of the plan followed up by the receiving unit (empty when the plan
    asks for none, and in versions published before they were counted)."""

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --- rates ----------------------------------------------------------------------------------


def fraction(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def percent(part: int, whole: int) -> float:
    """part ÷ whole in per cent, rounded half-up to one decimal with integers only (binary
    floats would round 0.125 % down)."""
    if not whole:
        return 0.0
    tenths = (2 * 1000 * part + whole) // (2 * whole)
    return tenths / 10


def rates(counts: Counts) -> Rates:
    return Rates(
        completeness=fraction(counts.received, counts.expected),
        completeness_percent=percent(counts.received, counts.expected),
        timeliness=fraction(counts.on_time, counts.expected),
        timeliness_percent=percent(counts.on_time, counts.expected),
    )


# --- names ----------------------------------------------------------------------------------


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def authority_name(name: str) -> str:
    """The issuing authority a unit's name stands for, as a document names it: a unit
    registered by its locality ("Tỉnh An Bình", "Thành phố An Bình", "Xã Hòa Bắc": the unit
    kinds of provinces, districts and communes) is that locality's People's Committee
    ("Ủy ban nhân dân tỉnh An Bình"); any other name is the body itself."""
    text = _nfc(name).strip()
    if _ADMINISTRATIVE_WORD.match(text):
        return f"{PEOPLES_COMMITTEE} {text[:1].lower()}{text[1:]}"
    return text


def is_peoples_committee(name: str) -> bool:
    return authority_name(name).casefold().startswith(PEOPLES_COMMITTEE.casefold())


def committee_locality(name: str) -> str:
    """'Ủy ban nhân dân tỉnh An Bình' or 'Tỉnh An Bình' → 'tỉnh An Bình'; '' when the name
    is not a committee's."""
    if not is_peoples_committee(name):
        return ""
    return authority_name(name)[len(PEOPLES_COMMITTEE) :].strip()


def locality_of(name: str) -> str:
    """'Ủy ban nhân dân tỉnh An Bình' (or 'Tỉnh An Bình') → 'An Bình'; '' when the name is
    not a committee's."""
    return _ADMINISTRATIVE_WORD.sub("", committee_locality(name), count=1)


def _unit_or_stub(code: str, units: Mapping[str, UnitFacts], path: Sequence[str]) -> UnitFacts:
    """The read model's unit, or a stand-in named by its code (an event not yet received
    must not make a consolidation fail)."""
    return units.get(code) or UnitFacts(code=code, name=code, kind="", path=tuple(path))


def receiving_unit_of(code: str, units: Mapping[str, UnitFacts]) -> ReceivingUnit:
    unit = _unit_or_stub(code, units, (code,))
    parent = units.get(unit.parent_code or "")
    reports_to = units.get(unit.reports_to_code or "")
    locality = ""
    for ancestor in reversed(unit.path):
        found = units.get(ancestor)
        if found is not None and (locality := locality_of(found.name)):
            break
    return ReceivingUnit(
        code=unit.code,
        name=unit.name,
        kind=unit.kind,
        path=list(unit.path),
        governing_body=""
        if is_peoples_committee(unit.name) or parent is None
        else authority_name(parent.name),
        reports_to=authority_name(reports_to.name) if reports_to else "",
        locality=locality,
    )


def district_of(
    path: Sequence[str], units: Mapping[str, UnitFacts], group_kind: str
) -> UnitFacts | None:
    """The nearest unit on ``path`` (the unit itself included) whose kind is ``group_kind``."""
    for code in reversed(path):
        found = units.get(code)
        if found is not None and found.kind == group_kind:
            return found
    return None


# --- status per unit ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """An expected unit with its submissions, oldest first."""

    obligation: Obligation
    unit: UnitFacts
    versions: tuple[SubmissionFacts, ...]

    @property
    def latest(self) -> SubmissionFacts | None:
        return self.versions[-1] if self.versions else None

    @cached_property
    def returned(self) -> bool:
        # The review writes both the version's and the obligation's status; either is enough.
        latest = self.latest
        return latest is not None and (
            latest.status == REPORT_RETURNED or self.obligation.status is ObligationStatus.RETURNED
        )

    @cached_property
    def counted(self) -> SubmissionFacts | None:
        return None if self.returned else self.latest

    @cached_property
    def figures(self) -> dict[str, int | float]:
        """What its counted version adds to the totals (each row is in three sums)."""
        return figures(self.counted) if self.counted else {}


def _rows(
    obligations: Iterable[Obligation],
    submissions: Iterable[SubmissionFacts],
    units: Mapping[str, UnitFacts],
) -> list[_Row]:
    by_obligation: dict[str, list[SubmissionFacts]] = {}
    for submission in submissions:
        by_obligation.setdefault(submission.obligation_id, []).append(submission)
    rows = [
        _Row(
            obligation=o,
            unit=_unit_or_stub(o.unit_code, units, o.unit_path),
            versions=tuple(sorted(by_obligation.get(o.id, []), key=lambda s: s.version)),
        )
        for o in obligations
        if o.status is not ObligationStatus.WAIVED
    ]
    return sorted(rows, key=lambda r: (tuple(r.unit.path or r.obligation.unit_path), r.unit.code))


def _status(row: _Row, units: Mapping[str, UnitFacts], group_kind: str) -> UnitStatus:
    first, latest = (row.versions[0], row.latest) if row.versions else (None, None)
    district = district_of(row.unit.path or row.obligation.unit_path, units, group_kind)
    state: ReportState = "missing" if first is None else "on_time" if first.on_time else "late"
    return UnitStatus(
        code=row.unit.code,
        name=row.unit.name,
        kind=row.unit.kind,
        district_code=district.code if district else None,
        district_name=district.name if district else NO_GROUP_LABEL,
        state=state,
        on_time=first.on_time if first else None,
        submitted_at=first.submitted_at if first else None,
        receipt_number=first.receipt_number if first else None,
        latest_version=latest.version if latest else 0,
        review=latest.status if latest else "",
        returned=row.returned,
        counted=row.counted is not None,
    )


def _ref(status: UnitStatus) -> UnitRef:
    return UnitRef(code=status.code, name=status.name, kind=status.kind)


def _unit_lists(statuses: Sequence[UnitStatus]) -> UnitLists:
    # One reference per unit, shared by the lists it is in (they are frozen).
    refs = [(s, _ref(s)) for s in statuses]
    return UnitLists(
        expected=[r for _, r in refs],
        received=[r for s, r in refs if s.state != "missing"],
        on_time=[r for s, r in refs if s.state == "on_time"],
        late=[r for s, r in refs if s.state == "late"],
        missing=[r for s, r in refs if s.state == "missing"],
        returned=[r for s, r in refs if s.returned],
    )


def _counts(lists: UnitLists) -> Counts:
    return Counts(
        expected=len(lists.expected),
        received=len(lists.received),
        on_time=len(lists.on_time),
        late=len(lists.late),
        missing=len(lists.missing),
        returned=len(lists.returned),
    )


# --- indicators -----------------------------------------------------------------------------


def _number(value: Any) -> int | float | None:
    """A summable value; anything else (a bool, a text) is left out rather than guessed at."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def figures(report: SubmissionFacts) -> dict[str, int | float]:
    """The report's summable values of catalogue indicators."""
    found: dict[str, int | float] = {}
    for code, raw in report.indicators.items():
        value = _number(raw)
        if code in _CODES and value is not None:
            found[code] = value
    return found


def sum_indicators(
    reports: Iterable[Mapping[str, int | float]],
) -> tuple[dict[str, int | float], dict[str, int]]:
    """Totals per catalogue indicator of reports' :func:`figures` (0 when nobody reported
    it), and how many reports gave each a value."""
    totals: dict[str, int | float] = dict.fromkeys(_CODES, 0)
    reported_by: dict[str, int] = dict.fromkeys(_CODES, 0)
    for values in reports:
        for code, value in values.items():
            totals[code] += value
            reported_by[code] += 1
    return totals, reported_by


def _indicator_totals(rows: Sequence[_Row]) -> list[IndicatorTotal]:
    totals, reported_by = sum_indicators(r.figures for r in rows if r.counted)
    return [
        IndicatorTotal(
            code=i.code,
            label=i.label,
            unit=i.unit,
            aggregation=i.aggregation.value,
            content_area=i.content_area,
            total=totals[i.code],
            reported_by=reported_by[i.code],
        )
        for i in CATALOGUE
    ]


def _groups(
    rows: Sequence[_Row], keys: Sequence[tuple[str, str]], last_key: str | None = None
) -> list[GroupTotals]:
    """Totals per group; ``keys[i]`` is (key, label) of ``rows[i]``. Groups keep the order
    in which they first appear (rows are in tree order); ``last_key`` goes last."""
    members: dict[str, list[_Row]] = {}
    labels: dict[str, str] = {}
    for row, (key, label) in zip(rows, keys, strict=True):
        members.setdefault(key, []).append(row)
        labels[key] = label
    order = [k for k in members if k != last_key] + [k for k in members if k == last_key]
    result = []
    for key in order:
        counted = [r.figures for r in members[key] if r.counted]
        totals, _ = sum_indicators(counted)
        result.append(
            GroupTotals(
                key=key,
                label=labels[key],
                expected=len(members[key]),
                reports=len(counted),
                totals=totals,
            )
        )
    return result


def _by_kind(rows: Sequence[_Row], kind_labels: Mapping[str, str]) -> list[GroupTotals]:
    keys = [(r.unit.kind, kind_labels.get(r.unit.kind) or r.unit.kind or "—") for r in rows]
    return _groups(rows, keys)


def _by_district(rows: Sequence[_Row], statuses: Sequence[UnitStatus]) -> list[GroupTotals]:
    keys = [(s.district_code or "", s.district_name) for s in statuses]
    return _groups(rows, keys, last_key="")


# --- narratives -----------------------------------------------------------------------------


def _area_order(code: str) -> tuple[int, ...] | tuple[int, str]:
    """'2' before '10'; codes that are not dotted numbers after those that are."""
    parts = code.split(".")
    if all(p.isdigit() for p in parts):
        return tuple(int(p) for p in parts)
    return (1 << 30, code)


def _narratives(rows: Sequence[_Row], titles: Mapping[str, str]) -> list[NarrativeArea]:
    entries: dict[str, list[NarrativeEntry]] = {}
    for row in rows:
        if row.counted is None:
            continue
        for code, text in row.counted.narrative.items():
            if text.strip():
                entry = NarrativeEntry(unit_code=row.unit.code, unit_name=row.unit.name, text=text)
                entries.setdefault(code, []).append(entry)
    return [
        NarrativeArea(code=code, title=titles.get(code, ""), entries=entries[code])
        for code in sorted(entries, key=_area_order)
    ]


def _prefill(indicators: Sequence[IndicatorTotal], areas: Sequence[NarrativeArea]) -> Prefill:
    """Only indicators someone reported: a district must not claim a zero nobody gave."""
    return Prefill(
        indicators={i.code: i.total for i in indicators if i.reported_by},
        narrative={
            area.code: "\n".join(f"- {e.unit_name}: {e.text.strip()}" for e in area.entries)
            for area in areas
        },
    )


# --- the consolidation ----------------------------------------------------------------------


def _heading(obligations: Sequence[Obligation], plan_id: str, schedule_key: str) -> Heading:
    """The plan entry as its obligations repeat it (they share plan, period and deadline;
    the latest deadline wins should an amendment be half applied)."""
    first = obligations[0]
    return Heading(
        plan_id=plan_id,
        plan_doc_number=first.plan_doc_number,
        plan_title=first.plan_title,
        schedule_key=schedule_key,
        report_kind=first.report_kind.value,
        period_start=min(o.period_start for o in obligations),
        period_end=max(o.period_end for o in obligations),
        due_at=max(o.due_at for o in obligations),
    )


def consolidate(
    *,
    receiving_unit: str,
    obligations: Sequence[Obligation],
    submissions: Iterable[SubmissionFacts],
    units: Mapping[str, UnitFacts],
    as_of: datetime,
    content_areas: Mapping[str, str] | None = None,
    kind_labels: Mapping[str, str] = DEFAULT_KIND_LABELS,
    group_kind: str = DEFAULT_GROUP_KIND,
    recommendations: Iterable[Recommendation] = (),
    inspections: Iterable[Inspection] = (),
    conferences: ConferenceSummary = ConferenceSummary(),
) -> Consolidation:
    """Consolidate the reports of ``obligations`` (one plan and schedule key) that go to
    ``receiving_unit``; obligations to other units are ignored. ``submissions`` holds every
    version of every report; ``content_areas`` maps area codes to the plan's titles."""
    mine = [o for o in obligations if o.receiving_unit == receiving_unit]
    if not mine:
        raise ValueError(f"no obligation goes to {receiving_unit}")
    rows = _rows(mine, submissions, units)
    statuses = [_status(row, units, group_kind) for row in rows]
    lists = _unit_lists(statuses)
    counts = _counts(lists)
    indicators = _indicator_totals(rows)
    narratives = _narratives(rows, content_areas or {})
    heading = _heading(mine, mine[0].plan_id, mine[0].schedule_key)
    expected = {s.code: s.name for s in statuses}
    return Consolidation(
        heading=heading,
        receiving_unit=receiving_unit_of(receiving_unit, units),
        as_of=as_of,
        counts=counts,
        rates=rates(counts),
        units=lists,
        status=statuses,
        indicators=indicators,
        group_kind=group_kind,
        by_kind=_by_kind(rows, kind_labels),
        by_district=_by_district(rows, statuses),
        narratives=narratives,
        reports_counted=sum(1 for r in rows if r.counted),
        prefill=_prefill(indicators, narratives),
        recommendations=summarise(
            recommendations, expected, heading.period_start, heading.period_end
        ),
        inspections=summarise_inspections(
            inspections, expected, heading.period_start, heading.period_end
        ),
        conferences=conferences,
    )


@dataclass(frozen=True)
class ConsolidationKey:
    """Which consolidation: a plan's report (schedule key) owed to one receiving unit."""

    plan_id: str
    schedule_key: str
    receiving_unit: str


@dataclass(frozen=True)
class PublishedConsolidation:
    """A consolidation as published: version 1, 2, … of its key, kept unchanged."""

    id: str
    key: ConsolidationKey
    version: int
    published_at: datetime
    published_by: str
    consolidation: Consolidation
    created: bool = True
    """False when publishing found the latest version already says the same."""
