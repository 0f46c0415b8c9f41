"""Who gets what, end to end: plans, reports (with its deadline clock) and notify in-process
on a real nats-server, notify e-mailing a real SMTP server. A plan is issued, a unit reports,
the clock reminds, misses and urges; each message reaches the right people in Vietnamese,
a subtree subscription and a daily digest get theirs, and a failed delivery is redelivered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.natsd import NatsServer
from services.notify.adapters.mail import SmtpConfig, SmtpMailer, build_email
from shared.clock import ManualClock
from shared.vntime import ICT
from tests.integration import clocked
from tests.integration.clocked import H801, H801_HEAD, H802, SNV, STP
from tests.integration.test_plan_lifecycle import PROVINCE_PLAN, UNITS
from tests.support import Received, SmtpInbox, eventually

CONTACTS = {"T89": {"focal_email": "vanphong@anbinh.gov.vn"}, **clocked.CONTACTS}
WATCHER = "theodoi@tanphu.gov.vn"  # a subtree subscription of the district H801
DIGEST = "tonghop@snv.anbinh.gov.vn"  # Home Affairs' morning summary
SUBJECT_TAIL = "Báo cáo 6 tháng của Ủy ban nhân dân huyện Tân Phú theo Kế hoạch 123/KH-UBND"


def same_subject(mail: Received, expected: str) -> bool:
    return mail.subject == expected


def ict(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2023, month, day, hour, minute, second, tzinfo=ICT).astimezone(UTC)


System = clocked.ClockedSystem


@pytest.fixture
async def system(nats_server: NatsServer, database_urls: dict[str, str]) -> AsyncIterator[System]:
    inbox = clocked.started_inbox()
    clock = ManualClock(ict(5, 20, 9))
    refuse_at_once = {"delivery_max_attempts": 1}  # a refused mail fails at once
    async with clocked.clocked_services(
        nats_server.url, database_urls, clock, inbox, notify=refuse_at_once
    ) as running:
        yield System(running["plans"], running["reports"], running["notify"], clock, inbox)
    inbox.stop()


async def _subscribe(notify: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await notify.post("/subscriptions", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _issue_plan(plans: httpx.AsyncClient) -> dict[str, Any]:
    return await clocked.issue_with_contacts(plans, UNITS, CONTACTS, PROVINCE_PLAN)


async def _obligation(reports: httpx.AsyncClient, unit: str) -> str:
    async def probe() -> list[Any]:
        found: list[Any] = (await reports.get("/obligations", params={"unit": unit})).json()
        return [o["id"] for o in found if o["schedule_key"] == "six_month"]

    found: list[str] = await eventually(probe)
    return found[0]


async def test_who_gets_what_from_plan_to_urging(system: System) -> None:
    inbox = system.inbox
    async with system.notify.client() as notify:
        watcher = await _subscribe(
            notify,
            unit_code="H801",
            include_subtree=True,
            event_types=["deadline.missed", "qcdc.deadline.approaching.v1"],
            channel="email",
            address=WATCHER,
        )
        await _subscribe(
            notify,
            unit_code="T89",
            include_subtree=True,
            event_types=["deadline.missed"],
            channel="email",
            address=DIGEST,
            digest=True,
        )
        listed = (await notify.get("/subscriptions", params={"unit": "H801"})).json()
    assert [s["id"] for s in listed] == [watcher["id"]]
    assert watcher["event_types"] == ["qcdc.deadline.missed.v1", "qcdc.deadline.approaching.v1"]

    # A plan: every assignee's focal person is told.
    async with system.plans.client() as plans, system.reports.client() as reports:
        await _issue_plan(plans)
        h802_obligation = await _obligation(reports, "H802")
        await _obligation(reports, "H801")
        await _obligation(reports, "T89-STP")
        for address in (SNV, STP, H801, H802):
            mail = await inbox.one(address, "[Kế hoạch mới] 123/KH-UBND")
        assert "Chế độ báo cáo:" in mail.text
        assert "gửi Sở Nội vụ trước ngày 10/06/2023 (ngày cuối cùng: 09/06/2023)" in mail.text

        # A report from H802: a receipt to it at once; Home Affairs, which receives it, reads
        # it in its next daily digest (it receives every unit's reports).
        submitted = await reports.post(
            "/reports", json={"obligation_id": h802_obligation, "unit_code": "H802"}
        )
    assert submitted.status_code == 201, submitted.text
    number = submitted.json()["receipt_number"]
    receipt = await inbox.one(H802, "[Xác nhận]")
    assert same_subject(
        receipt,
        f"[Xác nhận] Đã nhận báo cáo 6 tháng của Ủy ban nhân dân huyện Long Hưng – số {number}",
    )
    assert "Thời điểm tiếp nhận: 09:00 20/05/2023" in receipt.text
    snv_digest = await inbox.one(SNV, "Tổng hợp thông báo")  # today's, 07:00 has passed
    assert "[Đã nhận báo cáo] Báo cáo 6 tháng của Ủy ban nhân dân huyện Long Hưng" in (
        snv_digest.text
    )
    assert f"– số {number} – đúng hạn" in snv_digest.text
    assert inbox.to(SNV, "[Đã nhận báo cáo]") == []

    # Seven days before the last on-time day: a reminder to the units still owing, none to
    # H802. Sở Tư pháp's mailbox refuses it: the delivery fails.
    inbox.refused = {STP}
    assert sorted(await system.at(ict(6, 2, 8))) == ["H801:approaching-7", "T89-STP:approaching-7"]
    reminder = await inbox.one(H801, "[Nhắc hạn]")
    assert same_subject(reminder, f"[Nhắc hạn] {SUBJECT_TAIL} – hạn 09/06/2023")
    assert "Hạn nộp: trước ngày 10/06/2023 (ngày cuối cùng: 09/06/2023)" in reminder.text
    assert "đúng hạn là 23:59 09/06/2023 (còn 5 ngày làm việc, không kể hôm nay)" in reminder.text
    assert "Kính gửi: Ủy ban nhân dân huyện Tân Phú," in reminder.text
    assert (await inbox.one(WATCHER, "[Nhắc hạn]")).subject == reminder.subject
    logged = await system.deliveries(unit="H801", event_type="deadline.approaching")
    assert {d["recipient"]: d["subject"] for d in logged} == {
        H801: f"[Nhắc hạn] {SUBJECT_TAIL} – hạn 09/06/2023",
        WATCHER: f"[Nhắc hạn] {SUBJECT_TAIL} – hạn 09/06/2023",
    }
    failed = await eventually(lambda: system.deliveries(status="failed"))
    assert [(d["recipient"], d["attempts"]) for d in failed] == [(STP, 1)]
    assert "Mailbox full" in failed[0]["last_error"]
    assert inbox.to(H802, "[Nhắc hạn]") == []

    # Redelivered once the mailbox accepts again; attempts are kept, a sent one refuses.
    inbox.refused = set()
    async with system.notify.client() as notify:
        again = await notify.post(f"/deliveries/{failed[0]['key']}/redeliver")
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "pending"
        stp_reminder = await inbox.one(STP, "[Nhắc hạn]")
        assert stp_reminder.message_id == f"<{failed[0]['key']}@qcdc>"
        sent = await eventually(lambda: _sent(notify, failed[0]["key"]))
        assert sent["attempts"] == 2
        conflict = await notify.post(f"/deliveries/{failed[0]['key']}/redeliver")
        assert conflict.status_code == 409
        missing = await notify.post("/deliveries/nope/redeliver")
        assert missing.status_code == 404

    # 10/06 00:00:01 ICT: late. The unit and the receiving unit are told; the subtree
    # subscriber gets H801's, not Sở Tư pháp's; the digest subscriber's are held.
    assert sorted(await system.at(ict(6, 10, 0, 0, 1))) == ["H801:missed-0", "T89-STP:missed-0"]
    overdue = await inbox.one(H801, "[Quá hạn]")
    assert same_subject(overdue, f"[Quá hạn] {SUBJECT_TAIL} – hạn 09/06/2023")
    assert "Đã hết hạn nộp báo cáo 6 tháng của Ủy ban nhân dân huyện Tân Phú" in overdue.text
    to_snv = await inbox.one(SNV, "[Quá hạn]", count=2)
    assert "Đề nghị Sở Nội vụ theo dõi, đôn đốc" in to_snv.text
    await inbox.one(WATCHER, "[Quá hạn]")
    held = await eventually(lambda: _count(system, 2, status="held"))
    assert {d["recipient"] for d in held} == {DIGEST}

    # 07:30 ICT: Home Affairs' digest, one mail with both.
    system.clock.set(ict(6, 10, 7, 30))
    digest = await inbox.one(DIGEST, "Tổng hợp thông báo")
    assert same_subject(digest, "Tổng hợp thông báo ngày 10/06/2023 (2 thông báo)")
    assert "Quá hạn, đôn đốc (2):" in digest.text
    assert "[Quá hạn] Báo cáo 6 tháng của Sở Tư pháp" in digest.text
    assert f"[Quá hạn] {SUBJECT_TAIL}" in digest.text
    assert await system.deliveries(status="held") == []

    # Urging: the 3rd working day after the deadline, then the 6th, escalated to the head.
    assert "H801:urge-1" in await system.at(ict(6, 14, 8))
    urging = await inbox.one(H801, "[Đôn đốc lần 1]")
    assert same_subject(urging, f"[Đôn đốc lần 1] {SUBJECT_TAIL} – hạn 09/06/2023")
    assert "tính đến ngày 14/06/2023, hệ thống vẫn chưa nhận được" in urging.text
    assert "H801:urge-2" in await system.at(ict(6, 19, 8))
    escalated = f"[Đôn đốc lần 2] {SUBJECT_TAIL} – hạn 09/06/2023 – báo cáo Thủ trưởng đơn vị"
    to_head = await inbox.one(H801_HEAD, "[Đôn đốc lần 2]")
    assert same_subject(to_head, escalated)
    assert to_head.text.startswith("Kính gửi: Thủ trưởng Ủy ban nhân dân huyện Tân Phú,")
    assert same_subject(await inbox.one(H801, "[Đôn đốc lần 2]"), escalated)
    assert inbox.to(H802, "[Quá hạn]") == [] and inbox.to(WATCHER, "[Đôn đốc") != []

    # Exactly one message per recipient and event; the log filters by subtree.
    ids = [m.message_id for m in inbox.items]
    assert len(ids) == len(set(ids))
    h801_log = await system.deliveries(unit="H801", event_type="deadline.missed")
    assert {d["unit_path"][1] for d in h801_log} == {"H801"}
    assert {d["recipient"] for d in h801_log} >= {H801, H801_HEAD, SNV, WATCHER, DIGEST}
    assert escalated in {d["subject"] for d in h801_log if d["recipient"] == H801_HEAD}


async def _sent(notify: httpx.AsyncClient, key: str) -> dict[str, Any] | None:
    found: dict[str, Any] = (await notify.get(f"/deliveries/{key}")).json()
    return found if found["status"] == "sent" else None


async def _count(system: System, count: int, **params: str) -> list[dict[str, Any]]:
    found = await system.deliveries(**params)
    return found if len(found) == count else []


async def test_subscriptions_are_checked_and_never_show_their_secret(system: System) -> None:
    async with system.notify.client() as notify:
        no_allowlist = await notify.post(
            "/subscriptions",
            json={
                "unit_code": "T89",
                "include_subtree": True,
                "event_types": ["report.submitted"],
                "channel": "webhook",
                "address": "https://hooks.example.vn/qcdc",
                "secret": "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            },
        )
        short_name = await notify.post(
            "/subscriptions",
            json={
                "unit_code": "T89",
                "event_types": ["report.submitted", "report.eaten"],
                "channel": "email",
                "address": "x@y.vn",
            },
        )
        created = await _subscribe(
            notify,
            unit_code="H801",
            event_types=["report.returned"],
            channel="email",
            address="theodoi@tanphu.gov.vn",
        )
        deleted = await notify.delete(f"/subscriptions/{created['id']}")
        missing = await notify.delete("/subscriptions/nope")
        listed = (await notify.get("/subscriptions")).json()
    assert no_allowlist.status_code == 422
    assert no_allowlist.json()["error"]["field"] == "address"
    assert "allowlist" in no_allowlist.json()["error"]["errors"][0]["message"]
    assert short_name.status_code == 422
    assert "report.eaten" in short_name.json()["error"]["errors"][0]["message"]
    assert deleted.status_code == 200 and deleted.json()["active"] is False
    assert missing.status_code == 404
    assert [(s["id"], s["active"]) for s in listed] == [(created["id"], False)]
    assert all("secret" not in s for s in listed)


async def test_long_vietnamese_subjects_survive_the_wire(smtp_inbox: SmtpInbox) -> None:
    subject = (
        "[Đã nhận báo cáo] Báo cáo 6 tháng của Ủy ban nhân dân huyện Long Hưng"
        " – số BC-2023-000001 – đúng hạn"
    )
    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=smtp_inbox.port, mail_from="a@qcdc.vn"))
    await mailer.send(
        build_email(
            key="k", mail_from="a@qcdc.vn", to="b@qcdc.vn", subject=subject, text="x", html="x"
        )
    )
    (mail,) = await smtp_inbox.wait_for(lambda items: len(items) >= 1)
    assert mail.subject == subject
