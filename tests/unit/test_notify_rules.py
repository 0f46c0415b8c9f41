"""Who gets what: rules as configuration, subscriptions, the Vietnamese templates, and the
handlers on a SQLite database (deliveries, digests), without the bus."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.notify.adapters.db import messaging
from services.notify.adapters.deliveries import DeliveryFilter, DeliveryRepository
from services.notify.adapters.overdue import OverdueRepository
from services.notify.adapters.subscriptions import SubscriptionRepository
from services.notify.adapters.templates import Facts, Links, digest_context, event_context, render
from services.notify.bootstrap import SERVICE as NOTIFY
from services.notify.domain.model import (
    Contact,
    DeliveryStatus,
    SignatureScheme,
    Subscription,
    delivery_key,
    digest_event_id,
    host_allowed,
)
from services.notify.domain.rules import (
    SUBSCRIBABLE,
    SUBSCRIBABLE_AGGREGATES,
    SUBSCRIBER_TEMPLATES,
    Recipient,
    RuleError,
    event_type_of,
    resolve,
    role_codes,
    rulebook,
)
from services.notify.entrypoints.bus import CONSUMERS, load_rules
from services.notify.handlers import subscriptions
from services.notify.handlers.digest import assemble_digests, digest_day
from services.notify.handlers.events import ContactUnknown, NotifyConfig, on_event
from shared.auth import CONSOLE
from shared.bus.envelope import Envelope, decode, encode
from shared.clock import ManualClock
from shared.db import create_engine, migrate
from shared.errors import Refused
from shared.events import (
    Assignee,
    Channel,
    ConferenceRecorded,
    Contacts,
    DeadlineApproaching,
    DeadlineMissed,
    DifficultyRaised,
    Event,
    InspectionAction,
    InspectionActionReported,
    InspectionFinding,
    InspectionFindingsRecorded,
    InspectionKind,
    ObligationRef,
    PlanAmended,
    PlanClosed,
    RecommendationAnswered,
    RecommendationImplementationReported,
    RecommendationRegistered,
    ReportKind,
    ReportReturned,
    ReportSubmitted,
    ScheduleChange,
    UnitRegistered,
    UnitUpdated,
)
from shared.uow import UnitOfWork
from shared.vntime import last_instant_before
from tests import builders

DUE_AT = last_instant_before(date(2023, 6, 10))  # 09/06/2023 23:59:59.999999 ICT
LINKS = Links("https://bc.qcdc.vn", "https://kh.qcdc.vn")
PATH = ["T89", "H801", "X80101"]
WHSEC = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # 32 bytes


def obligation(unit: str = "X80101", receiving: str = "H801") -> ObligationRef:
    return builders.obligation_ref(
        unit_code=unit,
        receiving_unit=receiving,
        period_end=date(2023, 6, 8),
        plan_doc_number=builders.PLAN_DOC_NUMBER,
        plan_title=builders.PLAN_TITLE,
    )


def submitted(at: datetime, ref: ObligationRef | None = None, **fields: Any) -> ReportSubmitted:
    """A late report of :func:`obligation` (or ``ref``) from commune X80101."""
    ref = ref or obligation()
    return builders.report_submitted(
        unit_path=PATH, obligation=ref, submitted_at=at, on_time=False, **fields
    )


def missed(step: int, escalated: bool = False, **fields: Any) -> DeadlineMissed:
    return DeadlineMissed(
        unit_path=PATH, obligation=obligation(), step=step, escalated=escalated, **fields
    )


def approaching() -> DeadlineApproaching:
    return DeadlineApproaching(
        unit_path=PATH, obligation=obligation(), days_before=7, fire_on=date(2023, 6, 2)
    )


def envelope_of(event: Event, event_id: str = "e-1") -> Envelope:
    at = datetime(2023, 6, 15, 1, 0, tzinfo=UTC)
    envelope, _ = decode(
        *encode(event, source="/qcdc/reports", correlation_id="c-1", event_id=event_id, time=at)
    )
    return envelope


def contact(code: str, focal: str | None, head: str | None = None, **extra: Any) -> Contact:
    names = {
        "X80101": "Ủy ban nhân dân xã Tân An",
        "H801": "Ủy ban nhân dân huyện Tân Phú",
        "SNV": "Sở Nội vụ",
    }
    return Contact(code, names.get(code, code), ["T89", code], focal, head, **extra)


def addresses(recipients: list[Recipient]) -> list[str]:
    return [r.address for r in recipients]


# --- rules ------------------------------------------------------------------------------


def test_a_missed_deadline_reaches_the_unit_and_the_receiving_unit() -> None:
    event = missed(step=0)
    rules = rulebook().for_event(event)
    found = resolve(
        rules,
        {
            "unit": [contact("X80101", "dm@tanan.vn", "ct@tanan.vn")],
            "receiving_unit": [contact("H801", "dm@tanphu.vn")],
        },
    )
    assert addresses(found) == ["dm@tanan.vn", "dm@tanphu.vn"]
    assert [r.audience for r in found] == ["unit", "receiving_unit"]


def test_an_escalated_urging_reaches_the_head_too() -> None:
    event = missed(step=2, escalated=True)
    found = resolve(
        rulebook().for_event(event),
        {
            "unit": [contact("X80101", "dm@tanan.vn", "ct@tanan.vn")],
            "receiving_unit": [contact("H801", "dm@tanphu.vn")],
        },
    )
    assert addresses(found) == ["dm@tanan.vn", "dm@tanphu.vn", "ct@tanan.vn"]
    assert found[-1].person == "head"


def test_two_rules_hitting_one_address_make_one_message() -> None:
    # The head's address is the focal person's, and the receiving unit's too (a small
    # commune where one official does everything): one recipient, the first rule's.
    same = "Mot.Nguoi@TanAn.vn"
    found = resolve(
        rulebook().for_event(missed(step=3, escalated=True)),
        {
            "unit": [contact("X80101", same, same.lower())],
            "receiving_unit": [contact("H801", same.upper())],
        },
    )
    assert addresses(found) == [same]
    assert found[0].audience == "unit" and found[0].person == "focal"
    keys = {delivery_key("e-1", a, Channel.EMAIL) for a in (same, same.lower(), same.upper())}
    assert len(keys) == 1


def test_a_unit_without_an_address_is_skipped() -> None:
    found = resolve(
        rulebook().for_event(approaching()), {"unit": [contact("X80101", None, "ct@tanan.vn")]}
    )
    assert found == []


def test_a_plan_amendment_tells_the_added_and_when_deadlines_move_everyone() -> None:
    added = Assignee(code="X80201", unit_path=["T89", "H802", "X80201"], kind="commune")
    only_added = PlanAmended(unit_path=["T89"], plan_id="p-1", amendment=1, added_assignees=[added])
    moved = PlanAmended(
        unit_path=["T89"],
        plan_id="p-1",
        amendment=2,
        added_assignees=[added],
        schedule_changes=[
            ScheduleChange(
                key="six_month",
                old_due_at=DUE_AT,
                new_due_at=last_instant_before(date(2023, 6, 20)),
            )
        ],
    )
    everyone = ["H801", "H802", "X80201"]
    assert role_codes("assignees", only_added, everyone) == ["X80201"]
    assert role_codes("assignees", moved, everyone) == ["X80201", "H801", "H802"]


def test_roles_name_the_units_of_the_event() -> None:
    event = missed(step=0)
    assert role_codes("unit", event) == ["X80101"]
    assert role_codes("receiving_unit", event) == ["H801"]
    assert role_codes("assignees", event) == []


def test_rules_are_replaced_per_event_type_from_configuration() -> None:
    book = rulebook(
        {
            "deadline.approaching": [
                {"template": "deadline_approaching", "to": ["unit.focal", "unit.head"]}
            ],
            "qcdc.report.accepted.v1": [],
        }
    )
    found = resolve(
        book.for_event(approaching()),
        {"unit": [contact("X80101", "dm@tanan.vn", "ct@tanan.vn")]},
    )
    assert addresses(found) == ["dm@tanan.vn", "ct@tanan.vn"]
    assert not [r for r in book.rules if r.event_type == "qcdc.report.accepted.v1"]
    assert [r for r in book.rules if r.event_type == "qcdc.report.returned.v1"]  # kept


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"report.nope": []}, "unknown event type"),
        ({"report.accepted": [{"template": "x", "to": ["unit.boss"]}]}, "the person is one of"),
        ({"report.accepted": [{"template": "x", "to": ["mayor.focal"]}]}, "the role is"),
        ({"plan.issued": [{"template": "x", "to": ["receiving_unit.focal"]}]}, "has no receiving"),
        ({"deadline.missed": [{"template": "x", "to": ["unit.head"], "when": "step"}]}, "yes/no"),
        ({"report.accepted": [{"template": "x", "to": []}]}, "at least one target"),
        ({"report.accepted": {"template": "x"}}, "a list of rules"),
    ],
)
def test_a_bad_rule_table_is_refused_with_where(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        rulebook(overrides)


def test_a_negated_condition_selects_the_other_case() -> None:
    book = rulebook(
        {
            "deadline.missed": [
                {"template": "deadline_missed", "to": ["unit.head"], "when": "not escalated"}
            ]
        }
    )
    assert book.for_event(missed(1)) and not book.for_event(missed(2, escalated=True))


def test_a_rules_file_is_yaml_and_its_templates_must_exist(tmp_path: Path) -> None:
    good = tmp_path / "rules.yaml"
    good.write_text(
        "difficulty.raised:\n  - template: difficulty_raised\n    to: [tag:thanh_tra.focal]\n",
        encoding="utf-8",
    )
    book = load_rules(str(good))
    (rule,) = [r for r in book.rules if r.event_type == "qcdc.difficulty.raised.v1"]
    assert rule.to[0].key == "tag:thanh_tra"
    bad = tmp_path / "bad.yaml"
    bad.write_text("report.accepted:\n  - template: khong_co\n    to: [unit.focal]\n")
    with pytest.raises(RuleError, match="no template named khong_co"):
        load_rules(str(bad))


def test_subscribers_are_offered_what_notify_consumes() -> None:
    consumed = {aggregate for _name, _stream, aggregate in CONSUMERS}
    assert consumed == set(SUBSCRIBABLE_AGGREGATES)
    assert "qcdc.notification.delivered.v1" not in SUBSCRIBABLE
    assert set(SUBSCRIBER_TEMPLATES) <= SUBSCRIBABLE


def test_event_types_take_short_names() -> None:
    assert event_type_of("report.submitted") == "qcdc.report.submitted.v1"
    assert event_type_of("qcdc.deadline.missed.v1") == "qcdc.deadline.missed.v1"
    with pytest.raises(ValueError, match="unknown event type"):
        event_type_of("report.eaten")


# --- subscriptions ----------------------------------------------------------------------


def subscription(unit: str, subtree: bool, *types: str, active: bool = True) -> Subscription:
    return Subscription(
        id="s-1",
        unit_code=unit,
        include_subtree=subtree,
        event_types=tuple(event_type_of(t) for t in types),
        channel=Channel.EMAIL,
        address="theodoi@tanphu.vn",
        secret=None,
        digest=False,
        active=active,
        created_at=datetime(2023, 1, 1, tzinfo=UTC),
    )


def test_a_subtree_subscription_matches_events_below_its_unit() -> None:
    district = subscription("H801", True, "deadline.missed")
    assert district.matches("qcdc.deadline.missed.v1", PATH)
    assert district.matches("qcdc.deadline.missed.v1", ["T89", "H801"])
    assert not district.matches("qcdc.deadline.missed.v1", ["T89", "H802", "X80201"])
    assert not district.matches("qcdc.deadline.approaching.v1", PATH)


def test_a_unit_subscription_matches_only_its_own_events() -> None:
    district = subscription("H801", False, "deadline.missed")
    assert district.matches("qcdc.deadline.missed.v1", ["T89", "H801"])
    assert not district.matches("qcdc.deadline.missed.v1", PATH)
    assert not subscription("H801", True, "deadline.missed", active=False).matches(
        "qcdc.deadline.missed.v1", PATH
    )


@pytest.mark.parametrize(
    ("host", "allowlist", "resolved", "allowed"),
    [
        ("hooks.tanphu.vn", ["hooks.tanphu.vn"], [], True),
        ("HOOKS.tanphu.vn.", ["hooks.tanphu.vn"], [], True),
        ("a.hooks.vn", ["*.hooks.vn"], [], True),
        ("hooks.vn", ["*.hooks.vn"], [], False),
        ("127.0.0.1", ["127.0.0.0/8"], [], True),
        ("127.0.0.1", ["127.0.0.1"], [], True),
        ("10.0.0.1", ["127.0.0.0/8"], [], False),
        ("[::1]", ["::1/128"], [], True),
        ("::ffff:10.1.2.3", ["10.0.0.0/8"], [], True),
        ("other.vn", ["10.0.0.0/8"], ["10.1.1.1"], True),
        ("other.vn", ["10.0.0.0/8"], ["10.1.1.1", "169.254.169.254"], False),
        ("hooks.tanphu.vn", [], [], False),
    ],
)
def test_the_webhook_allowlist(
    host: str, allowlist: list[str], resolved: list[str], allowed: bool
) -> None:
    assert host_allowed(host, allowlist, resolved) is allowed


def test_the_cloudevent_of_a_webhook_is_structured_json() -> None:
    event = missed(step=1)
    envelope = envelope_of(event)
    body = json.loads(subscriptions.cloudevent_json(event, envelope))
    expected = {
        "specversion": "1.0",
        "id": "e-1",
        "type": "qcdc.deadline.missed.v1",
        "source": "/qcdc/reports",
        "subject": "T89.H801.X80101",
        "time": "2023-06-15T01:00:00Z",
        "datacontenttype": "application/json",
        "correlationid": "c-1",
    }
    assert {key: body.get(key) for key in expected} == expected
    assert body["data"]["obligation"]["plan_title"].startswith("Kế hoạch")
    assert body["data"]["step"] == 1


# --- templates ----------------------------------------------------------------------------


def rendered(event: Event, template: str, **recipient: Any) -> tuple[str, str, str]:
    facts = Facts(
        envelope_of(event),
        LINKS,
        names={"X80101": "Ủy ban nhân dân xã Tân An", "H801": "Ủy ban nhân dân huyện Tân Phú"},
    )
    who = {
        "recipient_name": "Ủy ban nhân dân xã Tân An",
        "recipient_code": "X80101",
        "audience": "unit",
        "person": "focal",
        **recipient,
    }
    return render(template, {**event_context(event, facts), **who})


def test_a_reminder_shows_the_last_on_time_day_in_its_subject() -> None:
    subject, text, html = rendered(approaching(), "deadline_approaching")
    assert subject == (
        "[Nhắc hạn] Báo cáo 6 tháng của Ủy ban nhân dân xã Tân An theo Kế hoạch 123/KH-UBND"
        " – hạn 09/06/2023"
    )
    assert "Hạn nộp: trước ngày 10/06/2023 (ngày cuối cùng: 09/06/2023)" in text
    assert "(còn 7 ngày)" in text
    assert "Kỳ số liệu: từ ngày 15/12/2022 đến ngày 08/06/2023" in text
    assert "Nơi nhận báo cáo: Ủy ban nhân dân huyện Tân Phú" in text
    assert "https://bc.qcdc.vn/obligations/o-1" in text
    assert "Kính gửi: Ủy ban nhân dân xã Tân An," in text
    assert 'href="https://bc.qcdc.vn/obligations/o-1"' in html


def test_a_reminder_counts_working_days_and_states_the_last_instant() -> None:
    merged = DeadlineApproaching(
        unit_path=PATH,
        obligation=obligation(),
        days_before=1,
        fire_on=date(2023, 6, 2),
        steps=[7, 3, 1],
        working_days_left=5,
    )
    _, text, html = rendered(merged, "deadline_approaching")
    assert "thời điểm cuối cùng được tính là đúng hạn là 23:59 09/06/2023" in text
    assert "(còn 5 ngày làm việc, không kể hôm nay)" in text and "còn 7 ngày" not in text
    assert "còn 5 ngày làm việc" in html
    last = merged.model_copy(update={"working_days_left": 0})
    _, text, _ = rendered(last, "deadline_approaching")
    assert "(hôm nay là ngày làm việc cuối cùng trước hạn)" in text


def test_the_last_urging_goes_to_the_receiving_units_leadership_and_says_so() -> None:
    event = missed(
        5, escalated=True, escalated_to_receiving_unit=True, final=True, urge_max_steps=5
    )
    found = resolve(
        rulebook().for_event(event),
        {
            "unit": [contact("X80101", "dm@tanan.vn", "ct@tanan.vn")],
            "receiving_unit": [contact("H801", "dm@tanphu.vn", "ct@tanphu.vn")],
        },
    )
    assert addresses(found) == ["dm@tanan.vn", "dm@tanphu.vn", "ct@tanan.vn", "ct@tanphu.vn"]
    assert (found[-1].audience, found[-1].person) == ("receiving_unit", "head")
    subject, text, _ = rendered(
        event,
        "deadline_missed",
        recipient_name="Ủy ban nhân dân huyện Tân Phú",
        audience="receiving_unit",
        person="head",
    )
    assert subject.endswith("– báo cáo lãnh đạo Ủy ban nhân dân huyện Tân Phú – lần cuối")
    assert "Đề nghị lãnh đạo Ủy ban nhân dân huyện Tân Phú chỉ đạo, đôn đốc" in text
    assert "Đây là lần đôn đốc cuối cùng (5/5)" in text
    not_yet = event.model_copy(update={"escalated_to_receiving_unit": False, "final": False})
    assert len(resolve(rulebook().for_event(not_yet), {})) == 0
    assert [r.when for r in rulebook().for_event(not_yet)] == [None, "escalated"]


def test_the_texts_are_vietnamese_in_nfc() -> None:
    for text in rendered(approaching(), "deadline_approaching"):
        assert unicodedata.is_normalized("NFC", text)
    subject, text, _ = rendered(missed(0), "deadline_missed")
    assert "Quá hạn" in subject and "chưa nhận được báo cáo" in text


def test_a_missed_deadline_and_the_urgings() -> None:
    subject, text, _ = rendered(missed(0), "deadline_missed")
    assert subject.startswith("[Quá hạn] Báo cáo 6 tháng của Ủy ban nhân dân xã Tân An")
    assert subject.endswith("hạn 09/06/2023")
    subject, text, _ = rendered(missed(1), "deadline_missed")
    assert subject.startswith("[Đôn đốc lần 1] Báo cáo 6 tháng")
    assert "Đôn đốc lần 1: tính đến ngày 15/06/2023" in text  # ce-time 08:00 ICT
    assert "Thủ trưởng" not in text


def test_an_escalated_urging_addresses_and_mentions_the_head() -> None:
    subject, text, html = rendered(missed(2, escalated=True), "deadline_missed", person="head")
    assert subject.startswith("[Đôn đốc lần 2]")
    assert subject.endswith("– báo cáo Thủ trưởng đơn vị")
    assert text.startswith("Kính gửi: Thủ trưởng Ủy ban nhân dân xã Tân An,")
    assert "gửi đồng thời tới Thủ trưởng Ủy ban nhân dân xã Tân An" in text
    assert "Đề nghị Thủ trưởng đơn vị chỉ đạo" in text
    assert "Thủ trưởng" in html


def test_the_receiving_unit_is_asked_to_urge() -> None:
    _, text, _ = rendered(
        missed(0),
        "deadline_missed",
        recipient_name="Ủy ban nhân dân huyện Tân Phú",
        audience="receiving_unit",
    )
    assert "Đề nghị Ủy ban nhân dân huyện Tân Phú theo dõi, đôn đốc" in text


def returned(reason: str) -> ReportReturned:
    return ReportReturned(
        unit_path=PATH,
        report_id="r-7",
        receipt_number="BC-2023-000007",
        obligation=obligation(),
        reviewed_by_unit="H801",
        reviewed_at=datetime(2023, 6, 12, 2, 30, tzinfo=UTC),
        reason=reason,
    )


def test_a_returned_report_gives_the_reason() -> None:
    subject, text, _ = rendered(
        returned("Thiếu số liệu tiếp công dân.\nBổ sung biểu 2."), "report_returned"
    )
    assert subject.startswith("[Trả lại để hoàn thiện] Báo cáo 6 tháng")
    assert "BC-2023-000007" in subject
    assert "Thiếu số liệu tiếp công dân.\nBổ sung biểu 2." in text
    assert "Ủy ban nhân dân huyện Tân Phú đã trả lại" in text
    assert "Thời điểm trả lại: 09:30 12/06/2023" in text
    assert "https://bc.qcdc.vn/reports/r-7" in text


def test_html_escapes_what_units_wrote_but_text_keeps_it() -> None:
    reason = '<img src=x onerror="alert(1)"> & "số liệu"'
    _, text, html = rendered(returned(reason), "report_returned")
    assert "<img" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp;" in html
    assert reason in text


def test_the_receiving_unit_notice_of_a_report() -> None:
    event = submitted(datetime(2023, 6, 10, 1, 0, tzinfo=UTC))
    subject, text, _ = rendered(
        event, "report_received_notice", recipient_name="Ủy ban nhân dân huyện Tân Phú"
    )
    assert subject == (
        "[Đã nhận báo cáo] Báo cáo 6 tháng của Ủy ban nhân dân xã Tân An – số BC-2023-000001"
        " – quá hạn"
    )
    assert "Thời điểm tiếp nhận: 08:00 10/06/2023" in text


def test_a_new_plan_lists_its_schedule() -> None:
    event = builders.plan_issued(
        [Assignee(code="H801", unit_path=["T89", "H801"], kind="district")],
        [builders.scheduled_report(period_end=date(2023, 6, 8))],
        sub_plan_due_at=last_instant_before(date(2023, 3, 1)),
    )
    subject, text, _ = rendered(event, "plan_issued", audience="assignees")
    assert (
        subject
        == "[Kế hoạch mới] 123/KH-UBND – Kế hoạch thực hiện Quy chế dân chủ ở cơ sở năm 2023"
    )
    assert "ban hành Kế hoạch số 123/KH-UBND ngày 16/01/2023" in text
    assert "trước ngày 10/06/2023 (ngày cuối cùng: 09/06/2023)" in text
    assert "ban hành trước ngày 01/03/2023 (ngày cuối cùng: 28/02/2023)" in text
    assert "https://kh.qcdc.vn/plans/p-1" in text


def difficulty(difficulty_id: str, description: str, **fields: Any) -> DifficultyRaised:
    """Commune X80101's difficulty with plan p-1, raised at 10:00 ICT on 3 April 2023."""
    at = datetime(2023, 4, 3, 3, 0, tzinfo=UTC)
    return DifficultyRaised(
        unit_path=PATH,
        difficulty_id=difficulty_id,
        plan_id="p-1",
        unit_code="X80101",
        description=description,
        raised_at=at,
        **fields,
    )


