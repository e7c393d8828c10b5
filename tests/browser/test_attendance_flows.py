"""Attendance end to end in a real browser, in Japanese: a guardian's fever report reaching the homeroom teacher,
the morning register with two latecomers, and a month's register sealed by the vice-principal and the principal.

Each test signs its people in itself (staff with password + TOTP) so that it does not depend on the others' order;
they share the session's demo server, so each one picks data the others do not touch (the guardian's child, other
pupils, the previous month)."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import KomuServer, axe_violations, sign_in, signed_in

pytestmark = pytest.mark.browser

REGISTER_URL = re.compile(r"/attendance/classes/(\d+)/(\d{4}-\d{2}-\d{2})/")
HOMEROOM_CLASS = "小学1年 1組"


def _open_todays_register(page: Any, server: KomuServer) -> tuple[int, datetime.date]:
    """The homeroom teacher's 出欠 goes straight to today's register (school time, JST); on a day without lessons
    the page offers the previous school day."""
    page.goto(f"{server.base_url}/attendance/")
    page.wait_for_url(REGISTER_URL)
    if page.get_by_text("この日は授業日ではありません").is_visible():
        page.get_by_role("link", name="前の授業日を開く").click()
        page.wait_for_url(REGISTER_URL)
    match = REGISTER_URL.search(page.url)
    assert match
    return int(match.group(1)), datetime.date.fromisoformat(match.group(2))


def test_guardian_reports_a_fever_absence_and_the_homeroom_teacher_sees_it(
    komu_server: KomuServer, browser: Any, page: Any,
) -> None:
    sign_in(page, komu_server, "demo-guardian", totp=False)
    page.goto(f"{komu_server.base_url}/attendance/guardian/report/")
    # The demo guardian has a child at each of two schools: the report goes to the primary school.
    school_switch = page.get_by_role("navigation", name="学校の切り替え")
    if school_switch.count():
        school_switch.get_by_role("link", name="こもれび市立第一小学校").click()
    expect(page.get_by_text("こもれび市立第一小学校への連絡です。").or_(
        page.get_by_text(re.compile("今日の連絡の受付は .* で終わりました")))).to_be_visible()

    page.get_by_role("group", name=re.compile("^お子さま")).get_by_label(re.compile(HOMEROOM_CLASS)).check()
    # The form offers the coming school days and ticks the first one it still accepts: today before the school's
    # cut-off (08:00 JST by default), otherwise the next school day.
    chosen_day = page.locator("input[name=date]:checked")
    expect(chosen_day).to_have_count(1)
    day = chosen_day.get_attribute("value")
    assert day
    if page.get_by_text(re.compile("今日の連絡の受付は .* で終わりました")).is_visible():
        expect(page.get_by_role("group", name=re.compile("^日付")).get_by_label(re.compile("^今日"))).to_have_count(0)
    page.get_by_role("group", name=re.compile("^連絡の種類")).get_by_label("欠席").check()
    page.get_by_role("group", name=re.compile("^理由")).get_by_label("発熱").check()
    page.get_by_role("group", name=re.compile("^症状")).get_by_label("発熱").check()
    page.get_by_role("button", name="確認画面へ進む").click()

    expect(page.get_by_role("heading", name="送信内容の確認", level=1)).to_be_visible()
    expect(page.locator(".sent-summary")).to_contain_text("発熱")
    page.get_by_role("button", name="この内容で送信する").click()

    expect(page.get_by_role("heading", name="連絡を受け付けました")).to_be_visible()
    receipt = page.locator(".report-list .card").first
    expect(receipt).to_contain_text("受付番号")
    expect(receipt).to_contain_text("欠席（発熱）")
    receipt_no = receipt.locator(".receipt-no").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}", receipt_no), receipt_no
    child_name = receipt.locator(".card__title").inner_text().strip()
    given_name = child_name.split()[-1]

    with signed_in(browser, komu_server, "demo-homeroom") as teacher:
        teacher.goto(f"{komu_server.base_url}/attendance/reports/?date={day}")
        expect(teacher.get_by_role("heading", name="保護者からの連絡", level=1)).to_be_visible()
        report_row = teacher.get_by_role("row").filter(has_text=given_name).filter(has_text="欠席（発熱）")
        expect(report_row).to_have_count(1)
        expect(report_row).to_contain_text("送信済み（学校の確認待ち）")

        # The report is in that day's register already, marked as coming from the guardian.
        teacher.goto(f"{komu_server.base_url}/attendance/?day={day}")
        teacher.wait_for_url(re.compile(rf"/attendance/classes/\d+/{day}/"))
        pupil = teacher.locator("li.entry-row").filter(has=teacher.locator(".entry-row__report")).filter(
            has_text=given_name)
        expect(pupil).to_have_count(1)
        expect(pupil).to_have_attribute("data-kind", "absent")
        expect(pupil.locator(".entry-row__report")).to_contain_text("保護者連絡")
        expect(pupil.get_by_role("button", name="欠席", exact=True)).to_have_attribute("aria-pressed", "true")
        expect(pupil.locator(".entry-row__state")).to_contain_text("保護者連絡")

        teacher.goto(f"{komu_server.base_url}/attendance/reports/?date={day}")
        report_row = teacher.get_by_role("row").filter(has_text=given_name).filter(has_text="欠席（発熱）")
        report_row.get_by_role("button", name=re.compile("^確認した")).click()
        expect(report_row).to_contain_text("学校が確認しました")

    page.goto(f"{komu_server.base_url}/attendance/guardian/history/")
    card = page.locator(".report-list .card").filter(has_text=receipt_no)
    expect(card).to_have_count(1)
    expect(card).to_contain_text("学校が確認しました")


def test_homeroom_teacher_marks_two_latecomers_and_confirms_the_register(
    komu_server: KomuServer, page: Any,
) -> None:
    sign_in(page, komu_server, "demo-homeroom")
    _open_todays_register(page, komu_server)

    rows = page.locator("li.entry-row")
    expect(rows.first).to_be_visible()
    # Two pupils marked present without a guardian's report: the other tests' pupils and reports stay untouched.
    candidates = [
        rows.nth(i).get_attribute("id") for i in range(rows.count())
        if rows.nth(i).get_attribute("data-kind") == "present"
        and rows.nth(i).locator(".entry-row__report").count() == 0
    ]
    assert len(candidates) >= 2, "the demo class must have pupils marked present"
    latecomers = candidates[-2:]

    for row_id in latecomers:
        row = page.locator(f"li#{row_id}")
        row.get_by_role("button", name="遅刻", exact=True).click()
        # Saved once the server's answer replaced the row: its state line says 遅刻 and the spinner is gone.
        expect(row.locator(".entry-row__state")).to_have_text(re.compile("^遅刻"))
        expect(row).not_to_have_class(re.compile(r"\bis-saving\b"))
        expect(row).not_to_have_class(re.compile(r"\bis-failed\b"))

    page.reload()
    for row_id in latecomers:
        row = page.locator(f"li#{row_id}")
        expect(row).to_have_attribute("data-kind", "late")
        expect(row.get_by_role("button", name="遅刻", exact=True)).to_have_attribute("aria-pressed", "true")

    page.locator("[data-confirm]").click()
    expect(page.locator("#entry-status")).to_contain_text("確定済み")
    page.reload()
    expect(page.locator("#entry-status")).to_contain_text("確定済み")
    for row_id in latecomers:
        expect(page.locator(f"li#{row_id}")).to_have_attribute("data-kind", "late")
    assert axe_violations(page) == []


def test_month_register_goes_through_vice_principal_and_principal_and_seals_verify(
    komu_server: KomuServer, browser: Any, page: Any,
) -> None:
    sign_in(page, komu_server, "demo-homeroom")
    class_id, today = _open_todays_register(page, komu_server)
    previous = today.replace(day=1) - datetime.timedelta(days=1)
    month_url = f"{komu_server.base_url}/attendance/monthly/{class_id}/{previous.year}/{previous.month}/"

    page.goto(month_url)
    title = page.locator("h1").inner_text().strip()
    assert HOMEROOM_CLASS in title and f"{previous.month}月" in title, title
    expect(page.locator(".details-list")).to_contain_text("入力中")
    page.get_by_role("button", name="この月の出席簿を提出する").click()
    expect(page.get_by_text("出席簿を提出しました。決裁が始まります。")).to_be_visible()
    expect(page.locator(".details-list")).to_contain_text("決裁中")

    for login, done in (("demo-vice-principal", "次の決裁者に回りました"), ("demo-principal", "決裁が完了しました")):
        with signed_in(browser, komu_server, login) as approver:
            approver.goto(f"{komu_server.base_url}/")
            approver.get_by_role("link", name="決裁", exact=True).first.click()
            approver.wait_for_url(re.compile(r"/approvals/$"))
            approver.get_by_role("table", name="決裁待ち").get_by_role("link", name=title).click()
            approver.wait_for_url(re.compile(r"/approvals/\d+/$"))
            approver.get_by_role("button", name="承認する（電子印を押す）").click()
            expect(approver.get_by_text(done)).to_be_visible()
            if login == "demo-principal":
                approver.goto(month_url)
                expect(approver.locator(".details-list")).to_contain_text("承認済み")
                expect(approver.get_by_role("img", name=re.compile("の印影$"))).to_have_count(2)
                approver.get_by_role("button", name="電子印を検証").click()
                verdicts = approver.locator("#seal-verdicts .badge")
                expect(verdicts).to_have_count(2)
                expect(verdicts).to_have_text(["有効", "有効"])

    # The command exits non-zero on any bad seal (KomuServer.komu checks the exit code).
    output = komu_server.komu("approvals", "verify")
    assert "無効 0 件" in output, output
