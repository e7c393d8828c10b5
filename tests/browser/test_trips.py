"""校外活動 and traceable printing end to end in a real browser, in Japanese (issue 7, "Done means"): a homeroom
teacher sets up a two-day trip for their class (and a trip next week); a chaperone on a phone-sized screen sees
the contacts only during the window; the principal revokes that chaperone and the phone loses access on its next
request; the principal removes another chaperone, and the trip's page lists them under 解除した引率者 with who and
when; the class's contact list printed with a reason carries its watermark and serial; "紛失を報告" on that
serial lists exactly the class's pupils and the fields, and opens the drafted PPC report with its due dates."""

from __future__ import annotations

import datetime
import re
import subprocess
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, KomuServer, axe_violations, signed_in

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/trips")
HOMEROOM_CLASS = "小学1年 1組"
JST = ZoneInfo("Asia/Tokyo")


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _local(value: datetime.datetime) -> str:
    return value.astimezone(JST).strftime("%Y-%m-%dT%H:%M")


def _set_up_trip(page: Any, server: KomuServer, title: str, start: datetime.datetime,
                 end: datetime.datetime) -> int:
    page.goto(f"{server.base_url}/trips/new/")
    page.get_by_label("名称").fill(title)
    page.get_by_label("開始日時").fill(_local(start))
    page.get_by_label("終了日時").fill(_local(end))
    page.get_by_label(HOMEROOM_CLASS, exact=True).check()
    page.get_by_label(re.compile(r"（demo-teacher）")).check()
    page.get_by_label(re.compile(r"（demo-homeroom）")).check()
    page.get_by_role("button", name="登録する").click()
    page.wait_for_url(re.compile(r"/trips/\d+/$"))
    expect(page.get_by_text(f"校外活動「{title}」を登録しました。")).to_be_visible()
    return int(re.search(r"/trips/(\d+)/$", page.url).group(1))  # type: ignore[union-attr]


