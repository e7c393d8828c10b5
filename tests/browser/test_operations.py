"""Operations, in a real browser: the morning entry keeps working through a PostgreSQL outage.

A PostgreSQL 15 cluster of the test's own and a production-mode server (DEBUG off) (komu.ops.tests.pgcluster, the same
helpers as the fault tests). The homeroom teacher signs in and opens today's register; the database stops; she
marks a pupil late — the row says it could not be saved and will retry; another tab shows the 503 page; the
database comes back and the pending change is saved by itself, exactly once. Runs with `make test-replica`
(KOMU_TEST_CLUSTERS=1), because it starts its own cluster."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import expect

from komu.ops.tests import pgcluster
from komu.ops.tests.stack import ROOT, Server, production_env

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.environ.get("KOMU_TEST_CLUSTERS") != "1",
                       reason="starts its own PostgreSQL cluster: run with `make test-replica`"),
]
SHOTS = Path(os.environ.get("KOMU_SHOTS", "/tmp/shots/ops"))
REGISTER_URL = re.compile(r"/attendance/classes/(\d+)/(\d{4}-\d{2}-\d{2})/")


def komu(env: dict[str, str], *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "komu", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=600).stdout


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[pgcluster.Clusters, dict[str, str], Server]]:
    missing = pgcluster.available()
    if missing:
        pytest.skip(missing)
    clusters = pgcluster.Clusters()
    server = None
    try:
        primary = clusters.init_primary()
        primary.psql("CREATE DATABASE komu")
        env = production_env(tmp_path / "var", primary.url())
        komu(env, "migrate", "--noinput", "-v0")
        komu(env, "demo")
        server = Server(env, tmp_path / "server.log", static=True)
        yield clusters, env, server
    finally:
        if server is not None:
            server.stop()
        clusters.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_the_morning_entry_rides_out_a_database_outage_and_saves_once(
    browser: Any, stack: tuple[pgcluster.Clusters, dict[str, str], Server]
) -> None:
    clusters, env, server = stack
    base = f"http://127.0.0.1:{server.port}"
    password = re.search(r"パスワード[:：]\s*(\S+)", komu(env, "demo", "logins"))
    assert password
    context = browser.new_context(locale="ja-JP", viewport={"width": 1024, "height": 768})
    page = context.new_page()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("ログインID").fill("demo-homeroom")
    page.get_by_label("パスワード").fill(password.group(1))
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(re.compile(r"/accounts/mfa/"))
    page.get_by_label(re.compile("確認コード")).fill(komu(env, "demo", "totp", "demo-homeroom").strip())
    page.get_by_role("button", name=re.compile("確認")).click()
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/attendance/")
    page.wait_for_url(REGISTER_URL)
    if page.get_by_text("この日は授業日ではありません").is_visible():
        page.get_by_role("link", name="前の授業日を開く").click()
        page.wait_for_url(REGISTER_URL)
    match = REGISTER_URL.search(page.url)
    assert match
    day = match.group(2)
    rows = page.locator(".entry-row[data-kind='present']")
    row = rows.nth(rows.count() - 1)
    sid = (row.get_attribute("id") or "").removeprefix("pupil-")
    assert sid
    shot(page, "01-register")

    clusters.primary.stop("fast")
    try:
        row.locator(".entry-row__marks .mark-button[data-kind='late']").click()
        expect(page.locator(f"#pupil-{sid} [data-row-retry]")).to_be_visible(timeout=15000)
        shot(page, "02-pending-during-outage")
        other = context.new_page()
        response = other.goto(page.url)
        assert response is not None and response.status == 503
        expect(other.get_by_role("heading", name="ただいま利用できません")).to_be_visible()
        shot(other, "03-outage-page")
        other.close()
    finally:
        clusters.primary.start()
        clusters.primary.wait_ready()

    # No reload, no click: entry.js resends the pending change with its key when its backoff ends.
    expect(page.locator(f"#pupil-{sid} [data-row-retry]")).to_have_count(0, timeout=90000)
    expect(page.locator(f"#pupil-{sid}")).to_have_attribute("data-kind", "late", timeout=10000)
    shot(page, "04-saved-after-outage")
    context.close()
    with psycopg.connect(clusters.primary.url()) as conn:
        changes = conn.execute("SELECT count(*) FROM attendance_markchange WHERE student_id = %s AND date = %s",
                               [sid, day]).fetchone()
        kind = conn.execute("SELECT kind FROM attendance_mark WHERE student_id = %s AND date = %s",
                            [sid, day]).fetchone()
    assert changes is not None and changes[0] == 1
    assert kind is not None and kind[0] == "late"
