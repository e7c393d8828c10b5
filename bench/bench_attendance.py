"""Saving a class's register (35 pupils), beside a bare baseline that writes the same 35 rows (issue 4).

Two measurements, each beside its baseline in the same run:

1. Service level, one client: `register_save` (scope, calendar and month checks, row locks, version checks, 35
   mark updates, 35 MarkChange rows, one audit event) against one transaction of 35 upserts sent with the
   driver's executemany.
2. HTTP, 16 concurrent clients on loopback for a fixed time: the real endpoint a teacher's tablet posts (session,
   MFA and CSRF middleware, the 35 rows saved and the register confirmed, two audit events) against a bare Django
   view that upserts the same 35 rows with no checks, served by the same server. The server is Django's threaded
   WSGI server in one process per CPU sharing the port (SO_REUSEPORT), DEBUG off, persistent DB connections; the
   load generator is this process, 16 threads with keep-alive connections. Run on PostgreSQL only (SQLite
   serialises every write, so concurrency would measure its lock).

`python -m bench` runs both (the HTTP part when KOMU_BENCH_DATABASE_URL points at PostgreSQL);
KOMU_BENCH_SECONDS sets the length of each HTTP run (default 8). The server half of this module runs as
`python -m bench.bench_attendance serve PORT WORKERS`.
"""

from __future__ import annotations

import datetime
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from typing import Any

CLASSES = 16
PUPILS = 35
SERVICE_SAVES = 60


# --- Fixture data ---------------------------------------------------------------------------------------------

def _build(classes: int = CLASSES, pupils: int = PUPILS) -> tuple[list[Any], datetime.date]:
    """A school with `classes` classes of `pupils` pupils and a homeroom teacher each. Returns the classes (with
    .pupil_ids and .teacher) and the latest 授業日 up to today."""
    from django.utils import timezone

    from komu.attendance import calendar
    from komu.core.codes import make_school_code
    from komu.core.wareki import fiscal_year_bounds, fiscal_year_of
    from komu.directory.models import (
        Board,
        HomeroomClass,
        Prefecture,
        Role,
        School,
        SchoolYear,
        StaffAssignment,
    )
    from komu.students.models import ClassMembership, Student
    from komu.testing.world import make_user

    today = timezone.localdate()
    prefecture = Prefecture.objects.get(code="13")
    tag = uuid.uuid4().hex[:4]
    board = Board.objects.create(code=f"138{int(tag, 16) % 1000:03d}", name="ベンチ市教育委員会",
                                 kind=Board.Kind.MUNICIPAL, prefecture=prefecture)
    number = f"{int(tag, 16) % 10_000_000:07d}"
    school = School.objects.create(code=make_school_code("B1", "13", "2", number), name="ベンチ小学校",
                                   school_type="B1", board=board, prefecture=prefecture)
    fiscal = fiscal_year_of(today)
    start, end = fiscal_year_bounds(fiscal)
    year = SchoolYear.objects.create(school=school, year=fiscal, start_date=start, end_date=end)
    days = calendar.school_days(year, max(start, today - datetime.timedelta(days=20)), today)
    if not days:
        days = calendar.school_days(year, start, start + datetime.timedelta(days=20))
    result = []
    for c in range(classes):
        klass = HomeroomClass.objects.create(school_year=year, grade_code=f"P{c % 6 + 1}", name=f"{c + 1}組",
                                             sort_order=c)
        students = []
        for p in range(pupils):
            student = Student(school=school, family_name="試験", given_name=f"児童{p}", family_name_kana="シケン",
                              given_name_kana="ジドウ")
            student.save()
            students.append(student)
        ClassMembership.objects.bulk_create(
            [ClassMembership(student=s, homeroom_class=klass, shusseki_no=i + 1) for i, s in enumerate(students)]
        )
        teacher = make_user(f"bench-t{tag}-{c}")
        StaffAssignment.objects.create(user=teacher, role=Role.HOMEROOM_TEACHER, school=school,
                                       homeroom_class=klass)
        klass.pupil_ids = [s.pk for s in students]  # type: ignore[attr-defined]
        klass.teacher = teacher  # type: ignore[attr-defined]
        result.append(klass)
    return result, days[-1]


def _state(i: int) -> tuple[str, str]:
    """Two full states of the class, so every save changes all 35 rows."""
    return ("absent", "illness") if i % 2 else ("late", "")


# --- 1. Service level ------------------------------------------------------------------------------------------

