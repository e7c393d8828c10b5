"""A newcomer signs in as the demo principal with password + TOTP and finds a Japanese home page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import KomuServer, axe_violations, demo_password

pytestmark = pytest.mark.browser

def test_principal_signs_in_with_password_and_totp_and_sees_japanese_home(komu_server: KomuServer, page: Any) -> None:
    page.goto(f"{komu_server.base_url}/")
    assert "/accounts/login" in page.url
    assert page.locator("html").get_attribute("lang") == "ja"
    assert axe_violations(page) == []

    page.get_by_label("ログインID").fill("demo-principal")
    page.get_by_label("パスワード").fill(demo_password(komu_server))
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(re.compile(r"/accounts/mfa/"))
    assert axe_violations(page) == []

    code = komu_server.komu("demo", "totp", "demo-principal").strip()
    assert re.fullmatch(r"\d{6}", code)
    page.get_by_label(re.compile("確認コード")).fill(code)
    page.get_by_role("button", name=re.compile("確認")).click()

    page.wait_for_url(f"{komu_server.base_url}/")
    assert page.locator("h1").inner_text() == "ホーム"
    assert page.get_by_text("今日やること").is_visible()
    assert page.get_by_text("校長").first.is_visible()
    assert axe_violations(page) == []


def test_wrong_totp_code_keeps_the_principal_out(komu_server: KomuServer, page: Any) -> None:
    page.goto(f"{komu_server.base_url}/accounts/login/")
    page.get_by_label("ログインID").fill("demo-principal")
    page.get_by_label("パスワード").fill(demo_password(komu_server))
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(re.compile(r"/accounts/mfa/"))
    page.get_by_label(re.compile("確認コード")).fill("000000")
    page.get_by_role("button", name=re.compile("確認")).click()
    assert "/accounts/mfa/" in page.url
    page.goto(f"{komu_server.base_url}/students/")
    assert "/accounts/mfa/" in page.url


def test_home_page_fits_a_phone(komu_server: KomuServer, browser: Any) -> None:
    context = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{komu_server.base_url}/accounts/login/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the sign-in page must not scroll sideways on a phone"
    context.close()