def test_a_difficulty_names_the_unit_and_keeps_its_lines() -> None:
    event = difficulty("d-1", "Chưa có hướng dẫn.\nĐề nghị Sở hướng dẫn.", content_area="3")
    subject, text, _ = rendered(event, "difficulty_raised", recipient_name="Sở Nội vụ")
    assert subject == "[Vướng mắc] Ủy ban nhân dân xã Tân An – Kế hoạch p-1 – nội dung 3"
    assert "Chưa có hướng dẫn.\nĐề nghị Sở hướng dẫn." in text
    assert "10:00 03/04/2023" in text


def test_the_digest_lists_what_is_overdue_first() -> None:
    items = [
        ("qcdc.report.submitted.v1", "[Đã nhận báo cáo] A", datetime(2023, 6, 10, 1, tzinfo=UTC)),
        ("qcdc.deadline.missed.v1", "[Quá hạn] B", datetime(2023, 6, 10, 2, tzinfo=UTC)),
    ]
    context = {**digest_context("11/06/2023", "Sở Nội vụ", items), "person": "focal"}
    subject, text, html = render("digest", context)
    assert subject == "Tổng hợp thông báo ngày 11/06/2023 (2 thông báo)"
    assert text.index("Quá hạn, đôn đốc (1):") < text.index("Báo cáo đã nhận (1):")
    assert "- 09:00 10/06/2023: [Quá hạn] B" in text
    assert "<h3>Quá hạn, đôn đốc (1)</h3>" in html


