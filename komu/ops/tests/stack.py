"""Helpers shared by the cluster tests and the operations browser test: Komu commands in a process of their own
with a given database, production-mode settings, and a gunicorn server in its own process group."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from komu.ops.tests import pgcluster

ROOT = Path(__file__).resolve().parents[3]


def komu_env(var_dir: Path, database_url: str, replica_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KOMU_", "PYTEST", "DJANGO_"))}
    env.update({"KOMU_VAR_DIR": str(var_dir), "KOMU_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)})
    if replica_url:
        env["KOMU_REPLICA_DATABASE_URL"] = replica_url
    return env


def komu(env: dict[str, str], *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "komu", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


SECRET = "fault-test-secret-key-" + "x" * 40


def production_env(var: Path, url: str) -> dict[str, str]:
    env = komu_env(var, url)
    env.update({"KOMU_SECRET_KEY": SECRET, "KOMU_DEBUG": "0", "KOMU_SSL_REDIRECT": "0",
                "KOMU_CREATE_KEY_FILE": "1", "KOMU_LOG_FORMAT": "json"})
    return env


class Server:
    """gunicorn with one worker, in its own process group so SIGKILL takes master and worker at once."""

    def __init__(self, env: dict[str, str], log: Path, *, static: bool = False) -> None:
        self.port = pgcluster.free_port()
        self.log = log.open("ab")
        if static:
            # For the browser: production settings (DEBUG off, the 503 handler) but static files served by Django
            # itself (`runserver --insecure`), where production has nginx.
            args = ["-m", "komu", "runserver", "--insecure", "--noreload", f"127.0.0.1:{self.port}"]
        else:
            args = ["-m", "gunicorn", "komu.wsgi:application", "-b", f"127.0.0.1:{self.port}", "-w", "1",
                    "--timeout", "120", "--graceful-timeout", "5"]
        self.proc = subprocess.Popen(
            [sys.executable, *args], env=env, cwd=ROOT, stdout=self.log, stderr=self.log, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/healthz")[0] in (200, 503):
                    return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError("gunicorn did not start")

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, body: str | None = None,
                timeout: float = 60) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
        finally:
            conn.close()

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()
