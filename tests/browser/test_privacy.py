"""Breach response in the browser: the principal records a lost class list from a class selection, sees the PPC
deadlines as dates and the affected pupils, fills the report and opens its print view."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import KomuServer, axe_violations, sign_in

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("KOMU_SHOTS_DIR", "/tmp/shots/privacy"))


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_principal_records_a_lost_class_list_and_drafts_the_ppc_report(page: Any, komu_server: KomuServer) -> None:
    sign_in(page, komu_server, "demo-principal")
    page.goto(f"{komu_server.base_url}/privacy/incidents/")
    expect(page.get_by_role("heading", name="漏えい等の事案", level=1)).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_role("link", name="事案を記録する").click()
    page.get_by_role("radio", name="学校・学級の指定から").check()
    page.get_by_role("combobox", name="学校", exact=True).select_option(index=1)
    page.locator("input[name=classes]").first.check()
    page.get_by_role("checkbox", name="氏名", exact=True).check()
    page.get_by_role("checkbox", name="保護者の電話番号").check()
    page.get_by_role("textbox", name="件名").fill("校外学習で学級名簿を紛失")
    page.get_by_role("checkbox", name=re.compile("不正の目的によるおそれ")).check()
    _shot(page, "01-new")
    page.get_by_role("button", name="記録して対象者を特定する").click()
    page.wait_for_url(re.compile(r"/privacy/incidents/[0-9a-f-]{36}/$"))
    expect(page.locator("#deadlines")).to_contain_text("速報（目安：3日目）")
    expect(page.locator("#deadlines")).to_contain_text("速報（遅くとも：5日目）")
    expect(page.locator("#deadlines")).to_contain_text("確報（60日以内）")
    expect(page.locator("#data-items")).to_contain_text("保護者の電話番号")
    persons = page.locator("#affected-persons tbody tr").count()
    assert persons > 0
    expect(page.locator("#person-count")).to_contain_text(f"{persons}人")
    assert axe_violations(page) == []
    _shot(page, "02-detail")
    page.get_by_role("textbox", name="原因", exact=True).fill("引率中に名簿をバスの座席に置き忘れた。")
    page.get_by_role("textbox", name="再発防止のための措置").fill("紙の名簿を持ち出さず、引率者の端末で期間中だけ閲覧する。")
    page.get_by_role("button", name="保存する").click()
    expect(page.get_by_text("報告書の内容を保存しました。")).to_be_visible()
    page.get_by_role("link", name="報告書（下書き）を印刷").click()
    report = page.locator("#ppc-report")
    for item in ("概要", "漏えい等が発生し又はおそれがある個人データの項目", "本人の数", "原因",
                 "二次被害又はそのおそれの有無及びその内容", "本人への対応の実施状況", "公表の実施状況",
                 "再発防止のための措置"):
        expect(report).to_contain_text(item)
    expect(report).to_contain_text("引率中に名簿をバスの座席に置き忘れた。")
    _shot(page, "03-report")
    page.go_back()
    page.get_by_role("link", name="保護者へのお知らせを印刷").click()
    expect(page.locator("article.privacy-letter")).to_have_count(persons)
    _shot(page, "04-letters")


def test_operator_reads_and_edits_the_retention_schedule(page: Any, komu_server: KomuServer) -> None:
    sign_in(page, komu_server, "demo-operator")
    page.goto(f"{komu_server.base_url}/privacy/retention/")
    rules = page.locator("#retention-rules")
    expect(rules).to_contain_text("出席簿")
    expect(rules).to_contain_text("指導要録（学籍に関する記録）")
    assert axe_violations(page) == []
    page.get_by_label("保存年数").nth(1).fill("10")
    page.locator("#retention-rules tbody tr").nth(1).get_by_role("button", name="保存").click()
    expect(page.get_by_text("法令上の保存期間（20年）より短くはできません。")).to_be_visible()
    _shot(page, "05-retention")