def _service(classes: list[Any], day: datetime.date) -> list[str]:
    from django.db import connection, transaction

    from komu.access.scope import get_actor
    from komu.attendance.services.marks import MarkInput, register_save

    klass = classes[0]
    actor = get_actor(klass.teacher)
    times = []
    for i in range(SERVICE_SAVES):
        kind, reason = _state(i)
        rows = {sid: (MarkInput(kind, absence_reason=reason), None) for sid in klass.pupil_ids}
        start = time.perf_counter()
        result = register_save(actor=actor, class_id=klass.pk, date=day, rows=rows)
        times.append(time.perf_counter() - start)
        assert len(result.saved) == PUPILS, result
    user_id = klass.teacher.pk
    other = classes[1]
    sql = (
        "INSERT INTO attendance_mark (id, created_at, updated_at, student_id, homeroom_class_id, date, kind, "
        "absence_reason, suspension_kind, disease, kinship_degree, detail, source, guardian_report_id, version, "
        "updated_by_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '', '', NULL, '', 'teacher', NULL, 1, %s) "
        "ON CONFLICT (student_id, date) DO UPDATE SET kind = EXCLUDED.kind, absence_reason = EXCLUDED.absence_reason, "
        "updated_at = EXCLUDED.updated_at, version = attendance_mark.version + 1"
    )
    base = []
    for i in range(SERVICE_SAVES):
        kind, reason = _state(i)
        now = datetime.datetime.now(datetime.UTC)
        params = [(_db_uuid(uuid.uuid4()), now, now, _db_uuid(sid), other.pk, day, kind, reason, _db_uuid(user_id))
                  for sid in other.pupil_ids]
        start = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, params)
        base.append(time.perf_counter() - start)
    return [_line("register_save service, one class (35 rows), sequential", times,
                  "35-row upsert with executemany in one transaction", base)]


def _db_uuid(value: Any) -> Any:
    """A UUID as the driver takes it: PostgreSQL's uuid type takes the text form, SQLite's char(32) the hex."""
    from django.db import connection

    if not isinstance(value, uuid.UUID):
        return value
    return str(value) if connection.vendor == "postgresql" else value.hex


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _line(name: str, times: list[float], base_name: str, base: list[float], *, seconds: float | None = None,
          base_seconds: float | None = None) -> str:
    rate = len(times) / (seconds if seconds is not None else sum(times))
    base_rate = len(base) / (base_seconds if base_seconds is not None else sum(base))
    return (f"{name}: {rate:,.0f} saves/s, p50 {statistics.median(times) * 1000:.1f} ms, "
            f"p95 {_pct(times, 0.95) * 1000:.1f} ms  |  baseline {base_name}: {base_rate:,.0f} saves/s, "
            f"p50 {statistics.median(base) * 1000:.1f} ms, p95 {_pct(base, 0.95) * 1000:.1f} ms  "
            f"|  ratio {rate / base_rate:.2f}")


# --- 2. HTTP ----------------------------------------------------------------------------------------------------

def _body(pupil_ids: list[uuid.UUID], i: int) -> bytes:
    kind, reason = _state(i)
    fields: list[tuple[str, str]] = []
    for sid in pupil_ids:
        fields += [("student", str(sid)), ("kind", kind), ("absence_reason", reason), ("suspension_kind", ""),
                   ("disease", ""), ("kinship_degree", ""), ("detail", ""), ("version", "")]
    return urllib.parse.urlencode(fields).encode()


def _session(user: Any) -> str:
    from django.test import Client

    from komu.testing.world import login_verified

    client = Client()
    login_verified(client, user)
    return str(client.cookies["sessionid"].value)