def test_the_digest_is_due_from_its_hour_in_vietnam_time() -> None:
    assert digest_day(datetime(2023, 6, 10, 23, 59, tzinfo=UTC), 7) is None  # 06:59 ICT
    assert digest_day(datetime(2023, 6, 11, 0, 0, tzinfo=UTC), 7) == date(2023, 6, 11)
    assert digest_day(datetime(2023, 6, 10, 17, 0, tzinfo=UTC), 0) == date(2023, 6, 11)


# --- the handlers on SQLite ---------------------------------------------------------------


class Db:
    def __init__(self, tmp_path: Path) -> None:
        self.engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/notify.db")
        self.clock = ManualClock(datetime(2023, 6, 10, 1, 0, tzinfo=UTC))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.config = NotifyConfig(rules=rulebook(), links=LINKS)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, messaging, source="/qcdc/notify", clock=self.clock)

    async def handle(self, event: Event, event_id: str) -> None:
        async with self.uow() as uow:
            await on_event(event, envelope_of(event, event_id), uow, config=self.config)
            await uow.commit()

    async def deliveries(self, **where: Any) -> list[Any]:
        async with self.uow() as uow:
            return await DeliveryRepository(uow.session).search(DeliveryFilter(**where))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Db]:
    database = Db(tmp_path)
    await migrate(database.engine, NOTIFY.migrations)
    yield database
    await database.engine.dispose()


