"""Issue 9: the morning peak against the deployment shape on loopback — a PostgreSQL 15 primary with a streaming
standby (clusters of the benchmark's own, komu.ops.tests.pgcluster), two gunicorn app processes, the demo
municipality. Homeroom teachers save their whole class (35-row register + confirm, as bench_attendance) while
principals reload the attendance overview. Measured twice in the same run: with every read on the primary (the
single-database figure, the baseline) and with the overview's reads on the standby (KOMU_REPLICA_DATABASE_URL).

`python -m bench.bench_ops` runs it alone; `make bench` runs it after the others.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-ops-secret-" + "y" * 48


def _env(var: Path, url: str, replica: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KOMU_", "DJANGO_"))}
    env.update({"KOMU_VAR_DIR": str(var), "KOMU_DATABASE_URL": url, "KOMU_SECRET_KEY": SECRET, "KOMU_DEBUG": "0",
                "KOMU_SSL_REDIRECT": "0", "KOMU_CREATE_KEY_FILE": "1", "KOMU_LOG_LEVEL": "WARNING",
                "KOMU_DB_CONN_MAX_AGE": "600", "PYTHONPATH": str(ROOT)})
    if replica:
        env["KOMU_REPLICA_DATABASE_URL"] = replica
    return env


def setup() -> None:
    """In a process with the benchmark's environment: sessions for the homeroom teachers and principals."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "komu.settings")
    django.setup()
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from komu.attendance import calendar
    from komu.directory.models import Role, StaffAssignment
    from komu.students.models import ClassMembership
    from komu.testing.world import login_verified

    def session(user: Any) -> str:
        client = Client()
        login_verified(client, user)
        return str(client.cookies["sessionid"].value)

    today = timezone.localdate()
    classes = []
    for a in StaffAssignment.objects.filter(role=Role.HOMEROOM_TEACHER, homeroom_class__isnull=False).select_related(
            "user", "homeroom_class__school_year").order_by("homeroom_class_id")[:int(os.environ.get("N", "12"))]:
        klass = a.homeroom_class
        assert klass is not None
        days = [d for d in calendar.school_days(klass.school_year, klass.school_year.start_date, today) if d < today]
        pupils = [str(p) for p in ClassMembership.objects.filter(homeroom_class=klass).values_list("student_id",
                                                                                                   flat=True)]
        classes.append({"url": reverse("attendance:confirm", kwargs={"class_id": klass.pk, "day": days[-5]}),
                        "session": session(a.user), "pupils": pupils})
    boards = []
    for a in StaffAssignment.objects.filter(role=Role.PRINCIPAL, school__isnull=False).select_related("user"):
        assert a.school_id is not None
        boards.append({"url": reverse("attendance:overview", args=[a.school_id]), "session": session(a.user)})
    print(json.dumps({"classes": classes, "dashboards": boards}))


def _body(pupils: list[str], i: int) -> str:
    kind, reason = (("absent", "illness") if i % 2 else ("late", ""))
    fields: list[tuple[str, str]] = []
    for sid in pupils:
        fields += [("student", sid), ("kind", kind), ("absence_reason", reason), ("suspension_kind", ""),
                   ("disease", ""), ("kinship_degree", ""), ("detail", ""), ("version", "")]
    return urllib.parse.urlencode(fields)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _load(ports: list[int], plan: dict[str, Any], seconds: float) -> dict[str, tuple[list[float], int]]:
    csrf = uuid.uuid4().hex
    results: dict[str, tuple[list[float], int]] = {"save": ([], 0), "dashboard": ([], 0)}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(kind: str, n: int, job: dict[str, Any]) -> None:
        port = ports[n % len(ports)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Cookie": f"sessionid={job['session']}; csrftoken={csrf}"}
        if kind == "save":
            headers.update({"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true",
                            "X-CSRFToken": csrf})
        mine: list[float] = []
        bad = 0
        i = n
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                if kind == "save":
                    conn.request("POST", job["url"], body=_body(job["pupils"], i), headers=headers)
                else:
                    conn.request("GET", job["url"], headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                ok = False
            mine.append(time.perf_counter() - start)
            bad += 0 if ok else 1
            i += 1
        conn.close()
        with lock:
            times, errors = results[kind]
            results[kind] = (times + mine, errors + bad)

    threads = [threading.Thread(target=client, args=("save", n, job)) for n, job in enumerate(plan["classes"])]
    threads += [threading.Thread(target=client, args=("dashboard", n, job))
                for n, job in enumerate(plan["dashboards"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _servers(env: dict[str, str], count: int = 2) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    from komu.ops.tests.pgcluster import free_port

    procs, ports = [], []
    for _ in range(count):
        port = free_port()
        procs.append(subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "gunicorn", "komu.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "2",
             "--log-level", "warning", "--keep-alive", "30"], env=env, cwd=ROOT, start_new_session=True))
        ports.append(port)
    for port in ports:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    return procs, ports


def _figure(times: list[float], errors: int, seconds: float) -> str:
    if not times:
        return "no requests"
    return (f"{len(times) / seconds:,.1f}/s, p50 {statistics.median(times) * 1000:.0f} ms, "
            f"p95 {_pct(times, 0.95) * 1000:.0f} ms" + (f", {errors} errors" if errors else ""))


def run() -> list[str]:
    import tempfile

    from komu.ops.tests import pgcluster

    missing = pgcluster.available()
    if missing:
        return [f"ops (primary + standby): skipped — {missing}"]
    seconds = float(os.environ.get("KOMU_BENCH_SECONDS", "15"))
    clusters = pgcluster.Clusters()
    var = Path(tempfile.mkdtemp(prefix="komu-bench-ops-"))
    try:
        primary = clusters.init_primary()
        primary.psql("CREATE DATABASE komu")
        single = _env(var, primary.url(), None)
        for args in (["migrate", "--noinput", "-v0"], ["demo"]):
            subprocess.run([sys.executable, "-m", "komu", *args], env=single, cwd=ROOT, check=True,  # noqa: S603
                           capture_output=True)
        out = subprocess.run([sys.executable, "-m", "bench.bench_ops", "setup"], env=single, cwd=ROOT,
                             check=True, capture_output=True, text=True)
        plan = json.loads(out.stdout.strip().splitlines()[-1])
        standby = clusters.add_standby()
        clusters.wait_replayed()
        figures = {}
        for label, env in (("single database", single), ("reads on standby", _env(var, primary.url(),
                                                                                   standby.url()))):
            procs, ports = _servers(env)
            try:
                _load(ports, {"classes": plan["classes"][:2], "dashboards": plan["dashboards"][:1]}, 2.0)  # warm
                figures[label] = _load(ports, plan, seconds)
            finally:
                for proc in procs:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=30)
    finally:
        clusters.close()
        shutil.rmtree(var, ignore_errors=True)
    load = os.getloadavg()[0]
    lines = [f"ops — morning peak on loopback: {len(plan['classes'])} teachers saving their class (35-row register "
             f"+ confirm) and {len(plan['dashboards'])} principals reloading the overview, 2 gunicorn processes × "
             f"2 workers, {seconds:.0f} s each, load average {load:.1f}"]
    for kind, name in (("save", "class saves"), ("dashboard", "overview (dashboard)")):
        base = figures["single database"][kind]
        komu = figures["reads on standby"][kind]
        lines.append(f"  {name}: primary + standby {_figure(*komu, seconds)}  |  baseline single database "
                     f"{_figure(*base, seconds)}")
    return lines


if __name__ == "__main__":
    if sys.argv[1:] == ["setup"]:
        setup()
    else:
        print(*run(), sep="\n")
