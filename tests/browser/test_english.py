"""English screens, as a user who switches the language in the header sees them: grades and classes and the
progress indicators in English, and the pages still pass axe. (The server is shared by the session: nothing here
changes data.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import KomuServer, axe_violations, signed_in

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/english")
WIDE = {"width": 1280, "height": 900}


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _to_english(page: Any) -> None:
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", re.compile("^en"))


def test_a_teacher_reads_the_class_list_in_english(browser: Any, komu_server: KomuServer) -> None:
    with signed_in(browser, komu_server, "demo-homeroom", viewport=WIDE) as teacher:
        teacher.goto(f"{komu_server.base_url}/students/")
        _to_english(teacher)
        main = teacher.locator("main")
        expect(main).to_contain_text("Elementary grade 1")
        assert "小学1年" not in main.inner_text()
        assert axe_violations(teacher) == []
        _shot(teacher, "students")


def test_a_board_reads_the_progress_dashboard_in_english(browser: Any,
                                                                       komu_server: KomuServer) -> None:
    with signed_in(browser, komu_server, "demo-board", viewport=WIDE) as board:
        board.goto(f"{komu_server.base_url}/progress/")
        _to_english(board)
        table = board.get_by_role("table").first
        expect(table.get_by_role("row", name=re.compile("School-affairs DX checklist score"))).to_be_visible()
        expect(table).to_contain_text("Share of attendance registers approved electronically")
        assert "校務連絡のデジタル化率" not in table.inner_text()
        expect(board.get_by_role("heading", name="Ranking by School")).to_be_visible()
        main = board.locator("main").inner_text()
        assert "年度" not in main and "年11月" not in main
        assert axe_violations(board) == []
        _shot(board, "progress-dashboard")
