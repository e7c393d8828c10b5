"""Saving a class's register (35 pupils), beside a bare baseline that writes the same 35 rows (issue 4).

Two measurements, each beside its baseline in the same run:

1. Service level, one client: `register_save` (scope, calendar and month checks, row locks, version checks, 35
   mark updates, 35 MarkChange rows, one audit event) against one transaction of 35 upserts sent with the
   driver's executemany.
2. HTTP on loopback, 16 teachers each saving their own class: the real endpoint a teacher's tablet posts
   (session, MFA and CSRF middleware, the 35 rows saved and the register confirmed, one audit event) against a
   bare Django view that upserts the same 35 rows with no checks, served by the same gunicorn in the same run.
   Measured two ways, each for Komu and the bare view:
   - closed loop: 16 connections, each sending its next save when the last is answered — the maximum
     throughput (16 closed-loop clients at p95 ≤ 50 ms would need ≥ 320 saves/s, Little's law);
   - open loop, the issue's target as stated (a rate with 16 concurrent teachers): saves start at a fixed
     200/s (KOMU_BENCH_RATE) spread over 16 connections, each latency measured from the save's scheduled start
     so that queueing counts (wrk2's coordinated-omission correction).
   The load generator is a separate Python process (`python -m bench.bench_attendance load`, threads with
   keep-alive connections, see _generate). Run on PostgreSQL only (SQLite serialises every write, so
   concurrency would measure its lock). Each line carries the load average when it was measured.

`python -m bench` runs both (the HTTP part when KOMU_BENCH_DATABASE_URL points at PostgreSQL);
KOMU_BENCH_SECONDS sets the length of each HTTP run (default 8), KOMU_BENCH_WORKERS and KOMU_BENCH_WORKER_CLASS
the gunicorn workers (default two sync workers per core).
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


# The load generator runs in its own process (`python -m bench.bench_attendance load`, fed a JSON job on stdin,
# answering JSON on stdout), so its threads compete with neither the fixture process's memory nor its GIL. It
# imports nothing from Django. Each of its connections is one teacher saving their own class, alternating between
# the two full states so every save changes all 35 rows; the two bodies are encoded before the clock starts.

def _generate(job: dict[str, Any]) -> dict[str, Any]:
    """Run one load. Closed loop (`rate` 0): every connection sends its next save as soon as the last one is
    answered, for `seconds`: the maximum throughput. Open loop (`rate` > 0, the wrk2 way): saves are scheduled at
    a fixed total rate, spread evenly over the connections (connection i sends at start + (i + n·k) / rate), and
    each latency is measured from the save's *scheduled* start, so a save that waits behind a slow one counts its
    wait (no coordinated omission). Returns the latencies, the errors and the elapsed time."""
    port, seconds, rate = int(job["port"]), float(job["seconds"]), float(job["rate"])
    csrf = uuid.uuid4().hex  # an unmasked 32-character secret: Django accepts it as cookie and header alike
    clients = job["clients"]
    latencies: list[float] = []
    errors = [0]
    missed = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(len(clients) + 1)
    begin = [0.0]

    def client(index: int, path: str, session: str, bodies: list[str]) -> None:
        encoded = [b.encode() for b in bodies]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true",
                   "X-CSRFToken": csrf, "Cookie": f"sessionid={session}; csrftoken={csrf}",
                   "Referer": f"http://127.0.0.1:{port}/"}
        mine: list[float] = []
        bad = late = 0
        i = 0
        barrier.wait()
        start = begin[0]
        deadline = start + seconds
        while True:
            if rate:
                scheduled = start + (index + len(clients) * i) / rate
                if scheduled >= deadline:
                    break
                pause = scheduled - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                elif time.perf_counter() >= deadline:
                    # The run is over and this connection is still behind: what it never sent is counted as
                    # missed, so an overloaded server cannot look fast by answering fewer saves.
                    late += int((deadline - scheduled) * rate / len(clients)) + 1
                    break
            else:
                scheduled = time.perf_counter()
                if scheduled >= deadline:
                    break
            try:
                conn.request("POST", path, body=encoded[i % 2], headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            mine.append(time.perf_counter() - scheduled)
            bad += 0 if ok else 1
            i += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad
            missed[0] += late

    threads = [threading.Thread(target=client, args=(n, *c)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    begin[0] = time.perf_counter() + 0.05
    barrier.wait()
    for t in threads:
        t.join()
    return {"latencies": latencies, "errors": errors[0], "missed": missed[0],
            "elapsed": time.perf_counter() - begin[0]}


def _load(port: int, jobs: list[tuple[str, str, list[bytes]]], seconds: float,
          rate: float = 0.0) -> tuple[list[float], int, int, float]:
    """One load from the generator process (see _generate). Returns latencies, errors, saves scheduled but never
    started (open loop), elapsed seconds."""
    import json

    job = {"port": port, "seconds": seconds, "rate": rate,
           "clients": [(path, session, [b.decode() for b in bodies]) for path, session, bodies in jobs]}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_attendance", "load"], input=json.dumps(job).encode(),
        capture_output=True, check=True, cwd=root, timeout=seconds + 120)
    answer = json.loads(done.stdout)
    return answer["latencies"], int(answer["errors"]), int(answer["missed"]), float(answer["elapsed"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _load_average() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def _http(classes: list[Any], day: datetime.date) -> list[str]:
    from django.db import connections
    from django.urls import reverse

    seconds = float(os.environ.get("KOMU_BENCH_SECONDS", "8"))
    rate = float(os.environ.get("KOMU_BENCH_RATE", "200"))
    port = _free_port()
    sessions = [_session(k.teacher) for k in classes]
    connections.close_all()
    env = dict(os.environ, KOMU_DEBUG="0", KOMU_SSL_REDIRECT="0", KOMU_DB_CONN_MAX_AGE="600",
               KOMU_LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="komu.settings")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # gunicorn, the production WSGI server (docs/deployment.md). Sync workers, two per core: a save is CPU in
    # Python with waits on PostgreSQL in between (about a third of its time on this machine), so a second worker
    # per core fills those waits; more workers only add context switches and memory, and threads in one process
    # would share one GIL for work that is nearly all Python. KOMU_BENCH_WORKERS / _WORKER_CLASS to try others.
    workers = int(os.environ.get("KOMU_BENCH_WORKERS", str((os.cpu_count() or 2) * 2)))
    worker_class = os.environ.get("KOMU_BENCH_WORKER_CLASS", "sync")
    # Its own process group: the workers it forks are stopped with it.
    server = subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "gunicorn", "bench.bench_attendance:wsgi()", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--worker-class", worker_class,
         "--log-level", "warning", "--keep-alive", "30", "--backlog", "256"],
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
        bodies = [[_body(k.pupil_ids, 0), _body(k.pupil_ids, 1)] for k in classes]
        real = [(reverse("attendance:confirm", kwargs={"class_id": k.pk, "day": day}), s, b)
                for k, s, b in zip(classes, sessions, bodies, strict=True)]
        bare = [(f"/bench/bare/{k.pk}/{day.isoformat()}/", s, b)
                for k, s, b in zip(classes, sessions, bodies, strict=True)]
        _load(port, real, 2.0)  # warm both paths in every worker: imports, templates, connections
        _load(port, bare, 2.0)
        runs: dict[str, tuple[list[float], int, int, float, str]] = {}
        # Interleaved (Komu, bare, Komu, bare) so that a change in the machine's other load hits both alike.
        for name, jobs, r in (("closed", real, 0.0), ("closed-bare", bare, 0.0),
                              ("open", real, rate), ("open-bare", bare, rate)):
            runs[name] = (*_load(port, jobs, seconds, r), _load_average())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    server_label = f"gunicorn {workers} {worker_class} workers"
    lines = []
    for mode, label in (("closed", f"closed loop, {len(classes)} clients, maximum throughput"),
                        ("open", f"open loop, {rate:.0f} saves/s scheduled over {len(classes)} connections, "
                                 "latency from the scheduled start")):
        times, errors, missed, elapsed, load = runs[mode]
        base, base_errors, base_missed, base_elapsed, base_load = runs[f"{mode}-bare"]
        lines.append(_line(f"class save over HTTP (35 rows + confirm), {label}, {server_label}", times,
                           "bare Django view upserting the same 35 rows", base, seconds=elapsed,
                           base_seconds=base_elapsed) + f"  |  {load} / {base_load}")
        if errors or base_errors:
            lines.append(f"  errors: {errors} (real), {base_errors} (bare) — non-200 answers or broken connections")
        if missed or base_missed:
            lines.append(f"  fell behind the schedule: {missed} (real), {base_missed} (bare) saves never started "
                         "before the end of the run; the percentiles above leave them out and understate the wait")
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


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "load":
        import json

        print(json.dumps(_generate(json.load(sys.stdin))))
    else:
        sys.exit("usage: python -m bench.bench_attendance load < job.json")
