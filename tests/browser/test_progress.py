"""The progress database in a real browser: the board's dashboard against prefecture and nation (SVG chart and
tables), the principal's 校務DX checklist submitted and showing up on the board's dashboard, the prefecture map,
and the public open-data page and CSV without signing in. Screenshots go to /tmp/shots/progress/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import KomuServer, axe_violations, signed_in

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/shots/progress")
WIDE = {"width": 1280, "height": 900}


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_board_dashboard_checklist_and_map(browser: Any, komu_server: KomuServer) -> None:
    with signed_in(browser, komu_server, "demo-board", viewport=WIDE) as board:
        board.goto(f"{komu_server.base_url}/progress/")
        expect(board.get_by_role("heading", level=1)).to_contain_text("こもれび市教育委員会")
        table = board.get_by_role("table").first
        for name in ("こもれび市教育委員会", "埼玉県", "全国"):
            expect(table.get_by_role("columnheader", name=name)).to_be_visible()
        expect(board.locator("svg.progress-chart").first).to_be_visible()
        expect(board.get_by_role("img", name=re.compile("校務連絡のデジタル化率の推移"))).to_be_visible()
        expect(board.get_by_role("rowheader", name="こもれび市立第一小学校").first).to_be_visible()
        assert axe_violations(board) == []
        _shot(board, "board-dashboard")
        checklist_row = table.get_by_role("row", name=re.compile("校務DXチェックリストの得点率"))
        expect(checklist_row).to_contain_text("未計測")

    with signed_in(browser, komu_server, "demo-principal", viewport=WIDE) as principal:
        principal.goto(f"{komu_server.base_url}/progress/checklist/")
        principal.get_by_role("button", name=re.compile("回答を始める")).first.click()
        expect(principal.get_by_text("計測した値からの提案").first).to_be_visible()
        principal.get_by_role("group", name=re.compile("FAXを使っていますか")).get_by_label("使っている").check()
        principal.get_by_label("民間事業者").first.check()
        _shot(principal, "principal-checklist")
        principal.once("dialog", lambda dialog: dialog.accept())
        principal.get_by_role("button", name="教育委員会へ提出する").click()
        expect(principal.get_by_text("提出しました。")).to_be_visible()

    with signed_in(browser, komu_server, "demo-board", viewport=WIDE) as board:
        board.goto(f"{komu_server.base_url}/progress/?indicator=checklist_score")
        expect(board.get_by_role("table").first.get_by_role("row", name=re.compile("校務DXチェックリストの得点率"))
               ).not_to_contain_text("未計測")
        board.goto(f"{komu_server.base_url}/progress/map/?indicator=comm_digital")
        svg_map = board.locator("svg.progress-map")
        expect(svg_map).to_be_visible()
        assert svg_map.locator("g > title").count() == 47
        assert svg_map.locator("rect[fill='#e6e6e6']").count() == 1  # only the legend's 未計測 swatch
        assert axe_violations(board) == []
        _shot(board, "map")


def test_open_data_is_public(browser: Any, komu_server: KomuServer) -> None:
    context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{komu_server.base_url}/progress/open/")
        expect(page.get_by_role("heading", level=1)).to_have_text("校務DXの進捗 オープンデータ")
        expect(page.get_by_role("link", name=re.compile("CC BY 4.0"))).to_be_visible()
        link = page.get_by_role("link", name=re.compile(r"^school-\d{4}-\d{2}\.csv$"))
        response = page.request.get(f"{komu_server.base_url}{link.get_attribute('href')}")
        assert response.status == 200
        text = response.body().decode("utf-8")
        assert text.startswith("\ufefflevel,code,name")
        assert "秘匿" in text
        assert axe_violations(page) == []
        _shot(page, "open-data")
    finally:
        context.close()