def _load(port: int, jobs: list[tuple[str, str, list[uuid.UUID]]], seconds: float) -> tuple[list[float], int, float]:
    """16 clients, each saving its own class over and over for `seconds`. Returns latencies, errors, elapsed."""
    csrf = uuid.uuid4().hex  # an unmasked 32-character secret: Django accepts it as cookie and header alike
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(path: str, session: str, pupil_ids: list[uuid.UUID]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true",
                   "X-CSRFToken": csrf, "Cookie": f"sessionid={session}; csrftoken={csrf}",
                   "Referer": f"http://127.0.0.1:{port}/"}
        mine: list[float] = []
        bad = 0
        i = 0
        while time.perf_counter() < deadline:
            body = _body(pupil_ids, i)
            start = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            mine.append(time.perf_counter() - start)
            bad += 0 if ok else 1
            i += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client, args=job) for job in jobs]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http(classes: list[Any], day: datetime.date) -> list[str]:
    from django.db import connections
    from django.urls import reverse

    seconds = float(os.environ.get("KOMU_BENCH_SECONDS", "8"))
    port = _free_port()
    workers = os.cpu_count() or 2
    sessions = [_session(k.teacher) for k in classes]
    connections.close_all()
    env = dict(os.environ, KOMU_DEBUG="0", KOMU_SSL_REDIRECT="0", KOMU_DB_CONN_MAX_AGE="600",
               KOMU_LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="komu.settings")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Its own process group: the workers it forks are stopped with it.
    workers = int(os.environ.get("KOMU_BENCH_WORKERS", str(workers * 2)))
    # gunicorn, the production WSGI server (docs/deployment.md): sync workers, one process per worker.
    server = subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "gunicorn", "bench.bench_attendance:wsgi()", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--worker-class", os.environ.get("KOMU_BENCH_WORKER_CLASS", "sync"),
         "--log-level", "warning", "--keep-alive", "30"],
        env=env, cwd=root, start_new_session=True)
    try:
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
        real = [(reverse("attendance:confirm", kwargs={"class_id": k.pk, "day": day}), s, k.pupil_ids)
                for k, s in zip(classes, sessions, strict=True)]
        bare = [(f"/bench/bare/{k.pk}/{day.isoformat()}/", s, k.pupil_ids)
                for k, s in zip(classes, sessions, strict=True)]
        _load(port, real[:2], 1.0)  # warm both paths: imports, templates, connections
        _load(port, bare[:2], 1.0)
        times, errors, elapsed = _load(port, real, seconds)
        base, base_errors, base_elapsed = _load(port, bare, seconds)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    label = f"class save over HTTP (35 rows + confirm), {len(classes)} clients, {workers} server processes"
    lines = [_line(label, times, "bare Django view upserting the same 35 rows", base, seconds=elapsed,
                   base_seconds=base_elapsed)]
    if errors or base_errors:
        lines.append(f"  errors: {errors} (real), {base_errors} (bare) — non-200 answers or broken connections")
    return lines


def run() -> list[str]:
    from django.db import connection

    classes, day = _build()
    lines = _service(classes, day)
    if connection.vendor == "postgresql":
        lines += _http(classes, day)
    else:
        lines.append("class save over HTTP: skipped (set KOMU_BENCH_DATABASE_URL to a PostgreSQL database)")
    return lines


# --- The server side ---------------------------------------------------------------------------------------------

def bare_save(request: Any, class_id: int, day: str) -> Any:
    """The baseline: the same 35 rows written with one upsert, no session, scope, calendar, versions or audit."""
    from django.db import transaction
    from django.http import HttpResponse

    from komu.attendance.models import Mark

    date = datetime.date.fromisoformat(day)
    students = request.POST.getlist("student")
    kinds = request.POST.getlist("kind")
    reasons = request.POST.getlist("absence_reason")
    user_id = _any_user_id()
    rows = [Mark(student_id=uuid.UUID(s), homeroom_class_id=class_id, date=date, kind=k, absence_reason=r,
                 updated_by_id=user_id) for s, k, r in zip(students, kinds, reasons, strict=True)]
    with transaction.atomic():
        Mark.objects.bulk_create(rows, update_conflicts=True, unique_fields=["student", "date"],
                                 update_fields=["kind", "absence_reason", "updated_at"])
    return HttpResponse(f"{len(rows)}")


_USER_ID: list[Any] = []


def _any_user_id() -> Any:
    if not _USER_ID:
        from komu.accounts.models import User

        _USER_ID.append(User.objects.order_by("pk").values_list("pk", flat=True)[0])
    return _USER_ID[0]


def _urlpatterns() -> list[Any]:
    from django.urls import include, path
    from django.views.decorators.csrf import csrf_exempt

    return [
        path("bench/bare/<int:class_id>/<str:day>/", csrf_exempt(bare_save)),
        path("", include("komu.urls")),
    ]


def __getattr__(name: str) -> Any:
    # The server's ROOT_URLCONF is this module: build its URL list only when Django asks for it.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


def wsgi() -> Any:
    """The server's WSGI application: Komu's, with the bare baseline view added to its URLs."""
    import django

    django.setup()
    from django.conf import settings

    settings.ROOT_URLCONF = "bench.bench_attendance"
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()


def serve(port: int, workers: int) -> None:
    import django

    django.setup()
    from django.conf import settings

    settings.ROOT_URLCONF = "bench.bench_attendance"
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.db import connections

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Shared(ThreadedWSGIServer):
        def server_bind(self) -> None:
            # Every worker process binds the same port; the kernel spreads connections among them.
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()

    connections.close_all()
    for _ in range(workers - 1):
        if os.fork() == 0:
            break
    httpd = Shared(("127.0.0.1", port), Quiet, ipv6=False)
    httpd.set_app(WSGIHandler())
    httpd.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit("usage: python -m bench.bench_attendance serve PORT WORKERS")
