"""OneRoster end to end in a real browser: the board officer registers a learning portal for one school, the
portal takes a token and pages through that school's pupils with a filter (an OR reaches nothing outside the
school); the board's export downloads as a zip, and a broken bundle is refused line by line in Japanese."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import KomuServer, axe_violations, sign_in

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/shots/oneroster")


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _http(server: KomuServer, path: str, *, data: dict[str, str] | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(server.base_url + path, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_board_registers_a_portal_that_pages_its_school_and_exports_and_imports(
        page: Any, komu_server: KomuServer, tmp_path: Path) -> None:
    sign_in(page, komu_server, "demo-board")
    page.goto(f"{komu_server.base_url}/oneroster/clients/")
    expect(page.get_by_role("heading", name="API 接続先（OneRoster）")).to_be_visible()
    page.get_by_label("接続先の名称").fill("学習eポータル（試験接続）")
    first_school = page.locator("input[name=schools]").first
    first_school.check()
    page.get_by_role("button", name="登録してシークレットを発行").click()
    expect(page.get_by_text("シークレットは今しか表示されません")).to_be_visible()
    client_id = page.locator("dd code").nth(0).inner_text()
    secret = page.locator("#client-secret").inner_text()
    _shot(page, "1_client_registered")
    assert axe_violations(page) == []

    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    status, _headers, token = _http(komu_server, "/ims/oneroster/token", data={"grant_type": "client_credentials"},
                                    headers={"Authorization": f"Basic {basic}"})
    assert status == 200
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    base = "/ims/oneroster/rostering/v1p2"
    status, _headers, schools = _http(komu_server, f"{base}/schools", headers=auth)
    assert status == 200 and len(schools["orgs"]) == 1
    school = schools["orgs"][0]["sourcedId"]
    status, headers, first_page = _http(komu_server, f"{base}/students?limit=10&sort=familyName", headers=auth)
    assert status == 200 and int(headers["X-Total-Count"]) > 10 and 'rel="next"' in headers["Link"]
    kana = first_page["users"][0]["metadata"]["jp.kanaFamilyName"]
    query = urllib.parse.urlencode({"filter": f"metadata.jp.kanaFamilyName='{kana}'"})
    status, _headers, filtered = _http(komu_server, f"{base}/students?{query}", headers=auth)
    assert filtered["users"] and all(u["metadata"]["jp.kanaFamilyName"] == kana for u in filtered["users"])
    escape = urllib.parse.urlencode({"filter": "familyName~'' OR primaryOrg.sourcedId!='x'", "limit": "1000"})
    status, _headers, everyone = _http(komu_server, f"{base}/students?{escape}", headers=auth)
    assert everyone["users"] and {u["primaryOrg"]["sourcedId"] for u in everyone["users"]} == {school}
    status, _headers, error = _http(komu_server, f"{base}/students?filter=familyName%3D", headers=auth)
    assert status == 400 and error["imsx_codeMajor"] == "failure"

    page.goto(f"{komu_server.base_url}/oneroster/export/")
    _shot(page, "2_export_form")
    page.get_by_label("出力の目的").fill("学習eポータルへの名簿登録（試験）")
    with page.expect_download() as download:
        page.get_by_role("button", name="ZIP をダウンロード").click()
    bundle = tmp_path / "oneroster.zip"
    download.value.save_as(bundle)
    with zipfile.ZipFile(bundle) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    assert "users.csv" in files

    table = list(csv.reader(io.StringIO(files["users.csv"].decode())))
    table[3][table[0].index("metadata.jp.kanaFamilyName")] = "山田"
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, out.getvalue().encode() if name == "users.csv" else data)
    page.goto(f"{komu_server.base_url}/oneroster/import/")
    page.get_by_label("OneRoster の ZIP ファイル").set_input_files(str(broken))
    page.get_by_role("button", name="検証して取り込む").click()
    expect(page.get_by_text(re.compile("何も登録していません"))).to_be_visible()
    row = page.locator("table tbody tr").first
    expect(row).to_contain_text("users.csv")
    expect(row).to_contain_text("4")
    expect(row).to_contain_text("metadata.jp.kanaFamilyName")
    _shot(page, "3_import_errors")
    assert axe_violations(page) == []
