"""学齢簿, 入学者名簿 and 転学 end to end in a real browser, in Japanese, without typing a name (issue 3, "Done
means"): the board officer imports a CP932 学齢簿 exported from Excel (令和 dates, 髙/﨑), sees the dry run flag
exactly the two broken rows, imports the corrected file and sends the rosters to the three elementary schools; the
first school's administrator accepts its roster, lets Komu balance the entrants over next year's classes and sees
出席番号 in 五十音順; a pupil transfers from the first to the second elementary school with signed PDFs.

The browser-test server runs without a task worker: after each enqueue the test runs `komu db_worker --batch`
itself, as the worker of `make run` would. The transfer picks a pupil no other browser test touches (not
demo-homeroom's 小学1年 1組, not demo-guardian's children)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import KomuServer, axe_violations, sign_in, signed_in

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/rosters")
FIRST_SCHOOL = "こもれび市立第一小学校"
SECOND_SCHOOL = "こもれび市立第二小学校"
THIRD_SCHOOL = "こもれび市立若葉台小学校"
ELEMENTARY = (FIRST_SCHOOL, SECOND_SCHOOL, THIRD_SCHOOL)
# A class of the first school that the other browser tests leave alone.
TRANSFER_CLASS = re.compile(r"小学4年\s*2組")
SMALL_KANA = str.maketrans("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ")


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _no_axe_violations(page: Any) -> None:
    violations = axe_violations(page)
    assert violations == [], violations


def _run_tasks(server: KomuServer) -> None:
    """What the background worker of `make run` does: the queued 学齢簿 checks and imports."""
    server.komu("db_worker", "--batch", "--no-startup-delay", "--no-reload", "--queue-name", "*")


def _run_tasks_and_wait_for_result(page: Any, server: KomuServer) -> None:
    """Run the queued task; the page, polling its progress every second, then reloads itself with the result
    (HX-Refresh). Waiting for that reload keeps the next step off the page that is about to go away."""
    with page.expect_event("load", timeout=120_000):
        _run_tasks(server)
    expect(page.locator("#import-progress progress")).to_have_count(0)


def _gojuon(reading: str) -> str:
    """A reading as a dictionary orders it: without 濁点・半濁点, small kana full size."""
    bare = "".join(c for c in unicodedata.normalize("NFD", reading) if c not in "\u3099\u309a")
    return unicodedata.normalize("NFC", bare).translate(SMALL_KANA)


def _upload(page: Any, server: KomuServer, path: Path) -> None:
    page.goto(f"{server.base_url}/")
    page.get_by_role("navigation", name="メインメニュー").get_by_role("link", name="学齢簿の取込").click()
    page.get_by_role("link", name="ファイルを取り込む").first.click()
    expect(page.get_by_role("heading", name="学齢簿のファイルを取り込む", level=1)).to_be_visible()
    page.get_by_label("学齢簿のファイル").set_input_files(str(path))
    page.get_by_role("button", name="内容を確認する").click()
    page.wait_for_url(re.compile(r"/rosters/gakureibo/imports/[0-9a-f-]+/$"))
    # The dry run waits for the worker: its progress bar says so, politely, until the worker has run.
    progress = page.locator("#import-progress")
    expect(progress.get_by_role("status")).to_contain_text("順番を待っています")
    expect(progress.locator("progress")).to_be_visible()
    _run_tasks_and_wait_for_result(page, server)


def test_board_imports_the_gakureibo_sends_rosters_and_a_school_places_its_entrants(
    komu_server: KomuServer, browser: Any, page: Any, tmp_path: Path,
) -> None:
    flawed = tmp_path / "学齢簿_新1年生_excel.csv"
    fixed = tmp_path / "学齢簿_新1年生_excel_修正.csv"
    komu_server.komu("demo", "gakureibo", "--out", str(flawed), "--flawed", "--encoding", "cp932")
    komu_server.komu("demo", "gakureibo", "--out", str(fixed), "--encoding", "cp932")
    text = fixed.read_bytes().decode("cp932")
    assert "令和" in text and ("髙" in text or "﨑" in text)

    sign_in(page, komu_server, "demo-board")

    # 1. The flawed file: the dry run flags exactly lines 4 and 9, in Japanese, and nothing is imported.
    _upload(page, komu_server, flawed)
    expect(page.get_by_role("heading", name="エラー 2 件")).to_be_visible()
    expect(page.get_by_text("エラーがあるため、このファイルは取り込めません")).to_be_visible()
    errors = page.get_by_role("table", name="エラーの一覧").locator("tbody tr")
    expect(errors).to_have_count(2)
    found = []
    for i in range(2):
        cells = [c.strip() for c in errors.nth(i).locator("td").all_inner_texts()]
        found.append((cells[1], cells[2]))
        assert cells[0] == flawed.name, cells
        assert re.search(r"[ぁ-んァ-ヶ一-龠]", cells[5]) and "ください" in cells[5], cells  # says what to do
    assert found == [("4", "生年月日"), ("9", "就学予定校コード")], found
    expect(page.get_by_role("button", name="取り込む", exact=True)).to_have_count(0)
    _shot(page, "01-import-dry-run-errors")
    _no_axe_violations(page)

    # 2. The corrected file: warnings at most, then 取り込む; the counts of what was applied.
    _upload(page, komu_server, fixed)
    expect(page.get_by_role("heading", name=re.compile("^エラー"))).to_have_count(0)
    counts = page.locator("section[aria-labelledby=counts-title]")
    expect(counts).to_contain_text("新しく載る子ども")
    expect(counts.locator("dd").nth(0)).to_have_text("97")
    _shot(page, "02-import-dry-run-clean")
    _no_axe_violations(page)
    page.get_by_role("button", name="取り込む", exact=True).click()
    expect(page.get_by_text("取り込みを始めました")).to_be_visible()
    _run_tasks_and_wait_for_result(page, komu_server)
    expect(page.get_by_text(re.compile(r"新規 97 人、変更 0 人、変更なし 0 人を学齢簿に反映しました"))).to_be_visible()
    _shot(page, "03-import-applied")
    _no_axe_violations(page)

    # 3. The rosters to the three elementary schools, after a confirmation step.
    page.get_by_role("link", name="学齢簿を開く").click()
    _shot(page, "04-board-entries")
    page.get_by_role("navigation", name="学齢簿の操作").get_by_role("link", name="名簿の送付").click()
    for school in ELEMENTARY:
        expect(page.get_by_label(school)).to_be_checked()
    _shot(page, "05-board-send")
    page.get_by_role("button", name="確認へ進む").click()
    expect(page.get_by_role("heading", name="送付内容の確認")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("3 校に、合計 97 名の名簿を送付します")
    _shot(page, "06-board-send-confirm")
    page.get_by_role("button", name="送付する", exact=True).click()
    expect(page.get_by_text("送付しました：新しい名簿 3 校（97 名）")).to_be_visible()
    status = page.get_by_role("table", name="学校ごとの状況")
    expect(status.locator("tbody tr")).to_have_count(3)
    for school in ELEMENTARY:
        row = status.get_by_role("row").filter(has_text=school)
        expect(row.locator("td").nth(0)).to_have_text("送付済み（未開封）")
        expect(row.locator("td").nth(2)).to_contain_text("令和")
    _shot(page, "07-board-status-sent")
    _no_axe_violations(page)

    # 4. The first school's administrator is told on the home page, opens the roster and accepts it.
    with signed_in(browser, komu_server, "demo-admin") as admin:
        todo = admin.get_by_role("link", name=re.compile("入学者名簿が届いています"))
        expect(todo).to_be_visible()
        _shot(admin, "08-school-home")
        todo.click()
        admin.get_by_role("table", name="届いた名簿").get_by_role("link", name=re.compile("入学者名簿$")).click()
        admin.wait_for_url(re.compile(r"/rosters/inbox/\d+/$"))
        expect(admin.get_by_role("heading", name=re.compile("名簿（48 名）"))).to_be_visible()
        _shot(admin, "09-school-roster")
        _no_axe_violations(admin)

        page.reload()
        expect(status.get_by_role("row").filter(has_text=FIRST_SCHOOL)).to_contain_text("開封済み")
        expect(page.get_by_role("status").first).to_contain_text("開封 1 校")

        admin.get_by_role("link", name="受け入れる").click()
        expect(admin.get_by_text("児童 48 名")).to_be_visible()
        _shot(admin, "10-school-roster-accept")
        admin.get_by_role("button", name="48 名を受け入れる").click()
        expect(admin.get_by_text(re.compile("受け入れました：児童 48 名"))).to_be_visible()

        page.reload()
        expect(status.get_by_role("row").filter(has_text=FIRST_SCHOOL)).to_contain_text("受入済み")

        # 5. 学級編制: the automatic proposal balances the classes; applying it numbers them in kana order.
        admin.get_by_role("navigation", name="メインメニュー").get_by_role("link", name="学級編制").click()
        expect(admin.get_by_role("heading", name=re.compile("小学1年の学級編制待ち 48 名"))).to_be_visible()
        _shot(admin, "11-placement-pending")
        _no_axe_violations(admin)
        admin.get_by_role("link", name="自動で振り分ける（案を表示）").first.click()
        proposal = admin.get_by_role("table", name=re.compile("振り分け案"))
        expect(proposal).to_be_visible()
        joining = [int(n) for n in proposal.locator("tbody tr td:nth-child(3)").all_inner_texts()]
        assert sum(joining) == 48, joining
        _shot(admin, "12-placement-proposal")
        _no_axe_violations(admin)
        admin.get_by_role("button", name="この案で学級に入れる").click()
        expect(admin.get_by_role("heading", name=re.compile("小学1年の学級編制待ち 0 名"))).to_be_visible()
        _shot(admin, "13-placement-done")
        _no_axe_violations(admin)

        first_class = admin.locator(".placement__class").filter(
            has=admin.get_by_role("heading", name="小学1年 1組", exact=True))
        first_class.get_by_role("link", name="名簿を見る").click()
        expect(admin.get_by_role("heading", name=re.compile("1組 の名簿"), level=1)).to_be_visible()
        rows = admin.get_by_role("table", name=re.compile("在籍")).locator("tbody tr")
        count = rows.count()
        assert count >= 15, count
        numbers = [int(rows.nth(i).locator("td").first.inner_text()) for i in range(count)]
        assert numbers == list(range(1, count + 1)), numbers
        readings = [tuple(rows.nth(i).locator("rt").all_inner_texts()) for i in range(count)]
        assert all(len(r) == 2 and all(r) for r in readings), readings
        keys = [(_gojuon(f), _gojuon(g), f, g) for f, g in readings]
        assert keys == sorted(keys), readings
        _shot(admin, "14-class-list-kana-order")
        _no_axe_violations(admin)


def test_a_pupil_transfers_between_two_demo_schools_with_signed_pdfs(
    komu_server: KomuServer, browser: Any, page: Any,
) -> None:
    sign_in(page, komu_server, "demo-principal")
    page.goto(f"{komu_server.base_url}/students/")
    picker = page.get_by_label("学級", exact=True)
    option = next(o for o in picker.locator("option").all_inner_texts() if TRANSFER_CLASS.search(o))
    picker.select_option(label=option)
    page.get_by_role("button", name="表示").click()
    pupils = page.get_by_role("table", name=re.compile("在籍")).locator("tbody tr")
    expect(pupils.first).to_be_visible()
    before = pupils.count()
    pupil_row = pupils.nth(before - 1)
    kana = " ".join(pupil_row.locator("rt").all_inner_texts())
    pupil_row.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/students/[0-9a-f-]+/$"))
    class_url = None
    for link in page.get_by_role("navigation", name=re.compile("パンくず|現在地")).get_by_role("link").all():
        href = link.get_attribute("href") or ""
        if "class=" in href:
            class_url = href
    page.get_by_role("link", name="転学の手続き").click()
    expect(page.get_by_role("heading", name="転学の手続き", level=1)).to_be_visible()
    page.get_by_label(re.compile("転学先の学校（Komu")).check()
    destination = page.get_by_label("転学先の学校", exact=True)
    destination.select_option(label=next(
        o for o in destination.locator("option").all_inner_texts() if o.startswith(SECOND_SCHOOL)))
    page.get_by_label("転学の事由").fill("転居のため")
    _shot(page, "20-transfer-new")
    _no_axe_violations(page)
    page.get_by_role("button", name="証明して送付する").click()
    expect(page.get_by_text("転学の書類を証明して送付しました。")).to_be_visible()
    expect(page.locator(".badge-row")).to_contain_text("送付済み")
    _shot(page, "21-transfer-sent")

    with signed_in(browser, komu_server, "demo-e2-principal") as receiver:
        todo = receiver.get_by_role("link", name=re.compile("転入の書類が1件届いています"))
        expect(todo).to_be_visible()
        todo.click()
        incoming = receiver.get_by_role("region", name="届いた転入の書類", exact=True)
        expect(incoming).to_contain_text(kana)
        _shot(receiver, "22-transfer-inbox")
        _no_axe_violations(receiver)
        incoming.get_by_role("row").filter(has_text=kana).get_by_role("link").click()
        receiver.wait_for_url(re.compile(r"/rosters/transfers/[^/]+/$"))
        documents = receiver.locator("section[aria-labelledby=docs-title] li")
        expect(documents).to_have_count(3)
        for i in range(3):
            expect(documents.nth(i)).to_contain_text("電子署名: 有効")
        expect(documents).to_contain_text(["指導要録", "在学証明書", "教科用図書給与証明書"])
        _shot(receiver, "23-transfer-detail")
        _no_axe_violations(receiver)

        href = documents.filter(has_text="在学証明書").get_by_role("link").get_attribute("href")
        response = receiver.request.get(f"{komu_server.base_url}{href}")
        assert response.ok and response.headers["content-type"] == "application/pdf", response.headers
        assert response.body().startswith(b"%PDF-")
        assert response.headers.get("x-komu-signature") == "valid"

        receiver.get_by_role("button", name="受け入れる").click()
        expect(receiver.get_by_text("転入学を受け入れました。学級編制で学級に入れてください。")).to_be_visible()
        receiver.wait_for_url(re.compile(r"/students/[0-9a-f-]+/$"))
        expect(receiver.get_by_text(SECOND_SCHOOL).first).to_be_visible()
        expect(receiver.get_by_text(re.compile("の学級編制待ち"))).to_be_visible()
        expect(receiver.locator("section[aria-labelledby=history-title]")).to_contain_text("転入学")
        _shot(receiver, "24-transfer-accepted-registry")
        _no_axe_violations(receiver)

        receiver.get_by_role("link", name="学級編制へ").click()
        pending = receiver.locator("section.placement__pending")
        expect(pending).to_contain_text(re.compile("学級編制待ち 1 名"))
        expect(pending.get_by_role("row").filter(has_text=kana.split()[0])).to_have_count(1)
        _shot(receiver, "25-transfer-placement")

    # Gone from the old class list.
    assert class_url, "the pupil's page links back to the class"
    page.goto(f"{komu_server.base_url}{class_url}")
    rows = page.get_by_role("table", name=re.compile("在籍")).locator("tbody tr")
    expect(rows).to_have_count(before - 1)
    expect(page.get_by_role("table", name=re.compile("在籍"))).not_to_contain_text(kana)