def unit_event(code: str, path: list[str], focal: str, **extra: Any) -> UnitRegistered:
    return UnitRegistered(
        unit_path=path,
        code=code,
        name=contact(code, None).name,
        kind="commune",
        contacts=Contacts(focal_email=focal, head_email=f"head@{code.lower()}.vn"),
        **extra,
    )


async def register(db: Db) -> None:
    await db.handle(unit_event("T89", ["T89"], "ubnd@t89.vn"), "u-0")
    await db.handle(unit_event("SNV", ["T89", "SNV"], "vp@snv.vn", tags=["home_affairs"]), "u-1")
    await db.handle(unit_event("H801", ["T89", "H801"], "vp@h801.vn"), "u-2")
    await db.handle(unit_event("X80101", PATH, "vp@x80101.vn"), "u-3")


async def test_the_handler_records_one_delivery_per_recipient(db: Db) -> None:
    await register(db)
    await db.handle(missed(2, escalated=True), "e-9")
    await db.handle(missed(2, escalated=True), "e-9")  # a replay finds its deliveries
    found = await db.deliveries(event_type="qcdc.deadline.missed.v1")
    assert sorted(d.recipient for d in found) == ["head@x80101.vn", "vp@h801.vn", "vp@x80101.vn"]
    assert {d.unit_code for d in found} == {"X80101"}
    assert {d.status for d in found} == {DeliveryStatus.PENDING}