def test_trip_contacts_revocation_and_a_traceable_printed_list(browser: Any, komu_server: KomuServer,
                                                               tmp_path: Path) -> None:
    server = komu_server
    now = datetime.datetime.now(tz=JST).replace(second=0, microsecond=0)
    with signed_in(browser, server, "demo-homeroom") as teacher:
        # A two-day trip for the class, open now; and next week's outing, not open yet.
        trip_id = _set_up_trip(teacher, server, "修学旅行（日光）", now - datetime.timedelta(hours=1),
                               now + datetime.timedelta(days=2, hours=-1))
        expect(teacher.get_by_text("オフライン表示には対応していません", exact=False)).to_be_visible()
        participants = int(re.search(r"(\d+)名", teacher.locator("dd").nth(2).inner_text()).group(1))  # type: ignore[union-attr]
        assert participants >= 20
        _shot(teacher, "01_trip_detail")
        assert axe_violations(teacher) == []
        later_id = _set_up_trip(teacher, server, "遠足（来週）", now + datetime.timedelta(days=7),
                                now + datetime.timedelta(days=7, hours=8))

        # The class's contact list, printed with a reason (signed in just now: the re-authentication is fresh).
        teacher.goto(f"{server.base_url}/disclosures/print/")
        teacher.get_by_role("row", name=re.compile(HOMEROOM_CLASS)).get_by_role("link", name="印刷する").click()
        teacher.get_by_label(re.compile("緊急連絡先一覧")).check()
        teacher.get_by_label("印刷の目的").fill("避難訓練の名簿確認のため")
        _shot(teacher, "02_print_form")
        assert axe_violations(teacher) == []
        token = teacher.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
        response = teacher.request.post(teacher.url, form={
            "csrfmiddlewaretoken": token, "kind": "contacts", "reason": "避難訓練の名簿確認のため",
        }, headers={"Referer": teacher.url})
        assert response.status == 200 and response.headers["content-type"] == "application/pdf"
        serial = response.headers["x-komu-serial"]
        pdf = tmp_path / "contacts.pdf"
        pdf.write_bytes(response.body())
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        # The serial on every page, in the foot line and at the top margin. Read in content-stream order (-raw):
        # in layout mode the diagonal watermark is merged into the line at the top margin for some serials.
        raw = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True,
                             check=True).stdout
        per_page = [page.count(f"通し番号 {serial}") for page in raw.split("\f")[:-1]]
        assert per_page and min(per_page) >= 2, per_page
        assert "緊急連絡先一覧" in text and "048-021-7" in text and "避難訓練の名簿確認のため" in text
        subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", str(pdf),
                        str(SHOTS / "03_printed_contact_list")], check=True)

    with signed_in(browser, server, "demo-nurse") as nurse:
        # The school nurse releases one pupil's note for this trip (edited for the chaperones).
        nurse.goto(f"{server.base_url}/trips/{trip_id}/health/")
        first = nurse.locator("tbody tr").first
        first.get_by_label("引率者に公開する内容").fill("卵アレルギー（エピペン携帯・担任が保管）")
        first.get_by_role("button", name="公開する").click()
        expect(nurse.get_by_text("公開内容を保存しました。")).to_be_visible()
        expect(nurse.get_by_text(re.compile(r"公開中 1名"))).to_be_visible()
        _shot(nurse, "03b_nurse_release")
        assert axe_violations(nurse) == []

    with signed_in(browser, server, "demo-teacher", viewport=PHONE, mobile=True) as phone:
        phone.goto(f"{server.base_url}/trips/")
        phone.get_by_role("listitem").filter(has_text="修学旅行（日光）").get_by_role(
            "link", name="連絡先を表示する").click()
        expect(phone.get_by_role("heading", level=1, name="修学旅行（日光）")).to_be_visible()
        assert phone.locator("section").count() == participants
        expect(phone.get_by_text(re.compile(rf"{participants}名・表示は"))).to_be_visible()
        assert phone.locator("a[href^='tel:']").count() >= participants
        assert phone.locator("script").count() == 0
        expect(phone.get_by_text("卵アレルギー（エピペン携帯・担任が保管）", exact=False)).to_be_visible()
        _shot(phone, "04_phone_contacts")
        assert axe_violations(phone) == []
        # Next week's outing is not open yet: refused on the server.
        refused = phone.goto(f"{server.base_url}/trips/{later_id}/contacts/")
        assert refused is not None and refused.status == 403
        expect(phone.get_by_text("まだ始まっていません", exact=False)).to_be_visible()
        _shot(phone, "05_phone_before_window")

        with signed_in(browser, server, "demo-principal") as principal:
            principal.goto(f"{server.base_url}/trips/{trip_id}/")
            row = principal.get_by_role("row").filter(has_text="（demo-teacher）")
            row.get_by_label("取消の理由").fill("端末紛失")
            row.get_by_role("button", name="閲覧を取り消す").click()
            expect(principal.get_by_text("引率者の閲覧を取り消しました", exact=False)).to_be_visible()
            expect(principal.get_by_role("row").filter(has_text="（demo-teacher）")).to_contain_text("取消済み")
            _shot(principal, "06_principal_revoked")

            # The phone's very next request is refused.
            again = phone.goto(f"{server.base_url}/trips/{trip_id}/contacts/")
            assert again is not None and again.status == 403
            expect(phone.get_by_text("取り消されました", exact=False)).to_be_visible()
            assert phone.locator("a[href^='tel:']").count() == 0
            _shot(phone, "07_phone_revoked")

            # The principal replaces the homeroom teacher as chaperone: the trip's page keeps who was removed.
            principal.goto(f"{server.base_url}/trips/{trip_id}/edit/")
            principal.get_by_label(re.compile(r"（demo-homeroom）")).uncheck()
            principal.get_by_label(re.compile(r"（demo-nurse）")).check()
            principal.get_by_role("button", name="変更を保存する").click()
            principal.wait_for_url(re.compile(rf"/trips/{trip_id}/$"))
            removed = principal.locator("#removed-chaperones")
            expect(principal.get_by_role("heading", name="解除した引率者")).to_be_visible()
            expect(removed.get_by_role("row").filter(has_text="（demo-homeroom）")).to_contain_text(
                "（demo-principal）")
            expect(removed).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"))
            expect(principal.locator("#chaperones")).not_to_contain_text("（demo-homeroom）")
            _shot(principal, "07b_removed_chaperones")
            assert axe_violations(principal) == []

            # The printed list: outstanding in the principal's register; reported lost, it shows its persons.
            principal.goto(f"{server.base_url}/disclosures/")
            outstanding = principal.get_by_role("row").filter(has_text=serial)
            expect(outstanding).to_contain_text("避難訓練の名簿確認のため")
            _shot(principal, "08_register")
            assert axe_violations(principal) == []
            outstanding.get_by_role("button", name="紛失を報告").click()
            principal.wait_for_url(re.compile(rf"/disclosures/{serial}/"))
            expect(principal.get_by_text(f"{participants}名の個人データが記載されていました")).to_be_visible()
            assert principal.locator("#lost-persons tbody tr").count() == participants
            expect(principal.get_by_text("保護者電話番号", exact=False).first).to_be_visible()
            expect(principal.get_by_text("緊急連絡先（氏名・続柄・電話番号）", exact=False).first).to_be_visible()
            _shot(principal, "09_lost_report")
            assert axe_violations(principal) == []
            principal.get_by_role("link", name=re.compile("作成された事故報告")).click()
            expect(principal.get_by_text("個人情報保護委員会への報告期限")).to_be_visible()
            expect(principal.get_by_text(re.compile("速報")).first).to_be_visible()
            _shot(principal, "10_incident_due_dates")
