"""A real Komu server for browser tests: its own database with the demo loaded, served by `komu runserver` in a
subprocess, driven by Playwright through Debian's chromium. Nothing is shared with the unit-test database.

Signing in as a demo person is shared by every browser test: `sign_in` on a page, `signed_in` for a person at
their own browser (own cookies)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "komu" / "static" / "vendor" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DEMO_PASSWORD_LINE = re.compile(r"パスワード[:：]\s*(\S+)")
DESKTOP = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}


@dataclass
class KomuServer:
    base_url: str
    env: dict[str, str]
    _demo_password: str = field(default="", repr=False)

    def komu(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "komu", *args], env=self.env, cwd=ROOT, capture_output=True, text=True,
            check=True, timeout=300,
        )
        return result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_database(env: dict[str, str]) -> tuple[str, str] | None:
    url = os.environ.get("KOMU_DATABASE_URL", "")
    if not url.startswith("postgres"):
        return None
    name = f"komu_browser_{uuid.uuid4().hex[:8]}"
    base = url.rsplit("/", 1)[0]
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    return f"{base}/{name}", name


@pytest.fixture(scope="session")
def komu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KomuServer]:
    var_dir = tmp_path_factory.mktemp("komu-browser")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(KOMU_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="komu.settings")
    env.pop("KOMU_DATABASE_URL", None)
    pg = _postgres_database(env)
    if pg is not None:
        env["KOMU_DATABASE_URL"] = pg[0]
    port = _free_port()
    server = KomuServer(base_url=f"http://127.0.0.1:{port}", env=env)
    server.komu("migrate", "--noinput", "-v0")
    server.komu("demo")
    log = (var_dir / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "komu", "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {(var_dir / 'server.log').read_text()}")
            time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        if pg is not None:
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", pg[1]], check=False)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed here (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(locale="ja-JP", viewport={"width": 1024, "height": 768})
    page = context.new_page()
    yield page
    shots = ROOT / "var" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
    context.close()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """WCAG 2.1 A/AA violations on the current page (JIS X 8341-3 AA), as axe-core reports them."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]


def demo_password(server: KomuServer) -> str:
    """The demo people's password, as `komu demo logins` prints it (once per server)."""
    if not server._demo_password:
        match = DEMO_PASSWORD_LINE.search(server.komu("demo", "logins"))
        assert match, "komu demo logins must print the demo password"
        server._demo_password = match.group(1)
    return server._demo_password


def sign_in(page: Any, server: KomuServer, login: str, *, totp: bool = True) -> None:
    """Sign a demo person in on `page`: password, then (staff) the TOTP code; ends on the home page."""
    page.goto(f"{server.base_url}/accounts/login/")
    page.get_by_label("ログインID").fill(login)
    page.get_by_label("パスワード").fill(demo_password(server))
    page.get_by_role("button", name="ログイン").click()
    if totp:
        page.wait_for_url(re.compile(r"/accounts/mfa/"))
        page.get_by_label(re.compile("確認コード")).fill(server.komu("demo", "totp", login).strip())
        page.get_by_role("button", name=re.compile("確認")).click()
    page.wait_for_url(f"{server.base_url}/")


@contextmanager
def signed_in(browser: Any, server: KomuServer, login: str, *, viewport: dict[str, int] | None = None,
              mobile: bool = False, totp: bool = True) -> Iterator[Any]:
    """A person at their own browser (own cookies), signed in: staff with password + TOTP, guardians
    (totp=False) with password. `mobile` emulates a phone (touch, mobile viewport handling)."""
    context = browser.new_context(locale="ja-JP", viewport=viewport or DESKTOP, is_mobile=mobile, has_touch=mobile)
    try:
        page = context.new_page()
        sign_in(page, server, login, totp=totp)
        yield page
    finally:
        context.close()
