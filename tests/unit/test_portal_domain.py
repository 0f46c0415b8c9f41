"""The portal's pure parts: board statuses and rates, the chart, the CSV, the entry form's
reading and the refusals in Vietnamese, the session cookie, safe redirects, mail links."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.notify.adapters.templates import Links
from services.portal.adapters.cookies import SessionCodec
from services.portal.domain import board, entry
from services.portal.domain.session import Session
from services.portal.entrypoints.http.auth import safe_next

DUE = datetime(2023, 6, 9, 16, 59, 59, tzinfo=UTC)


def _status(code: str, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"Xã {code}",
        "kind": "commune",
        "district_code": None,
        "district_name": "Không thuộc cấp huyện",
        "state": state,
        "on_time": {"on_time": True, "late": False}.get(state),
        "submitted_at": "2023-06-01T03:00:00Z" if state != "missing" else None,
        "receipt_number": "BC-2023-000001" if state != "missing" else None,
        "latest_version": 0 if state == "missing" else 1,
        "review": extra.pop("review", ""),
        "returned": extra.pop("returned", False),
        **extra,
    }


CONSOLIDATION = {
    "status": [
        _status("A", "on_time"),
        _status("B", "late"),
        _status("C", "missing"),
        _status("D", "on_time", review="returned", returned=True),
        _status("E", "late", review="accepted"),
    ]
}


def test_every_status_has_its_words_and_returned_and_accepted_come_first() -> None:
    rows = board.rows_of(CONSOLIDATION)
    assert [r.status_label for r in rows] == [
        "Đúng hạn",
        "Nộp muộn",
        "Chưa nộp",
        "Trả lại",
        "Đã tiếp nhận (nộp muộn)",
    ]
    assert len({r.symbol for r in rows}) == 5  # never colour alone


def test_rates_count_on_time_by_the_first_submission() -> None:
    tally = board.tally(board.rows_of(CONSOLIDATION))
    assert (tally.expected, tally.received, tally.on_time) == (5, 4, 2)
    assert board.percent_text(tally.completeness_percent) == "80,0%"
    assert board.percent_text(tally.timeliness_percent) == "40,0%"
    assert board.percent_text(board.tally(board.rows_of({"status": []})).timeliness_percent) == (
        "0,0%"
    )


def test_filters_keep_only_what_is_asked() -> None:
    rows = board.rows_of(CONSOLIDATION)
    assert [r.code for r in rows if board.Filters(status="missing").keep(r)] == ["C"]
    assert [r.code for r in rows if board.Filters(kind="district").keep(r)] == []


def test_the_chart_draws_one_bar_per_day_and_the_deadline() -> None:
    rows = board.rows_of(CONSOLIDATION)
    svg = board.chart_svg(rows, DUE, date(2023, 6, 5))
    assert svg.count('class="bar"') == 1  # four first submissions, all on 01/06
    assert "01/06/2023: 4 báo cáo" in svg
    assert 'class="deadline"' in svg and "Hạn: hết ngày 09/06/2023" in svg
    assert "<title id=" in svg and "4 báo cáo nhận đến hết ngày 09/06/2023" in svg


def test_the_csv_opens_in_a_spreadsheet_with_vietnamese_intact() -> None:
    text = board.board_csv(board.rows_of(CONSOLIDATION))
    assert text.startswith("\ufeffMã đơn vị,Tên đơn vị")
    assert "Xã C,Cấp xã,Không thuộc cấp huyện,Chưa nộp" in text
    assert "10:00 01/06/2023" in text  # Vietnam time
    hostile = {"status": [{**_status("Z", "missing"), "name": "=HYPERLINK(1)"}]}
    assert ",'=HYPERLINK(1)," in board.board_csv(board.rows_of(hostile))  # text, no formula


CATALOGUE = {
    "indicators": [
        {"code": "complaints_received", "label": "Số đơn khiếu nại đã tiếp nhận", "unit": "đơn"},
        {"code": "complaints_resolved", "label": "Số đơn khiếu nại đã giải quyết", "unit": "đơn"},
    ],
    "not_more_than": [{"part": "complaints_resolved", "whole": "complaints_received"}],
}


def test_the_form_reads_numbers_and_refuses_what_is_not_one() -> None:
    fields = entry.indicator_fields(CATALOGUE)
    assert "không lớn hơn “Số đơn khiếu nại đã tiếp nhận”" in fields[1].rule
    form = {
        "narrative.3": "  Đã niêm yết.  ",
        "narrative.9": "not an area of the plan",
        "indicators.complaints_received": "1.200",
        "indicators.complaints_resolved": "ba",
    }
    typed = entry.read_form(form, ["3"], fields)
    values = entry.values_or_errors(typed, fields)
    assert typed.narrative == {"3": "Đã niêm yết."}
    assert values == {"complaints_received": 1200}
    assert typed.errors == {"indicators.complaints_resolved": "Phải là một số nguyên, ví dụ 12."}
    negative = entry.read_form({"indicators.complaints_received": "-2"}, [], fields)
    entry.values_or_errors(negative, fields)
    assert negative.errors == {"indicators.complaints_received": "Không được là số âm."}


def test_the_services_refusal_is_told_in_vietnamese_beside_its_field() -> None:
    fields = entry.indicator_fields(CATALOGUE)
    error = {
        "message": "the report's indicators are not valid",
        "errors": [
            {
                "field": "indicators.complaints_resolved",
                "message": "Số đơn khiếu nại đã giải quyết (5) exceeds số đơn … (3)",
            },
            {"field": "narrative.3", "message": "too long"},
        ],
    }
    found = entry.explain_refusal(
        error, fields, {"complaints_received": 3, "complaints_resolved": 5}
    )
    assert found["indicators.complaints_resolved"] == (
        "“Số đơn khiếu nại đã giải quyết” (5) không được lớn hơn "
        "“Số đơn khiếu nại đã tiếp nhận” (3)."
    )
    assert found["narrative.3"] == "Không hợp lệ: too long"
    assert entry.refusal_message(403, "no").startswith("Tài khoản của bạn không có quyền")


def test_the_session_cookie_cannot_be_read_forged_or_moved_to_another_key() -> None:
    key = b"0" * 43 + b"="
    codec = SessionCodec(key, max_age_seconds=3600)
    session = Session("qcdc_secret", "X001", "Xã Tân An", "submitter", "csrf-1")
    sealed = codec.dump(session)
    assert "qcdc_secret" not in sealed and "X001" not in sealed
    assert codec.load(sealed) == session
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    assert codec.load(tampered) is None
    assert SessionCodec(b"1" * 43 + b"=", 3600).load(sealed) is None
    assert codec.load("") is None and codec.load("garbage") is None


def test_sign_in_sends_back_only_to_this_site() -> None:
    assert safe_next("/theo-doi?plan_id=1") == "/theo-doi?plan_id=1"
    for hostile in ("//evil.example/x", "https://evil.example", "/\\evil.example", "", None):
        assert safe_next(hostile) == "/"


def test_mail_links_lead_to_the_portal_when_its_address_is_set() -> None:
    portal = Links("http://reports:8302", "http://plans:8301", "https://qcdc.example.vn/")
    assert portal.report("r1") == "https://qcdc.example.vn/bao-cao/r1"
    assert portal.obligation("o1") == "https://qcdc.example.vn/nghia-vu/o1"
    assert portal.plan("p1") == "https://qcdc.example.vn/cong-khai/ke-hoach/p1"
    assert portal.difficulties("p1") == "https://qcdc.example.vn/vuong-mac?plan_id=p1"
    api = Links("http://reports:8302", "http://plans:8301")
    assert api.report("r1") == "http://reports:8302/reports/r1"
    assert api.obligations() == "http://reports:8302/obligations"


def test_a_pages_path_parameter_never_steers_a_call_to_a_service() -> None:
    from services.portal.adapters.api import _safe_path

    assert _safe_path("/obligations/1b4e28ba-2fa1-11d2-883f-0016d3cca427/reports")
    assert _safe_path("/reports/r1/attachments/b%C3%A1o-c%C3%A1o.pdf")
    for hostile in ("/obligations/..", "/obligations/a?unit=X", "/units/a#b", "/plans/", "x"):
        assert not _safe_path(hostile), hostile


def test_an_event_names_the_board_it_changes() -> None:
    from services.portal.adapters.live import LiveHub, change_of

    body = (
        b'{"report_id": "r", "obligation": {"plan_id": "p", "schedule_key": "six_month",'
        b' "receiving_unit": "T89-SNV", "unit_code": "X001"}}'
    )
    change = change_of(
        "qcdc.v1.report.accepted.T89.X001", {"ce-type": "qcdc.report.accepted.v1"}, body
    )
    assert change is not None and change.unit_code == "X001"
    published = change_of(
        "qcdc.v1.consolidation.published.T89",
        {},
        b'{"plan_id": "p", "schedule_key": "six_month", "receiving_unit": "T89-SNV"}',
    )
    assert published is not None and published.unit_code == ""
    assert change_of("s", {}, b"not json") is None and change_of("s", {}, b"{}") is None

    hub = LiveHub()
    mine, other = hub.listen(("p", "six_month", "T89-SNV")), hub.listen(("p", "annual", "T89-SNV"))
    hub.publish(change)
    assert mine.get_nowait() == change and other.empty()
    hub.close()
    assert mine.get_nowait() is None  # the stream ends


def test_oversight_events_reach_the_boards_they_may_change() -> None:
    from services.portal.adapters.live import LiveHub, change_of

    answered = change_of(
        "qcdc.v1.recommendation.answered.T89.H801.X001",
        {"ce-type": "qcdc.recommendation.answered.v1"},
        b'{"recommendation_id": "k1", "addressed_unit": "X001", "registered_by_unit": "X001"}',
    )
    closed = change_of(
        "qcdc.v1.inspection.action_closed.T89.H801.X002",
        {},
        b'{"inspection_id": "i1", "action_id": "a1", "inspected_unit": "X002",'
        b' "inspecting_unit": "T89-SNV", "plan_id": "p"}',
    )
    assert answered is not None and answered.unit_code == "X001"
    assert closed is not None and closed.unit_code == "X002"

    hub = LiveHub()
    board, annual = hub.listen(("p", "six_month", "T89-SNV")), hub.listen(("p", "annual", "H801"))
    other_plan = hub.listen(("q", "six_month", "T89-SNV"))
    hub.publish(answered)  # no plan named: every board counts recommendations per unit
    assert board.get_nowait() == annual.get_nowait() == other_plan.get_nowait() == answered
    hub.publish(closed)  # an inspection of plan p: that plan's boards only
    assert board.get_nowait() == annual.get_nowait() == closed
    assert other_plan.empty()


def test_what_users_typed_is_escaped_in_every_page() -> None:
    from services.portal.entrypoints.http.common import templates

    hostile = '<script>alert("x")</script>'
    version = {
        "report_id": "r1",
        "version": 1,
        "receipt_number": "BC-2023-000001",
        "submitted_at": "2023-06-01T03:00:00Z",
        "on_time": True,
        "status": "returned",
        "review_reason": hostile,
        "reviewed_by_unit": "T89-SNV",
        "reviewed_at": "2023-06-02T03:00:00Z",
    }
    page = templates.get_template("versions.html.j2").render(versions=[version], names={})
    assert hostile not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
