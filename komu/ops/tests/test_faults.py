"""Faults, on a PostgreSQL 15 cluster of the test's own and a real gunicorn server on loopback:

- the server is killed (SIGKILL) in the middle of an attendance save, and the roster import process in the middle
  of its transaction: nothing partial is left, and the client's retry (same idempotency key) is applied once;
- PostgreSQL is stopped for a moment: pages answer 503 with a clear Japanese page and Retry-After, /healthz and
  /readyz answer 503, and when it is back the same server process serves again without anyone repairing anything.

"In the middle" is made exact, not timed: a test-only trigger on the table the operation writes waits on a lock
the test holds, so the process is killed after its first write and before its commit."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest

from komu.ops.tests import pgcluster
from komu.ops.tests.stack import ROOT, Server, komu, production_env

pytestmark = pytest.mark.clusters

@dataclass
class Stack:
    clusters: pgcluster.Clusters
    env: dict[str, str]
    var: Path
    session: dict[str, str]

    @property
    def url(self) -> str:
        return self.clusters.primary.url()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    clusters = pgcluster.Clusters()
    try:
        primary = clusters.init_primary()
        primary.psql("CREATE DATABASE komu")
        var = tmp_path_factory.mktemp("faults") / "var"
        env = production_env(var, primary.url())
        for args in (("migrate", "--noinput"), ("demo",)):
            done = komu(env, *args)
            assert done.returncode == 0, done.stderr[-3000:]
        made = subprocess.run([sys.executable, "-m", "komu.ops.tests.fault_probe", "session", "demo-homeroom"],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
        assert made.returncode == 0, made.stderr[-3000:]
        yield Stack(clusters, env, var, json.loads(made.stdout.strip().splitlines()[-1]))
    finally:
        clusters.close()


class Browser:
    """The morning-entry screen's requests: session cookie, CSRF token from the page, HX-Request."""

    def __init__(self, server: Server, session: dict[str, str]) -> None:
        self.server = server
        self.session = session
        self.csrf = ""
        status, headers, _ = server.request("GET", session["register"], headers=self._cookie())
        assert status == 200, status
        for part in headers.get("set-cookie", "").split(","):
            if "csrftoken=" in part:
                self.csrf = part.split("csrftoken=", 1)[1].split(";", 1)[0]
        assert self.csrf

    def _cookie(self) -> dict[str, str]:
        cookie = f"sessionid={self.session['sessionid']}"
        if self.csrf:
            cookie += f"; csrftoken={self.csrf}"
        return {"Cookie": cookie}

    def save(self, kind: str, key: str, version: int = 0, timeout: float = 60) -> tuple[int, str]:
        headers = {**self._cookie(), "X-CSRFToken": self.csrf, "HX-Request": "true",
                   "Content-Type": "application/x-www-form-urlencoded"}
        status, _, body = self.server.request("POST", self.session["row"], headers=headers, timeout=timeout,
                                              body=urlencode({"kind": kind, "version": str(version), "key": key}))
        return status, body

    def page(self) -> tuple[int, dict[str, str], str]:
        return self.server.request("GET", self.session["register"], headers=self._cookie())


class Gate:
    """A test-only trigger that makes the first write to `table` wait on a lock the test holds."""

    def __init__(self, url: str, table: str) -> None:
        self.url = url
        self.table = table
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS komu_fault_gate (id int)")
            conn.execute("""CREATE OR REPLACE FUNCTION komu_fault_wait() RETURNS trigger LANGUAGE plpgsql AS $$
                            BEGIN LOCK TABLE komu_fault_gate IN SHARE MODE; RETURN NULL; END $$""")
            conn.execute(f"CREATE TRIGGER komu_fault_gate AFTER INSERT OR UPDATE ON {table} "
                         "FOR EACH STATEMENT EXECUTE FUNCTION komu_fault_wait()")
        self.holder = psycopg.connect(url)
        self.holder.execute("LOCK TABLE komu_fault_gate IN ACCESS EXCLUSIVE MODE")

    def waiting_pid(self, seconds: float = 60) -> int:
        """The backend that has written to the table and now waits at the gate, i.e. is mid-transaction."""
        deadline = time.monotonic() + seconds
        with psycopg.connect(self.url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT w.pid FROM pg_locks w JOIN pg_locks t ON t.pid = w.pid "
                    "WHERE w.relation = 'komu_fault_gate'::regclass AND NOT w.granted "
                    f"AND t.relation = '{self.table}'::regclass AND t.granted AND t.mode = 'RowExclusiveLock'"
                ).fetchone()
                if row:
                    return int(row[0])
                time.sleep(0.2)
        raise TimeoutError("nothing reached the gate")

    def release(self, pid: int) -> None:
        self.holder.rollback()
        self.holder.close()
        with psycopg.connect(self.url, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]:
                assert time.monotonic() < deadline, "the orphaned backend did not end"
                time.sleep(0.2)
            conn.execute(f"DROP TRIGGER komu_fault_gate ON {self.table}")


def scalar(url: str, sql: str, params: list[Any] | None = None) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params or []).fetchone()
        return row[0] if row else None


def audit_verify(stack: Stack) -> None:
    done = komu(stack.env, "audit", "verify")
    assert done.returncode == 0, done.stderr


