"""The portal in a real browser (Debian's Chromium through Playwright): the whole path of a
report from a commune's entry to the public page, with an accessibility check (axe-core) and
a screenshot of every page on the way, and the same work with JavaScript disabled."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import System

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WAIT_MS = 20_000
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


class Pages:
    """Checks every page it is shown with axe-core and keeps its screenshot."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.checked: list[str] = []

    async def check(self, page: Any, name: str) -> None:
        await page.screenshot(path=str(self.folder / f"{len(self.checked):02d}-{name}.png"))
        await page.add_script_tag(path=str(AXE))
        result = await page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})"
        )
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(n["target"]) for n in v["nodes"][:3])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not serious, f"{name} {page.url}: " + "; ".join(serious)
        self.checked.append(name)


async def sign_in(page: Any, system: System, token: str, pages: Pages | None = None) -> None:
    await page.goto(system.portal_url + "/")
    assert "/dang-nhap" in page.url  # not signed in: sent to the sign-in page
    if pages is not None:
        await pages.check(page, "dang-nhap")
    await page.get_by_label("Mã truy cập (API token) của đơn vị").fill(token)
    await page.get_by_role("button", name="Đăng nhập").click()
    await page.wait_for_url(system.portal_url + "/")


async def test_a_report_from_entry_to_the_public_page(
    system: System, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    pages = Pages(tmp_path / "screenshots")
    commune_ctx = await browser.new_context(viewport=PHONE, bypass_csp=True, locale="vi-VN")
    reviewer_ctx = await browser.new_context(viewport=DESKTOP, bypass_csp=True, locale="vi-VN")
    commune, reviewer = await commune_ctx.new_page(), await reviewer_ctx.new_page()
    obligation = system.obligations["X001"]

    # The commune signs in and opens the form.
    await sign_in(commune, system, system.tokens["commune"], pages)
    await pages.check(commune, "viec-cua-don-vi")
    await commune.get_by_role("link", name=re.compile("Nộp báo cáo")).first.click()
    await commune.wait_for_url(f"**/nop/{obligation}")
    await pages.check(commune, "bieu-mau")

    # A draft survives a lost connection: typed, then the page is loaded again.
    narrative = commune.get_by_label("Kết quả thực hiện nội dung 3")
    await narrative.fill("Đã tổ chức hội nghị, niêm yết công khai tại trụ sở.")
    await expect(commune.locator("#draft-status")).to_contain_text("Bản nháp đã lưu")
    await commune.reload()
    await expect(narrative).to_have_value("Đã tổ chức hội nghị, niêm yết công khai tại trụ sở.")
    await expect(commune.locator("#draft-status")).to_contain_text("Đã khôi phục bản nháp")

    # One indicator rule broken: the rule's message shows as the user types…
    received = commune.get_by_label("Số đơn khiếu nại đã tiếp nhận")
    resolved = commune.get_by_label("Số đơn khiếu nại đã giải quyết")
    await received.fill("3")
    await resolved.fill("5")
    rule_message = "“Số đơn khiếu nại đã giải quyết” (5) không được lớn hơn"
    await expect(commune.locator("#err-indicators-complaints_resolved")).to_contain_text(
        rule_message
    )
    await expect(resolved).to_have_attribute("aria-invalid", "true")
    # …and again from the reports service's 422 when sent anyway.
    answer = await _submit(commune)
    assert answer == 422
    await expect(commune.locator("#form-error")).to_contain_text("Báo cáo chưa hợp lệ")
    await expect(commune.locator("#err-indicators-complaints_resolved")).to_contain_text(
        rule_message
    )
    await pages.check(commune, "bieu-mau-loi")
    await resolved.fill("2")
    assert await _submit(commune) == 200
    await commune.wait_for_url("**/bien-nhan/**")
    receipt = (await commune.locator("#receipt-number").inner_text()).strip()
    assert re.fullmatch(r"[A-Z]+-2023-\d{6}", receipt), receipt
    await pages.check(commune, "bien-nhan")

    # The reviewer watches the board (it stays open, never reloaded) and reviews.
    await sign_in(reviewer, system, system.tokens["reviewer"])
    board = await reviewer_ctx.new_page()
    await board.goto(
        f"{system.portal_url}/theo-doi?plan_id={system.plan_id}&schedule_key=six_month"
    )
    await expect(board.locator("#board-live")).to_have_attribute("data-live-connected", "1")
    await board.evaluate("window.qcdcNotReloaded = true")
    await expect(board.locator("#unit-X001")).to_contain_text("Đúng hạn")
    await expect(board.locator("#unit-X002")).to_contain_text("Chưa nộp")
    await expect(board.locator("#rate-completeness")).to_have_text("33,3%")
    assert await board.locator("svg.chart rect.bar").count() == 1
    await pages.check(board, "bang-theo-doi")

    await reviewer.goto(system.portal_url + "/hop-thu")
    await pages.check(reviewer, "hop-thu")
    await reviewer.get_by_role("link", name=re.compile("Xem xét")).first.click()
    await expect(reviewer.locator("#report-status")).to_have_text("Chờ xem xét")
    await pages.check(reviewer, "xem-xet")
    reason = "Thiếu số liệu tiếp công dân; đề nghị bổ sung."
    await reviewer.get_by_label("Lý do trả lại (bắt buộc khi trả lại)").fill(reason)
    await reviewer.get_by_role("button", name="Trả lại để hoàn thiện").click()
    await expect(reviewer.locator("#report-status")).to_have_text("Trả lại để hoàn thiện")
    await expect(board.locator("#unit-X001")).to_contain_text("Trả lại", timeout=WAIT_MS)

    # The commune sees the reason and sends a revision.
    await commune.goto(system.portal_url + "/")
    await commune.get_by_role("link", name=re.compile("Nộp lại")).first.click()
    await expect(commune.locator("#return-reason")).to_contain_text(reason)
    await pages.check(commune, "nop-lai")
    await commune.get_by_label("Số buổi tiếp công dân").fill("12")
    assert await _submit(commune) == 200
    await commune.wait_for_url("**/bien-nhan/**")
    await expect(commune.locator(".receipt dd").nth(2)).to_have_text("2")

    # The reviewer accepts the revision; the open board follows without a reload.
    await reviewer.goto(system.portal_url + "/hop-thu")
    await reviewer.get_by_role("link", name=re.compile("Xem xét")).first.click()
    await reviewer.get_by_role("button", name="Tiếp nhận báo cáo").click()
    await expect(reviewer.locator("#report-status")).to_have_text("Đã tiếp nhận")
    await expect(board.locator("#unit-X001")).to_contain_text("Đã tiếp nhận", timeout=WAIT_MS)
    assert await board.evaluate("window.qcdcNotReloaded === true")
    await expect(board.locator("#live-status")).to_contain_text("Đã cập nhật")
    await pages.check(board, "bang-theo-doi-cap-nhat")

    # The public page shows it without any sign-in, and may be cached.
    public_ctx = await browser.new_context(viewport=PHONE, bypass_csp=True)
    public = await public_ctx.new_page()
    answer_public = await public.goto(system.portal_url + "/cong-khai")
    assert answer_public is not None
    assert "public" in (answer_public.headers.get("cache-control") or "")
    await pages.check(public, "cong-khai")
    await public.get_by_role("link", name=re.compile("^Kế hoạch thực hiện")).click()
    await expect(public.locator("#pub-X001")).to_contain_text("Đã tiếp nhận (đúng hạn)")
    await expect(public.locator("#pub-X002")).to_contain_text("Chưa nộp")
    await pages.check(public, "cong-khai-ke-hoach")

    for context in (commune_ctx, reviewer_ctx, public_ctx):
        await context.close()
    assert len(list((tmp_path / "screenshots").glob("*.png"))) == len(pages.checked) >= 12


async def _submit(page: Any) -> int:
    """Sends the entry form; the status of the page that answers."""
    async with page.expect_navigation() as navigation:
        await page.get_by_role("button", name="Nộp báo cáo").click()
    response = await navigation.value
    # After a 303 the browser lands on the receipt with 200; a refusal stays with its 422.
    return int(response.status) if response is not None else 0


async def test_submission_and_review_work_without_javascript(system: System, browser: Any) -> None:
    from playwright.async_api import expect

    options = {"java_script_enabled": False, "viewport": PHONE}
    commune_ctx = await browser.new_context(**options)
    reviewer_ctx = await browser.new_context(**options)
    commune, reviewer = await commune_ctx.new_page(), await reviewer_ctx.new_page()
    obligation = system.obligations["X002"]

    await sign_in(commune, system, system.tokens["commune2"])
    await commune.goto(f"{system.portal_url}/nop/{obligation}")
    await commune.get_by_label(
        "Số kiến nghị của Mặt trận Tổ quốc và các tổ chức chính trị - xã hội đã nhận"
    ).fill("1")
    await commune.get_by_label(
        "Số kiến nghị của Mặt trận Tổ quốc và các tổ chức chính trị - xã hội đã trả lời"
    ).fill("4")
    assert await _submit(commune) == 422
    await expect(commune.locator("#err-indicators-front_recommendations_answered")).to_contain_text(
        "không được lớn hơn"
    )
    await commune.get_by_label(
        "Số kiến nghị của Mặt trận Tổ quốc và các tổ chức chính trị - xã hội đã trả lời"
    ).fill("1")
    signed = {"name": "bao-cao-6-thang.pdf", "mimeType": "application/pdf", "buffer": PDF}
    await commune.get_by_label("Tệp đính kèm (văn bản báo cáo đã ký, nếu có)").set_input_files(
        signed
    )
    assert await _submit(commune) == 200
    await expect(commune.locator("#attachment-status")).to_have_text(
        "Đã đính kèm tệp bao-cao-6-thang.pdf."
    )
    receipt = (await commune.locator("#receipt-number").inner_text()).strip()

    await sign_in(reviewer, system, system.tokens["reviewer"])
    await reviewer.goto(system.portal_url + "/hop-thu")
    row = reviewer.locator("tr", has_text=receipt)
    await row.get_by_role("link", name=re.compile("Xem xét")).click()
    await reviewer.get_by_label("Lý do trả lại (bắt buộc khi trả lại)").fill("Bổ sung số liệu.")
    await reviewer.get_by_role("button", name="Trả lại để hoàn thiện").click()
    await expect(reviewer.locator("#report-status")).to_have_text("Trả lại để hoàn thiện")

    await commune.goto(f"{system.portal_url}/nghia-vu/{obligation}")
    await expect(commune.locator(".reason-text")).to_have_text("Bổ sung số liệu.")
    await commune.get_by_role("link", name="Sửa và nộp lại").click()
    note = {"name": "ghi-chu.txt", "mimeType": "text/plain", "buffer": b"not a report"}
    await commune.get_by_label("Tệp đính kèm (văn bản báo cáo đã ký, nếu có)").set_input_files(note)
    assert await _submit(commune) == 200  # the report is received; the file is refused
    await expect(commune.locator("#attachment-status")).to_contain_text(
        "Tệp đính kèm chưa được nhận: loại tệp không được nhận"
    )

    await reviewer.goto(system.portal_url + "/hop-thu")
    await reviewer.get_by_role("link", name=re.compile("Xem xét")).first.click()
    await reviewer.get_by_role("button", name="Tiếp nhận báo cáo").click()
    await expect(reviewer.locator("#report-status")).to_have_text("Đã tiếp nhận")

    # A form posted without its CSRF token is refused.
    answer = await reviewer.request.post(
        f"{system.portal_url}/dang-xuat", form={"csrf": "forged"}, max_redirects=0
    )
    assert answer.status == 403
    for context in (commune_ctx, reviewer_ctx):
        await context.close()


async def test_the_other_pages_work_and_are_accessible(
    system: System, browser: Any, tmp_path: Path
) -> None:
    """Unit page, consolidations (publish, downloads), difficulties (raise, answer), report
    requests, the delivery log and a published consolidation's public page."""
    from playwright.async_api import expect

    pages = Pages(tmp_path / "screenshots")
    options = {"viewport": DESKTOP, "bypass_csp": True, "accept_downloads": True}
    commune_ctx = await browser.new_context(**options)
    reviewer_ctx = await browser.new_context(**options)
    admin_ctx = await browser.new_context(**options)
    commune, reviewer = await commune_ctx.new_page(), await reviewer_ctx.new_page()
    admin = await admin_ctx.new_page()
    await sign_in(commune, system, system.tokens["commune"])
    await sign_in(reviewer, system, system.tokens["reviewer"])
    await sign_in(admin, system, system.tokens["admin"])

    await commune.goto(system.portal_url + "/theo-doi")  # the board's choice of report
    await expect(commune.get_by_role("link", name=re.compile("Báo cáo kết quả"))).to_be_visible()
    await pages.check(commune, "chon-bang-theo-doi")
    await commune.goto(f"{system.portal_url}/nghia-vu/{system.obligations['X001']}")
    await expect(commune.locator(".versions li")).to_have_count(2)
    await pages.check(commune, "nghia-vu")
    missing = await commune.goto(system.portal_url + "/khong-co-trang-nay")
    assert missing is not None and missing.status == 404
    await pages.check(commune, "loi-404")
    await commune.goto(system.portal_url + "/don-vi/X001")
    await expect(commune.locator("h1")).to_have_text("Ủy ban nhân dân xã Tân An")
    await pages.check(commune, "don-vi")

    await commune.goto(system.portal_url + "/vuong-mac")
    await commune.get_by_label("Vướng mắc, khó khăn").fill("Chưa rõ cách tính số buổi tiếp dân.")
    await commune.get_by_role("button", name="Gửi", exact=True).click()
    await expect(commune.locator("article")).to_contain_text("Chưa rõ cách tính")
    await reviewer.goto(system.portal_url + "/vuong-mac")
    await reviewer.get_by_label("Trả lời").fill("Tính mỗi buổi tiếp theo lịch đã niêm yết.")
    await reviewer.get_by_role("button", name="Gửi trả lời").click()
    await expect(reviewer.locator(".answer")).to_contain_text("Tính mỗi buổi tiếp")
    # Answers are a thread: a second one is kept beside the first, and the raiser reads both.
    await reviewer.get_by_label("Trả lời thêm").fill("Buổi tiếp đột xuất cũng được tính.")
    await reviewer.get_by_role("button", name="Gửi trả lời").click()
    await expect(reviewer.locator(".answer")).to_have_count(2)
    await pages.check(reviewer, "vuong-mac")
    await commune.goto(system.portal_url + "/vuong-mac")
    await expect(commune.locator(".answer").nth(1)).to_contain_text("Buổi tiếp đột xuất")
    await expect(commune.get_by_role("button", name="Gửi trả lời")).to_have_count(0)

    await reviewer.goto(
        f"{system.portal_url}/tong-hop?plan_id={system.plan_id}&schedule_key=six_month"
    )
    async with reviewer.expect_download() as download:
        await reviewer.get_by_role("link", name="bảng tính XLSX").click()
    assert (await download.value).suggested_filename.endswith(".xlsx")
    await reviewer.get_by_role("button", name="Công bố bản tổng hợp này").click()
    await expect(reviewer.get_by_role("status")).to_contain_text("Đã công bố")
    await pages.check(reviewer, "tong-hop")
    await reviewer.get_by_role("link", name="trang công khai", exact=True).first.click()
    await expect(reviewer.locator("h1")).to_contain_text("lần 1")
    await pages.check(reviewer, "cong-khai-tong-hop")

    await reviewer.goto(system.portal_url + "/yeu-cau")
    await reviewer.get_by_label("Chủ đề").fill("Tiếp công dân quý I")
    await reviewer.get_by_label("Từ ngày").fill("2023-01-01")
    await reviewer.get_by_label("Đến ngày").fill("2023-03-31")
    await reviewer.get_by_label("Hạn: trước ngày").fill("2023-04-10")
    await reviewer.get_by_label("Ủy ban nhân dân xã Đông Hưng").check()
    await reviewer.get_by_label("Số buổi tiếp công dân").check()
    await reviewer.get_by_role("button", name="Gửi yêu cầu").click()
    await expect(reviewer.get_by_role("status")).to_contain_text("Đã gửi yêu cầu")
    await expect(reviewer.locator("main")).to_contain_text("Tiếp công dân quý I")
    await pages.check(reviewer, "yeu-cau")

    await admin.goto(system.portal_url + "/nhat-ky-gui")
    await expect(admin.locator("h1")).to_have_text("Nhật ký gửi thư và webhook")
    await pages.check(admin, "nhat-ky-gui")
    # The board's list as CSV, filtered: the units that have not reported.
    exported = await admin.request.get(
        f"{system.portal_url}/theo-doi?plan_id={system.plan_id}&schedule_key=six_month"
        "&receiving_unit=T89-SNV&status=missing&format=csv"
    )
    lines = (await exported.text()).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("Mã đơn vị,Tên đơn vị")
    assert [line.split(",")[0] for line in lines[1:]] == ["X003"]
    for context in (commune_ctx, reviewer_ctx, admin_ctx):
        await context.close()


async def test_a_unit_records_its_staff_conference_with_its_minutes(
    system: System, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    pages = Pages(tmp_path / "screenshots")
    context = await browser.new_context(viewport=DESKTOP, bypass_csp=True, locale="vi-VN")
    page = await context.new_page()
    await sign_in(page, system, system.tokens["commune2"])
    await page.get_by_role("link", name=re.compile("Ghi nhận hội nghị")).click()
    await page.wait_for_url("**/hoi-nghi/**")
    await expect(page.locator("#conference-state")).to_have_text("Chưa tổ chức")
    await pages.check(page, "hoi-nghi")
    await page.get_by_label("Ngày tổ chức hội nghị").fill("2023-01-20")
    await page.get_by_label("Số người tham dự (không bắt buộc)").fill("25")
    await page.get_by_label(re.compile("^Biên bản hội nghị")).set_input_files(
        files=[{"name": "bien-ban.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await page.get_by_role("button", name="Ghi nhận đã tổ chức hội nghị").click()
    await expect(page.locator("#conference-state")).to_contain_text(
        "Đã tổ chức ngày 20/01/2023 (đúng hạn), 25 người tham dự"
    )
    await expect(page.locator("#attachment-status")).to_contain_text("bien-ban.pdf")
    await pages.check(page, "hoi-nghi-da-ghi-nhan")
    await page.goto(f"{system.portal_url}/cong-khai/ke-hoach/{system.plan_id}")
    await expect(page.locator("#pub-conference-X002")).to_contain_text("Đã tổ chức đúng hạn")
    await expect(page.locator("#pub-conference-X003")).to_contain_text("Chưa tổ chức")
    await pages.check(page, "cong-khai-hoi-nghi")
    await context.close()


async def test_an_inspection_followed_up_and_a_recommendation_answered(
    system: System, browser: Any, tmp_path: Path
) -> None:
    """Home Affairs inspects a commune and requires an action; the commune reports it done on
    the follow-up page, Home Affairs closes it from its list, the public page shows it; the
    commune answers a recommendation on its answer page. Every page passes axe-core."""
    import httpx
    from playwright.async_api import expect

    reports = system.services["reports"].url
    async with httpx.AsyncClient(base_url=reports) as api:
        reviewer = {"Authorization": f"Bearer {system.tokens['reviewer']}"}
        scheduled = await api.post(
            "/inspections",
            headers=reviewer,
            json={
                "kind": "survey",
                "topic": "Khảo sát công khai tài chính xã",
                "inspected_units": ["X003"],
                "planned_start": "2023-01-20",
                "planned_end": "2023-01-31",
            },
        )
        assert scheduled.status_code == 201, scheduled.text
        findings = {
            "inspected_unit": "X003",
            "conducted_on": "2023-01-30",
            "conclusion": "Còn hạn chế về công khai.",
            "findings": [
                {
                    "content": "Chưa niêm yết dự toán.",
                    "actions": [
                        {"content": "Niêm yết dự toán tại nhà văn hóa.", "due_on": "2023-03-15"}
                    ],
                }
            ],
        }
        recorded = await api.post(
            f"/inspections/{scheduled.json()['id']}/findings", headers=reviewer, json=findings
        )
        assert recorded.status_code == 201, recorded.text
        registered = await api.post(
            "/recommendations",
            headers={"Authorization": f"Bearer {system.tokens['commune3']}"},
            json={
                "source_organisation": "Ban Thường trực Ủy ban MTTQ Việt Nam xã Đông Hưng",
                "topic": "Thu, chi quỹ phòng, chống thiên tai",
                "content": "Đề nghị công khai thu, chi quỹ.",
                "addressed_unit": "X003",
                "received_on": "2023-01-30",
            },
        )
        assert registered.status_code == 201, registered.text

    pages = Pages(tmp_path / "screenshots")
    commune_ctx = await browser.new_context(viewport=PHONE, bypass_csp=True, locale="vi-VN")
    commune = await commune_ctx.new_page()
    await sign_in(commune, system, system.tokens["commune3"])
    # The work list's button (the title beside it links to the obligation's page).
    await commune.locator('a.button[href^="/khac-phuc/"]').click()
    await commune.wait_for_url("**/khac-phuc/**")
    await expect(commune.locator("#action-state")).to_have_text("Chưa khắc phục xong")
    await pages.check(commune, "khac-phuc")
    await commune.get_by_label("Báo cáo kết quả khắc phục").fill("Đã niêm yết tại 5/5 thôn.")
    await commune.get_by_label(re.compile("^Đã khắc phục xong")).check()
    await commune.get_by_role("button", name="Gửi báo cáo khắc phục").click()
    await expect(commune.locator("#action-state")).to_contain_text("chờ xem xét")
    await pages.check(commune, "khac-phuc-da-bao-cao")

    reviewer_ctx = await browser.new_context(viewport=DESKTOP, bypass_csp=True, locale="vi-VN")
    inspector = await reviewer_ctx.new_page()
    await sign_in(inspector, system, system.tokens["reviewer"])
    await inspector.get_by_role("link", name="Kiểm tra, khắc phục").click()
    await inspector.wait_for_url("**/kiem-tra")
    await pages.check(inspector, "kiem-tra")
    await inspector.get_by_role("link", name=re.compile("^Xem xét")).click()
    await inspector.wait_for_url("**/khac-phuc/**")
    await pages.check(inspector, "khac-phuc-xem-xet")
    await inspector.get_by_role("button", name="Xác nhận đã khắc phục xong").click()
    await expect(inspector.locator("#action-state")).to_have_text("Đã khắc phục xong (đúng hạn)")
    await inspector.goto(
        f"{system.portal_url}/theo-doi?plan_id={system.plan_id}&schedule_key=six_month"
    )
    await expect(inspector.locator("#inspection-X003")).to_contain_text(
        "Ủy ban nhân dân xã Đông Hưng"
    )
    await pages.check(inspector, "theo-doi-kiem-tra")

    await commune.goto(system.portal_url + "/")
    await commune.locator('a.button[href^="/kien-nghi/"]').click()
    await commune.wait_for_url("**/kien-nghi/**")
    await expect(commune.locator("#recommendation-state")).to_have_text("Chờ trả lời")
    await pages.check(commune, "kien-nghi")
    await commune.get_by_label("Nội dung văn bản trả lời").fill("Xã đã công khai tại trụ sở.")
    await commune.get_by_role("button", name="Gửi văn bản trả lời").click()
    await expect(commune.locator("#recommendation-state")).to_contain_text("Đã trả lời (đúng hạn)")
    await pages.check(commune, "kien-nghi-da-tra-loi")

    await commune.goto(system.portal_url + "/cong-khai")
    table = commune.locator("#public-inspection-table")
    await expect(table).to_contain_text("Ủy ban nhân dân xã Đông Hưng")
    await expect(table).to_contain_text("Khảo sát")
    await expect(commune.locator("#public-recommendation-table")).to_contain_text(
        "Thu, chi quỹ phòng, chống thiên tai"
    )
    await pages.check(commune, "cong-khai-kiem-tra")
    for context in (commune_ctx, reviewer_ctx):
        await context.close()


async def test_sign_in_with_the_identity_provider(system: System, browser: Any) -> None:
    """Authorization code with PKCE: the provider signs the user in, the portal exchanges the
    code with its verifier, and the services accept the access token as the user's own."""
    from playwright.async_api import expect

    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    await page.goto(system.portal_url + "/theo-doi")
    assert "/dang-nhap" in page.url
    await page.get_by_role("link", name=re.compile("tài khoản định danh")).click()
    await page.wait_for_url(system.portal_url + "/theo-doi")  # back where it was going
    await expect(page.locator(".who")).to_contain_text("Ủy ban nhân dân xã Đông Hưng")
    await page.goto(system.portal_url + "/")
    # The services accept the access token as X003's own: its obligations are listed.
    await expect(page.get_by_role("link", name=re.compile("Nộp báo cáo")).first).to_be_visible()
    assert system.idp.refused == []

    # A callback that is not the answer to this browser's own sign-in is refused.
    forged = await page.goto(system.portal_url + "/dang-nhap/oidc/ve?code=stolen&state=guess")
    assert forged is not None and forged.status == 401
    await expect(page.get_by_role("alert")).to_contain_text("không hợp lệ")
    await context.close()


async def test_refusals_over_plain_http(system: System, tmp_path: Path) -> None:
    """No browser needed: a bad token, a public page without its read-only token."""
    import httpx

    from services.portal.entrypoints.http import create_portal_app
    from services.portal.settings import PortalSettings

    services = system.services
    settings = PortalSettings(
        plans_url=services["plans"].url,
        reports_url=services["reports"].url,
        notify_url=services["notify"].url,
        data_dir=str(tmp_path),
    )
    app = create_portal_app(settings)  # no QCDC_PUBLIC_TOKEN
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
        form = await client.get("/dang-nhap")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        refused = await client.post(
            "/dang-nhap", data={"csrf": csrf.group(1), "token": "qcdc_not-a-real-token"}
        )
        public = await client.get("/cong-khai")
    assert refused.status_code == 401
    assert "Mã truy cập không hợp lệ, đã hết hạn hoặc đã bị thu hồi" in refused.text
    assert "qcdc_session" not in refused.headers.get("set-cookie", "")
    assert public.status_code == 503 and "QCDC_PUBLIC_TOKEN" in public.text
    assert (tmp_path / "portal.secret").stat().st_mode & 0o777 == 0o600