async def test_an_unknown_unit_is_retried_but_a_missing_receiver_is_not(db: Db) -> None:
    with pytest.raises(ContactUnknown, match="X80101"):
        await db.handle(missed(0), "e-1")
    await db.handle(unit_event("X80101", PATH, "vp@x80101.vn"), "u-3")
    await db.handle(missed(0), "e-1")
    assert [d.recipient for d in await db.deliveries()] == ["vp@x80101.vn"]


async def test_difficulties_go_to_the_unit_tagged_home_affairs(db: Db) -> None:
    await register(db)
    await db.handle(difficulty("d-1", "Vướng mắc"), "e-d")
    (delivery,) = await db.deliveries(event_type="qcdc.difficulty.raised.v1")
    assert delivery.recipient == "vp@snv.vn"
    assert delivery.subject.startswith("[Vướng mắc] Ủy ban nhân dân xã Tân An")


async def test_a_difficulty_goes_to_the_unit_it_was_raised_to_and_home_affairs(db: Db) -> None:
    await register(db)
    await db.handle(difficulty("d-2", "Vướng mắc", raised_to="H801"), "e-d2")
    found = await db.deliveries(event_type="qcdc.difficulty.raised.v1")
    assert sorted(d.recipient for d in found) == ["vp@h801.vn", "vp@snv.vn"]


async def new_subscription(db: Db, **fields: Any) -> Subscription:
    values: dict[str, Any] = {
        "unit_code": "H801",
        "include_subtree": True,
        "event_types": ["deadline.missed"],
        "channel": Channel.EMAIL,
        "address": "theodoi@h801.vn",
        **fields,
    }
    async with db.uow() as uow:
        return await subscriptions.subscribe(
            subscriptions.NewSubscription(**values),
            uow,
            caller=CONSOLE,
            allowlist=["hooks.h801.vn"],
        )


