"""照会・回答 end to end in a real browser, in Japanese: the demo board sends the weekly infectious-disease survey
from its ready-made template; the first elementary school's answer comes prefilled from its attendance (this
week's 出席停止 in the demo), goes through the vice-principal (教頭) and the principal (校長) and is submitted; the
board sees which schools are late on last month's survey, reminds them, and downloads the aggregate XLSX.

Screenshots of the main screens go to /tmp/shots/surveys/."""

from __future__ import annotations

import datetime
import io
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import KomuServer, axe_violations, sign_in, signed_in

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/surveys")
WEEKLY = "感染症の発生状況（週報）"
SCHOOL = "こもれび市立第一小学校"


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_board_sends_the_weekly_survey_a_school_answers_prefilled_and_the_board_reminds_and_downloads(
    komu_server: KomuServer, browser: Any, page: Any,
) -> None:
    base = komu_server.base_url
    sign_in(page, komu_server, "demo-board")

    # The board makes the weekly report from its template and sends it to every school.
    page.goto(f"{base}/surveys/")
    page.get_by_role("link", name=f"ひな形から作成: {WEEKLY}").click()
    page.get_by_role("button", name="作成する").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(WEEKLY)
    expect(page.get_by_role("table", name=re.compile("学校が回答する項目"))).to_contain_text("出席停止（インフルエンザ）の人数")
    _shot(page, "01-builder")
    page.get_by_role("link", name="発出へ進む").click()
    tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    page.get_by_label("回答期限（日）").fill(tomorrow)
    _shot(page, "02-publish")
    page.get_by_role("button", name="発出する").click()
    expect(page.get_by_text("照会を発出しました。学校に通知しました。")).to_be_visible()
    expect(page.get_by_role("table", name="学校ごとの回答状況")).to_contain_text(SCHOOL)
    progress_url = page.url
    assert not axe_violations(page)

    # The school office opens it: the figures are there already, from this week's register.
    with signed_in(browser, komu_server, "demo-admin") as admin:
        admin.goto(f"{base}/surveys/")
        admin.get_by_role("table", name=re.compile("届いた照会")).get_by_role("link", name=WEEKLY).click()
        flu = admin.get_by_label(re.compile(r"^出席停止（インフルエンザ）"))
        expect(flu).to_have_value("4")
        expect(admin.get_by_label(re.compile(r"^学級閉鎖の学級数"))).to_have_value("1")
        expect(admin.locator(".badge", has_text="自動入力").first).to_be_visible()
        _shot(admin, "03-answer-prefilled")
        assert not axe_violations(admin)
        # Asking for approval without the required 臨時休業 answer is refused next to the field.
        admin.get_by_role("button", name="決裁に回す").click()
        expect(admin.get_by_text("臨時休業（学年閉鎖・学校閉鎖）は必須です。入力してください。")).to_be_visible()
        admin.get_by_role("group", name=re.compile("^臨時休業")).get_by_label("なし").check()
        admin.get_by_role("button", name="決裁に回す").click()
        expect(admin.get_by_text("決裁に回しました。")).to_be_visible()
        expect(admin.locator(".details-list").first).to_contain_text("決裁中")

    title = f"照会回答: {WEEKLY}（{SCHOOL}）"
    for login, done in (("demo-vice-principal", "次の決裁者に回りました"), ("demo-principal", "決裁が完了しました")):
        with signed_in(browser, komu_server, login) as approver:
            approver.goto(f"{base}/approvals/")
            approver.get_by_role("table", name="決裁待ち").get_by_role("link", name=title).click()
            approver.wait_for_url(re.compile(r"/approvals/\d+/$"))
            approver.get_by_role("button", name="承認する（電子印を押す）").click()
            expect(approver.get_by_text(done)).to_be_visible()

    # The board sees it submitted, with the figures untouched.
    page.goto(progress_url)
    row = page.get_by_role("table", name="学校ごとの回答状況").get_by_role("row").filter(has_text=SCHOOL)
    expect(row).to_contain_text("提出済み")
    _shot(page, "04-progress")
    row.get_by_role("link", name=SCHOOL).click()
    expect(page.locator(".surveys-answer")).to_contain_text("自動入力のまま")

    # Last month's report: the late schools are marked; the board reminds them all.
    page.goto(f"{base}/surveys/")
    page.get_by_role("link", name=re.compile(r"^月例 出欠状況（\d+月分）")).click()
    late_rows = page.get_by_role("table", name="学校ごとの回答状況").get_by_role("row").filter(has_text="期限切れ")
    late = late_rows.count()
    assert late > 0
    page.get_by_role("button", name="未提出のすべての学校に督促する").click()
    expect(page.get_by_text(f"{late}校に督促しました（画面の通知とメール）。")).to_be_visible()
    _shot(page, "05-reminded")

    # The aggregate: summaries on screen and the XLSX, one row per school.
    page.goto(progress_url)
    page.get_by_role("link", name="集計を見る").click()
    numbers = page.get_by_role("table", name=re.compile("^数値の項目"))
    expect(numbers.get_by_role("row").filter(has_text="出席停止（インフルエンザ）").first).to_contain_text("4")
    _shot(page, "06-results")
    assert not axe_violations(page)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Excel（XLSX）でダウンロード").click()
    data = Path(download_info.value.path()).read_bytes()
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    headers = rows[0]
    mine = next(r for r in rows[1:] if r[1] == SCHOOL)
    assert mine[headers.index("状態")] == "提出済み"
    assert mine[headers.index("出席停止（インフルエンザ）")] == "4"