def test_killing_the_server_mid_save_leaves_nothing_and_the_retry_applies_once(stack: Stack, tmp_path: Path) -> None:
    sid, day = stack.session["student_id"], stack.session["day"]
    marks = "SELECT count(*) FROM attendance_mark WHERE student_id = %s AND date = %s"
    changes = "SELECT count(*) FROM attendance_markchange WHERE student_id = %s AND date = %s"
    events = "SELECT count(*) FROM audit_auditevent"
    server = Server(stack.env, tmp_path / "gunicorn.log")
    browser = Browser(server, stack.session)
    before_events = scalar(stack.url, events)
    key = uuid.uuid4().hex
    gate = Gate(stack.url, "attendance_mark")
    outcome: dict[str, Any] = {}

    def post() -> None:
        try:
            outcome["status"] = browser.save("late", key)[0]
        except (OSError, http.client.HTTPException) as exc:
            outcome["error"] = type(exc).__name__

    thread = threading.Thread(target=post)
    thread.start()
    pid = gate.waiting_pid()  # the mark is written, the transaction is open
    server.kill()
    thread.join(timeout=30)
    assert "status" not in outcome  # the client saw the connection drop, no answer
    gate.release(pid)
    assert scalar(stack.url, marks, [sid, day]) == 0
    assert scalar(stack.url, changes, [sid, day]) == 0
    assert scalar(stack.url, "SELECT count(*) FROM attendance_savereceipt WHERE key = %s", [key]) == 0
    assert scalar(stack.url, events) == before_events

    # entry.js resends the pending change with the same key; the first lost response makes it send twice.
    server = Server(stack.env, tmp_path / "gunicorn.log")
    try:
        browser = Browser(server, stack.session)
        first, body = browser.save("late", key)
        assert first == 200, body[-500:]
        again, _ = browser.save("late", key)
        assert again == 200
    finally:
        server.stop()
    assert scalar(stack.url, marks, [sid, day]) == 1
    assert scalar(stack.url, changes, [sid, day]) == 1
    assert scalar(stack.url, "SELECT count(*) FROM attendance_savereceipt WHERE key = %s", [key]) == 1
    audit_verify(stack)


def test_postgres_stopped_for_a_moment_gives_503_pages_and_recovers_by_itself(stack: Stack, tmp_path: Path) -> None:
    server = Server(stack.env, tmp_path / "gunicorn.log")
    try:
        browser = Browser(server, stack.session)
        worker_pid = server.proc.pid
        stack.clusters.primary.stop("fast")
        try:
            status, headers, body = browser.page()
            assert status == 503
            assert headers["retry-after"] == "15"
            assert "ただいま利用できません" in body and "二重に保存されることはありません" in body
            key = uuid.uuid4().hex
            status, _ = browser.save("early_leave", key, version=0)
            assert status == 503  # entry.js keeps the change and retries it with the same key
            assert server.request("GET", "/healthz")[0] == 503
            status, _, body = server.request("GET", "/readyz")
            assert status == 503 and json.loads(body)["checks"]["database"] == "unreachable"
        finally:
            stack.clusters.primary.start()
            stack.clusters.primary.wait_ready()
        # The same server process serves again: nobody restarted or repaired anything.
        assert server.proc.pid == worker_pid and server.proc.poll() is None
        assert browser.page()[0] == 200
        assert server.request("GET", "/healthz")[0] == 200
        version = scalar(stack.url, "SELECT coalesce(max(version), 0) FROM attendance_markchange "
                         "WHERE student_id = %s AND date = %s", [stack.session["student_id"], stack.session["day"]])
        first, body = browser.save("early_leave", key, version=version)
        again, _ = browser.save("early_leave", key, version=version)
        assert (first, again) == (200, 200), body[-500:]
    finally:
        server.stop()
    assert scalar(stack.url, "SELECT count(*) FROM attendance_savereceipt WHERE key = %s", [key]) == 1
    audit_verify(stack)


def test_killing_the_roster_import_mid_transaction_leaves_nothing_and_a_rerun_applies(
    stack: Stack, tmp_path: Path
) -> None:
    target = tmp_path / "gakureibo.csv"
    made = komu(stack.env, "demo", "gakureibo", "--out", str(target))
    assert made.returncode == 0, made.stderr[-2000:]
    entries = "SELECT count(*) FROM rosters_gakureiboentry"
    before = scalar(stack.url, entries)
    gate = Gate(stack.url, "rosters_gakureiboentry")
    proc = subprocess.Popen(
        [sys.executable, "-m", "komu", "roster", "import", str(target), "--board", "119901", "--as", "demo-board"],
        env=stack.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        pid = gate.waiting_pid(seconds=120)  # the first batch of entries is written, the transaction is open
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    gate.release(pid)
    assert scalar(stack.url, entries) == before
    audit_verify(stack)
    status = scalar(stack.url, "SELECT status FROM rosters_gakureiboimport ORDER BY created_at DESC LIMIT 1")
    print(f"interrupted import left with status {status!r}")

    rerun = komu(stack.env, "roster", "import", str(target), "--board", "119901", "--as", "demo-board")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert scalar(stack.url, entries) > before
    audit_verify(stack)