async def test_subscriptions_add_email_digest_and_webhook_deliveries(db: Db) -> None:
    await register(db)
    await new_subscription(db)
    await new_subscription(db, address="tonghop@h801.vn", digest=True)
    hook = await new_subscription(
        db,
        include_subtree=False,
        event_types=["qcdc.deadline.missed.v1"],
        channel=Channel.WEBHOOK,
        address="https://hooks.h801.vn/qcdc",
        secret=WHSEC,
        unit_code="X80101",
    )
    await new_subscription(db, address="vp@h801.vn")  # already told by a rule
    await db.handle(missed(0), "e-2")
    found = {d.recipient: d for d in await db.deliveries()}
    assert sorted(found) == [
        "https://hooks.h801.vn/qcdc",
        "theodoi@h801.vn",
        "tonghop@h801.vn",
        "vp@h801.vn",
        "vp@x80101.vn",
    ]
    assert found["tonghop@h801.vn"].status is DeliveryStatus.HELD
    assert found["theodoi@h801.vn"].subject.startswith("[Quá hạn]")
    assert found["vp@h801.vn"].subscription_id is None  # the rule's message, not a copy
    webhook = found["https://hooks.h801.vn/qcdc"]
    assert webhook.channel is Channel.WEBHOOK and webhook.subscription_id == hook.id
    assert webhook.payload is not None and json.loads(webhook.payload)["id"] == "e-2"
    assert webhook.key == delivery_key("e-2", "https://hooks.h801.vn/qcdc", Channel.WEBHOOK)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"event_types": ["report.eaten"]}, "event_types", "unknown event type"),
        ({"event_types": ["notification.failed"]}, "event_types", "not offered"),
        ({"event_types": ["subplan.registered"]}, "event_types", "use a webhook"),
        ({"address": "not-an-address"}, "address", "not an e-mail"),
        ({"secret": "0123456789abcdef"}, "secret", "webhooks only"),
        (
            {"channel": Channel.WEBHOOK, "address": "https://hooks.h801.vn/", "secret": "short"},
            "secret",
            "starts with whsec_",
        ),
        (
            {
                "channel": Channel.WEBHOOK,
                "address": "https://hooks.h801.vn/",
                "secret": "whsec_c2hvcnQ=",
            },
            "secret",
            "24 to 64 bytes, not 5",
        ),
        (
            {
                "channel": Channel.WEBHOOK,
                "address": "https://hooks.h801.vn/",
                "secret": "short",
                "signature_scheme": SignatureScheme.LEGACY,
            },
            "secret",
            "16+",
        ),
        (
            {"channel": Channel.WEBHOOK, "address": "ftp://hooks.h801.vn/", "secret": WHSEC},
            "address",
            "http:// or https://",
        ),
        (
            {"channel": Channel.WEBHOOK, "address": "http://10.0.0.1/", "secret": WHSEC},
            "address",
            "not on the webhook allowlist",
        ),
        (
            {
                "channel": Channel.WEBHOOK,
                "address": "https://u:p@hooks.h801.vn/",
                "secret": WHSEC,
            },
            "address",
            "credentials",
        ),
        (
            {
                "channel": Channel.WEBHOOK,
                "address": "https://hooks.h801.vn/",
                "secret": WHSEC,
                "digest": True,
            },
            "digest",
            "a digest is an e-mail",
        ),
    ],
)
async def test_a_bad_subscription_is_refused_by_field(
    db: Db, fields: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(Refused) as refused:
        await new_subscription(db, **fields)
    assert refused.value.field == field
    assert message in refused.value.errors[0]["message"]
    async with db.uow() as uow:
        assert await SubscriptionRepository(uow.session).find() == []


async def test_a_digest_is_assembled_once_per_recipient_and_day(db: Db) -> None:
    await register(db)
    await new_subscription(db, address="TongHop@h801.vn", digest=True)
    await db.handle(missed(0), "e-3")
    await db.handle(approaching(), "e-4")
    await db.handle(missed(1), "e-5")
    db.clock.set(datetime(2023, 6, 10, 23, 0, tzinfo=UTC))  # 06:00 ICT on 11/06: too early
    assert await assemble_digests(db.uow, db.clock, hour=7) == []
    db.clock.set(datetime(2023, 6, 11, 0, 30, tzinfo=UTC))  # 07:30 ICT
    made = await assemble_digests(db.uow, db.clock, hour=7)
    assert made == [
        delivery_key(digest_event_id(date(2023, 6, 11)), "tonghop@h801.vn", Channel.EMAIL)
    ]
    await db.handle(missed(2), "e-6")  # after today's digest: waits for tomorrow's
    assert await assemble_digests(db.uow, db.clock, hour=7) == []
    found = {d.key: d for d in await db.deliveries()}
    digest = found[made[0]]
    assert digest.status is DeliveryStatus.PENDING and digest.recipient == "TongHop@h801.vn"
    assert digest.subject == "Tổng hợp thông báo ngày 11/06/2023 (2 thông báo)"
    assert "Kính gửi: Ủy ban nhân dân huyện Tân Phú," in digest.text
    held = [d for d in found.values() if d.digest]
    assert sorted(d.status.value for d in held) == ["held", "sent", "sent"]
    assert {d.digested_in for d in held if d.status is DeliveryStatus.SENT} == {made[0]}
    db.clock.advance(timedelta(days=1))
    (tomorrow,) = await assemble_digests(db.uow, db.clock, hour=7)
    assert (await db.deliveries(status="held")) == []
    assert tomorrow != made[0]


async def test_the_log_filters_by_subtree_and_redelivers_only_failed_ones(db: Db) -> None:
    await register(db)
    await db.handle(missed(0), "e-7")
    other = DeadlineMissed(unit_path=["T89", "H801"], obligation=obligation("H801", "SNV"), step=0)
    await db.handle(other, "e-8")
    assert len(await db.deliveries(unit_code="H801")) == 4
    assert len(await db.deliveries(unit_code="X80101")) == 2
    assert await db.deliveries(unit_code="X8010") == []
    key = (await db.deliveries(unit_code="X80101"))[0].key
    async with db.uow() as uow:
        repository = DeliveryRepository(uow.session)
        assert not await repository.redeliver(key, db.clock.now())
        await repository.update(key, status="failed", attempts=8, last_error="550")
        assert await repository.redeliver(key, db.clock.now())
        await uow.commit()
    (again,) = [d for d in await db.deliveries() if d.key == key]
    assert again.status is DeliveryStatus.PENDING and again.attempts == 8
    assert again.attempts_this_round == 0  # a fresh budget; all 8 stay counted


def test_the_rules_file_in_the_docs_loads(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"
    example = docs.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "rules.yaml"
    path.write_text(example, encoding="utf-8")
    book = load_rules(str(path))
    late = submitted(datetime(2023, 6, 10, 1, 0, tzinfo=UTC), receipt_number="BC-1")
    assert [r.to[0].key + "." + r.to[0].person for r in book.for_event(late)] == [
        "unit.focal",
        "receiving_unit.focal",
        "unit.head",
    ]
    assert not [r for r in book.rules if r.event_type == "qcdc.report.accepted.v1"]


SOURCE = "Ban Thường trực Ủy ban MTTQ Việt Nam huyện Tân Phú"
TOPIC = "Công khai thu, chi quỹ đầu tư xây dựng"
RECOMMENDATION: dict[str, Any] = {
    "unit_path": PATH,
    "recommendation_id": "r-1",
    "addressed_unit": "X80101",
    "registered_by_unit": "H801",
    "source_organisation": SOURCE,
    "topic": TOPIC,
}
"""What every event about recommendation r-1 after its registration says of it."""


def recommendation_registered() -> RecommendationRegistered:
    return RecommendationRegistered(
        **RECOMMENDATION,
        content="Đề nghị niêm yết công khai theo quý.",
        received_on=date(2023, 3, 6),
        answer_due_at=last_instant_before(date(2023, 4, 6)),
        obligation_id="o-9",
    )


def recommendation_answered() -> RecommendationAnswered:
    at = datetime(2023, 4, 7, 2, 0, tzinfo=UTC)
    return RecommendationAnswered(
        **RECOMMENDATION, answer="Đã niêm yết từ quý II.", answered_at=at, on_time=False
    )


def test_a_recommendation_goes_to_the_addressed_unit_and_its_answers_to_the_registrar() -> None:
    registered, answered = recommendation_registered(), recommendation_answered()
    book = rulebook()
    assert [(r.template, [t.key for t in r.to]) for r in book.for_event(registered)] == [
        ("recommendation_registered", ["unit"])
    ]
    assert role_codes("unit", registered) == ["X80101"]
    assert role_codes("receiving_unit", answered) == ["H801"]
    assert [r.template for r in book.for_event(answered)] == ["recommendation_answered"]

    subject, text, html = rendered(registered, "recommendation_registered")
    assert subject == (
        "[Kiến nghị sau giám sát] Ủy ban nhân dân xã Tân An – trả lời trước hết ngày 05/04/2023"
    )
    assert f"{SOURCE} kiến nghị Ủy ban nhân dân xã Tân An sau giám sát:" in text
    assert "Đơn vị ghi nhận: Ủy ban nhân dân huyện Tân Phú" in text
    assert "https://bc.qcdc.vn/obligations/o-9" in text and "o-9" in html
    subject, text, _ = rendered(answered, "recommendation_answered", audience="receiving_unit")
    assert subject.endswith("(quá hạn)")
    assert "Đã niêm yết từ quý II." in text and "09:00 07/04/2023 (quá hạn)" in text
    assert all(unicodedata.is_normalized("NFC", part) for part in (subject, text))


def test_an_implementation_report_says_whether_it_closes_the_recommendation() -> None:
    event = RecommendationImplementationReported(
        **RECOMMENDATION,
        report_number=2,
        content="Đã công khai đầy đủ.",
        completed=True,
        reported_at=datetime(2023, 7, 5, 2, 0, tzinfo=UTC),
    )
    subject, text, _ = rendered(
        event, "recommendation_implementation_reported", audience="receiving_unit"
    )
    assert subject == (
        f"[Thực hiện kiến nghị] Ủy ban nhân dân xã Tân An báo cáo lần 2 – {TOPIC} (đã hoàn thành)"
    )
    assert "đã thực hiện xong, kiến nghị được khép lại" in text


# --- reports overdue after their last urging ------------------------------------------------


def final_miss(obligation_id: str, unit: str = "X80101", key: str = "six_month") -> DeadlineMissed:
    ref = obligation(unit).model_copy(update={"obligation_id": obligation_id, "schedule_key": key})
    return DeadlineMissed(
        unit_path=PATH, obligation=ref, step=5, escalated=True, final=True, urge_max_steps=5
    )


async def overdue_ids(db: Db) -> list[str]:
    async with db.uow() as uow:
        return [o.obligation_id for o in await OverdueRepository(uow.session).received_by(["H801"])]


async def test_the_overdue_list_is_withdrawn_by_whatever_ends_the_lateness(db: Db) -> None:
    await register(db)
    for index, key in enumerate(("six_month", "annual", "k-3", "k-4", "k-5")):
        await db.handle(final_miss(f"o-{index}", key=key), f"m-{index}")
    await db.handle(missed(3, escalated=True), "m-not-final")  # not final: not listed
    await db.handle(final_miss("o-0"), "m-again")  # listed once
    assert sorted(await overdue_ids(db)) == ["o-0", "o-1", "o-2", "o-3", "o-4"]

    report = submitted(datetime(2023, 7, 1, tzinfo=UTC), final_miss("o-0").obligation)
    await db.handle(report, "s-1")
    assert sorted(await overdue_ids(db)) == ["o-1", "o-2", "o-3", "o-4"]
    moved = PlanAmended(
        unit_path=["T89"],
        plan_id="p-1",
        amendment=1,
        schedule_changes=[ScheduleChange(key="annual", old_due_at=DUE_AT, new_due_at=DUE_AT)],
    )
    await db.handle(moved, "a-1")
    assert sorted(await overdue_ids(db)) == ["o-2", "o-3", "o-4"]
    other_plan = PlanClosed(unit_path=["T89"], plan_id="p-2", closed_at=DUE_AT)
    await db.handle(other_plan, "c-2")
    assert len(await overdue_ids(db)) == 3
    dissolved = UnitUpdated(
        **unit_event("X80101", PATH, "vp@x80101.vn").model_dump(exclude={"active"}), active=False
    )
    await db.handle(dissolved, "u-9")
    assert await overdue_ids(db) == []


async def test_the_digest_lists_reports_overdue_after_their_urging_every_day(db: Db) -> None:
    await register(db)
    await db.handle(final_miss("o-1"), "m-1")
    db.clock.set(datetime(2023, 6, 20, 1, 0, tzinfo=UTC))  # 08:00 ICT
    [key] = await assemble_digests(db.uow, db.clock, hour=7)
    [digest] = [d for d in await db.deliveries() if d.key == key]
    assert digest.recipient == "vp@h801.vn"
    assert digest.subject == "Tổng hợp thông báo ngày 20/06/2023 (1 báo cáo quá hạn chưa nộp)"
    assert "Tổng hợp thông báo ngày 20/06/2023: 1 báo cáo quá hạn chưa nộp." in digest.text
    assert "Báo cáo 6 tháng của Ủy ban nhân dân xã Tân An theo Kế hoạch 123/KH-UBND" in digest.text
    assert await assemble_digests(db.uow, db.clock, hour=7) == []  # one a day
    db.clock.set(datetime(2023, 6, 21, 1, 0, tzinfo=UTC))
    assert len(await assemble_digests(db.uow, db.clock, hour=7)) == 1  # and the next day


async def test_reminder_and_urging_mail_not_yet_sent_is_withdrawn_once_reported(db: Db) -> None:
    await register(db)
    await db.handle(missed(1), "m-1")  # pending: the mail server is down, say
    other = missed(1).model_copy(
        update={"obligation": obligation().model_copy(update={"obligation_id": "o-other"})}
    )
    await db.handle(other, "m-2")
    found = await db.deliveries(event_type="qcdc.deadline.missed.v1")
    sent = next(d for d in found if d.event_id == "m-1")  # one went out already
    async with db.uow() as uow:
        await DeliveryRepository(uow.session).update(sent.key, status="sent")
        await uow.commit()
    await db.handle(submitted(datetime(2023, 6, 16, tzinfo=UTC)), "s-1")
    found = await db.deliveries(event_type="qcdc.deadline.missed.v1")
    statuses = {(d.event_id, d.status) for d in found if d.key != sent.key}
    assert statuses == {
        ("m-1", DeliveryStatus.WITHDRAWN),
        ("m-2", DeliveryStatus.PENDING),  # another obligation's
    }
    assert next(d for d in found if d.key == sent.key).status is DeliveryStatus.SENT
    receipts = await db.deliveries(event_type="qcdc.report.submitted.v1")
    assert receipts and DeliveryStatus.WITHDRAWN not in {d.status for d in receipts}


def ad_hoc_ref(
    obligation_id: str, key: str, on: date, due_before: date, title: str
) -> ObligationRef:
    """An obligation no plan holds (an answer, a follow-up) of X80101 to H801, arisen ``on``."""
    return builders.obligation_ref(
        obligation_id=obligation_id,
        plan_id="",
        schedule_key=key,
        report_kind=ReportKind.AD_HOC,
        unit_code="X80101",
        receiving_unit="H801",
        period_start=on,
        period_end=on,
        due_at=last_instant_before(due_before),
        plan_title=title,
    )


def recommendation_ref() -> ObligationRef:
    title = f"Trả lời kiến nghị sau giám sát: {TOPIC}"
    return ad_hoc_ref("o-9", "recommendation-r-1", date(2023, 3, 6), date(2023, 4, 6), title)


def follow_up_ref() -> ObligationRef:
    title = "Khắc phục sau khảo sát: Khảo sát thực hiện QCDC"
    return ad_hoc_ref("o-a1", "inspection-a-1", date(2023, 3, 8), date(2023, 4, 1), title)


@pytest.mark.parametrize(
    ("ref", "fire_on", "subject_start", "arisen"),
    [
        (
            recommendation_ref(),
            date(2023, 4, 2),
            "[Nhắc hạn] Văn bản trả lời kiến nghị sau giám sát của Ủy ban nhân dân xã Tân An",
            "- Ngày nhận kiến nghị: 06/03/2023\n",
        ),
        (
            follow_up_ref(),
            date(2023, 3, 28),
            "[Nhắc hạn] Báo cáo kết quả khắc phục sau kiểm tra, khảo sát của Ủy ban nhân dân xã "
            "Tân An",
            "- Ngày kết luận kiểm tra, khảo sát: 08/03/2023\n",
        ),
    ],
    ids=["recommendation-answer", "inspection-follow-up"],
)
def test_a_reminder_of_an_ad_hoc_obligation_names_what_it_asks_for_and_the_day_it_arose(
    ref: ObligationRef, fire_on: date, subject_start: str, arisen: str
) -> None:
    event = DeadlineApproaching(unit_path=PATH, obligation=ref, days_before=3, fire_on=fire_on)
    subject, text, html = rendered(event, "deadline_approaching")
    assert subject.startswith(subject_start)
    assert f"- Nội dung: {ref.plan_title}\n" in text
    assert arisen in text
    assert "Kỳ số liệu" not in text and "Kỳ số liệu" not in html
    _, text, _ = rendered(missed_of(ref), "deadline_missed")
    assert arisen in text and "Kỳ số liệu" not in text


def missed_of(ref: ObligationRef) -> DeadlineMissed:
    return DeadlineMissed(unit_path=PATH, obligation=ref, step=0)


async def test_an_unanswered_recommendation_urges_the_commune_without_a_plan(db: Db) -> None:
    await register(db)
    final = DeadlineMissed(
        unit_path=PATH, obligation=recommendation_ref(), step=5, final=True, urge_max_steps=5
    )
    await db.handle(final, "r-m5")
    found = await db.deliveries(event_type="qcdc.deadline.missed.v1")
    assert sorted(d.recipient for d in found) == ["vp@h801.vn", "vp@x80101.vn"]


INSPECTION: dict[str, Any] = {
    "unit_path": PATH,
    "inspection_id": "i-1",
    "topic": "Khảo sát thực hiện QCDC",
    "inspecting_unit": "H801",
    "inspected_unit": "X80101",
}
"""What every event about the district's survey i-1 of commune X80101 says of it."""


def inspection_findings() -> InspectionFindingsRecorded:
    return InspectionFindingsRecorded(
        **INSPECTION,
        kind=InspectionKind.SURVEY,
        conducted_on=date(2023, 3, 8),
        findings=[
            InspectionFinding(
                number=1,
                content="Chưa công khai dự toán.",
                actions=[
                    InspectionAction(
                        action_id="a-1",
                        number=1,
                        content="Niêm yết dự toán.",
                        due_at=last_instant_before(date(2023, 4, 1)),
                        obligation_id="o-a1",
                    )
                ],
            )
        ],
    )


def inspection_reported() -> InspectionActionReported:
    return InspectionActionReported(
        **INSPECTION,
        action_id="a-1",
        action="Niêm yết dự toán.",
        report_number=2,
        content="Đã niêm yết.",
        done=True,
        reported_at=datetime(2023, 4, 3, 2, tzinfo=UTC),
        on_time=False,
    )


def test_findings_go_to_the_inspected_unit_with_each_deadline_and_reports_to_the_inspector() -> (
    None
):
    subject, text, html = rendered(inspection_findings(), "inspection_findings_recorded")
    assert subject == "[Kết luận khảo sát] Ủy ban nhân dân xã Tân An – 1 việc phải khắc phục"
    assert (
        "1.1. Yêu cầu khắc phục: Niêm yết dự toán. – hạn báo cáo kết quả: hết ngày 31/03/2023"
        in text
    )
    assert "o-a1" in text and "hết ngày 31/03/2023" in html
    subject, text, _ = rendered(
        inspection_reported(), "inspection_action_reported", audience="receiving_unit"
    )
    assert subject.endswith("báo cáo lần 2 – Khảo sát thực hiện QCDC (đã khắc phục xong)")
    assert "/inspection-actions/a-1" in text  # where the inspecting unit decides
    portal = Links("https://bc.qcdc.vn", "https://kh.qcdc.vn", portal_url="https://cong.qcdc.vn/")
    assert portal.inspected_actions("a-1") == "https://cong.qcdc.vn/kiem-tra"
    assert "(quá hạn)" in text


@pytest.mark.parametrize(
    ("first", "answer"),
    [
        (recommendation_registered, recommendation_answered),
        (inspection_findings, inspection_reported),
    ],
    ids=["recommendation-to-the-registrar", "inspection-report-to-the-inspector"],
)
async def test_the_unit_asked_hears_the_request_and_the_unit_asking_hears_the_answer(
    db: Db, first: Callable[[], Event], answer: Callable[[], Event]
) -> None:
    # A recommendation's source organisation hears the answer through the unit that
    # registered it; an inspecting unit hears the inspected unit's report.
    await register(db)
    await db.handle(first(), "e-1")
    await db.handle(answer(), "e-2")
    asked = await db.deliveries(event_type=first().ce_type())
    answered = await db.deliveries(event_type=answer().ce_type())
    assert [d.recipient for d in asked] == ["vp@x80101.vn"]
    assert [d.recipient for d in answered] == ["vp@h801.vn"]


async def test_the_digest_names_each_overdue_obligation_by_what_it_asks_for(db: Db) -> None:
    await register(db)
    conference = final_miss("o-c", key="staff_conference")
    await db.handle(conference, "m-c")
    final = DeadlineMissed(
        unit_path=PATH, obligation=recommendation_ref(), step=5, final=True, urge_max_steps=5
    )
    await db.handle(final, "m-r")
    follow_up = final_miss("o-a1", key="inspection-a-1")
    await db.handle(follow_up, "m-a")
    db.clock.set(datetime(2023, 6, 20, 1, 0, tzinfo=UTC))  # 08:00 ICT
    [key] = await assemble_digests(db.uow, db.clock, hour=7)
    [digest] = [d for d in await db.deliveries() if d.key == key]
    assert digest.subject == "Tổng hợp thông báo ngày 20/06/2023 (3 việc quá hạn chưa thực hiện)"
    assert "Việc quá hạn đã hết lượt đôn đốc, vẫn chưa thực hiện (3):" in digest.text
    assert "báo cáo quá hạn" not in digest.text.lower()
    for line in (
        "- Biên bản Hội nghị cán bộ, công chức, viên chức và người lao động của Ủy ban nhân dân "
        "xã Tân An theo Kế hoạch 123/KH-UBND",
        "- Văn bản trả lời kiến nghị sau giám sát của Ủy ban nhân dân xã Tân An – hạn",
        "- Báo cáo kết quả khắc phục sau kiểm tra, khảo sát của Ủy ban nhân dân xã Tân An",
    ):
        assert line in digest.text, line
    assert "Biên bản Hội nghị cán bộ" in digest.html

    # The answer and a follow-up reported done end their lateness; the conference stays.
    at = datetime(2023, 6, 20, 2, tzinfo=UTC)
    answered = RecommendationAnswered(
        **RECOMMENDATION, answer="Đã trả lời.", answered_at=at, on_time=False
    )
    await db.handle(answered, "ans-1")
    not_done = inspection_reported().model_copy(update={"done": False})
    await db.handle(not_done, "rep-1")
    assert sorted(await overdue_ids(db)) == ["o-a1", "o-c"]
    await db.handle(inspection_reported(), "rep-2")
    assert await overdue_ids(db) == ["o-c"]
    recorded = ConferenceRecorded(
        unit_path=PATH,
        conference_id="c-1",
        plan_id="p-1",
        unit_code="X80101",
        receiving_unit="H801",
        year=2023,
        held_on=date(2023, 6, 19),
        due_at=DUE_AT,
        on_time=False,
        recorded_at=datetime(2023, 6, 20, 3, tzinfo=UTC),
        obligation_id="o-c",
    )
    await db.handle(recorded, "conf-1")
    assert await overdue_ids(db) == []
