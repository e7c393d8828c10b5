"""Notices and letters end to end in a real browser, in Japanese: the demo board sends a 事務連絡 requiring 受領 with
an attachment to all its schools; two schools (principal of one, school office of another) open and acknowledge
it; the board sees the per-school status and reminds the rest. A homeroom teacher sends a trip-consent letter to
the class; the demo guardian reads it on a phone and consents; the teacher sees the reply with its proof of intent.

Screenshots of the main screens go to /tmp/shots/notices/."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, KomuServer, axe_violations, signed_in

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/notices")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
WIDE = {"width": 1280, "height": 900}


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _acknowledge(browser: Any, server: KomuServer, login: str, title: str, shot: str) -> None:
    with signed_in(browser, server, login, viewport=WIDE) as page:
        page.goto(f"{server.base_url}/notices/")
        expect(page.get_by_role("heading", name="受信した通知", level=1)).to_be_visible()
        row = page.get_by_role("row").filter(has_text=title)
        expect(row).to_contain_text("受領待ち")
        _shot(page, f"{shot}-inbox")
        row.get_by_role("link", name=title).click()
        expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
        expect(page.get_by_role("link", name="要項.pdf")).to_be_visible()
        # The attachment comes back from the attachments store decrypted, byte for byte.
        with page.expect_download() as download_info:
            page.get_by_role("link", name="要項.pdf").click()
        assert Path(download_info.value.path()).read_bytes() == PDF
        page.get_by_role("button", name="受領しました").click()
        expect(page.get_by_text("受領しました。送信元に伝わります。")).to_be_visible()
        expect(page.locator(".notice-receipt")).to_contain_text("受領済み")
        _shot(page, f"{shot}-acknowledged")


def test_board_notice_is_acknowledged_by_two_schools_and_the_rest_reminded(
    komu_server: KomuServer, browser: Any,
) -> None:
    title = "インフルエンザ様疾患の報告について"
    deadline = (datetime.date.today() + datetime.timedelta(days=7)).isoformat()
    with signed_in(browser, komu_server, "demo-board", viewport=WIDE) as board:
        board.goto(f"{komu_server.base_url}/notices/new/")
        expect(board.get_by_role("heading", name="通知を送る", level=1)).to_be_visible()
        board.get_by_role("radio", name="事務連絡").check()
        board.get_by_label("件名").fill(title)
        board.get_by_label("本文").fill("各校の状況を確認のうえ、受領の確認をお願いします。")
        expect(board.get_by_role("radio", name=re.compile("所管のすべての学校"))).to_be_checked()
        board.get_by_label("期限", exact=True).fill(deadline)
        board.get_by_label("受領の確認を求める").check()
        board.set_input_files("#id_attachments", files=[
            {"name": "要項.pdf", "mimeType": "application/pdf", "buffer": PDF}])
        _shot(board, "01-board-new-notice")
        assert axe_violations(board) == []
        board.get_by_role("button", name="送信する").click()
        expect(board.get_by_role("heading", name=title, level=1)).to_be_visible()
        expect(board.get_by_text(re.compile(r"を 5 か所に送りました"))).to_be_visible()
        expect(board.locator(".status-row--delivered")).to_have_count(5)
        notice_url = board.url

    _acknowledge(browser, komu_server, "demo-principal", title, "02-principal")
    _acknowledge(browser, komu_server, "demo-e2-admin", title, "03-e2-admin")

    with signed_in(browser, komu_server, "demo-board", viewport=WIDE) as board:
        board.goto(notice_url)
        expect(board.locator(".status-row--acknowledged")).to_have_count(2)
        expect(board.locator(".status-row--acknowledged").filter(has_text="こもれび市立第一小学校")).to_have_count(1)
        expect(board.locator(".status-row--acknowledged").filter(has_text="こもれび市立第二小学校")).to_have_count(1)
        expect(board.locator(".status-row--delivered")).to_have_count(3)
        _shot(board, "04-board-status")
        assert axe_violations(board) == []
        board.get_by_role("button", name="未確認の 3 か所に督促する").click()
        expect(board.get_by_text("3 か所に督促しました（画面とメールでお知らせします）。")).to_be_visible()
        expect(board.locator(".status-row--delivered").first).to_contain_text("1回")
        _shot(board, "05-board-reminded")
        board.goto(f"{komu_server.base_url}/notices/sent/")
        expect(board.get_by_role("row").filter(has_text=title)).to_contain_text("2 / 5")
        _shot(board, "05b-board-sent")

        # What still goes by fax is recorded in one click and counted for the month.
        board.goto(f"{komu_server.base_url}/notices/paper/")
        board.get_by_role("radio", name="FAX").check()
        board.get_by_role("radio", name="給食センター").check()
        board.get_by_label("文書の種類").fill("給食の数量変更")
        board.get_by_role("button", name="記録する").click()
        expect(board.get_by_text("記録しました。")).to_be_visible()
        expect(board.get_by_role("row").filter(has_text="給食の数量変更")).to_contain_text("FAX")
        _shot(board, "10-board-paper-sends")
        assert axe_violations(board) == []


def test_homeroom_teacher_sends_a_trip_consent_letter_and_sees_the_guardians_reply(
    komu_server: KomuServer, browser: Any,
) -> None:
    title = "遠足（こもれび森林公園）の参加について"
    with signed_in(browser, komu_server, "demo-homeroom", viewport=WIDE) as teacher:
        teacher.goto(f"{komu_server.base_url}/notices/letters/new/")
        expect(teacher.get_by_role("heading", name="お便りを送る", level=1)).to_be_visible()
        teacher.get_by_label("件名").fill(title)
        teacher.get_by_label("本文").fill("12月10日に遠足に出かけます。参加への同意をお願いします。")
        expect(teacher.get_by_role("radio", name="学級の保護者")).to_be_checked()
        teacher.get_by_role("radio", name="同意・不同意を返信してもらう").check()
        _shot(teacher, "06-homeroom-new-letter")
        assert axe_violations(teacher) == []
        teacher.get_by_role("button", name="送信する").click()
        expect(teacher.get_by_role("heading", name=title, level=1)).to_be_visible()
        letter_url = teacher.url

    with signed_in(browser, komu_server, "demo-guardian", viewport=PHONE, totp=False) as guardian:
        guardian.goto(f"{komu_server.base_url}/notices/my-letters/")
        card = guardian.locator(".letter-list .card").filter(has_text=title)
        expect(card).to_contain_text("お返事をお願いします")
        _shot(guardian, "07-guardian-letters")
        card.get_by_role("link").click()
        expect(guardian.get_by_role("heading", name=title, level=1)).to_be_visible()
        guardian.get_by_role("radio", name="参加に同意する").check()
        guardian.get_by_label("学校への連絡（任意）").fill("酔い止めを持たせます。")
        _shot(guardian, "08-guardian-reply")
        assert axe_violations(guardian) == []
        guardian.get_by_role("button", name="お返事を送る").click()
        expect(guardian.get_by_text("お返事を送りました。学校に届いています。")).to_be_visible()
        expect(guardian.locator(".letter-reply")).to_contain_text("送信済み: 参加に同意する")

    with signed_in(browser, komu_server, "demo-homeroom", viewport=WIDE) as teacher:
        teacher.goto(letter_url)
        row = teacher.get_by_role("row").filter(has_text="demo-guardian")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("参加に同意する")
        expect(row).to_contain_text("酔い止めを持たせます。")
        _shot(teacher, "09-homeroom-replies")
