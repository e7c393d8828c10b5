"""OneRoster (issue 8): CSV export of a board with 100,000 pupils, and REST page latency.

Targets: export ≤ 10 s with bounded memory; REST 100-item page p50 ≤ 20 ms on PostgreSQL. Baselines measured
in the same run:
- export: reading and decrypting the same pupils' four name fields (the floor any export pays); the export is
  measured first (every sourcedId assigned) and repeated, with the growth of the process's peak memory (the
  files are spooled and zipped to a temporary file, as `komu oneroster export --zip` writes them);
- REST: the same endpoint stack answering /schools (a handful of items: auth, rate limit, JSON, no paging work).
KOMU_BENCH_ONEROSTER_PUPILS sets the size (default 100,000).
"""

from __future__ import annotations

import base64
import os
import resource
import statistics
import tempfile
import time
import uuid
from typing import Any

PUPILS = int(os.environ.get("KOMU_BENCH_ONEROSTER_PUPILS", "100000"))
PER_CLASS = 30
SCHOOLS = 20


def _build() -> Any:
    from django.db import connection
    from django.utils import timezone

    from komu.core.codes import make_school_code
    from komu.core.wareki import fiscal_year_bounds, fiscal_year_of
    from komu.directory.models import Board, HomeroomClass, Prefecture, School, SchoolYear
    from komu.students.models import ClassMembership, Student

    prefecture = Prefecture.objects.get(code="13")
    tag = int(uuid.uuid4().hex[:4], 16)
    board = Board.objects.create(code=f"137{tag % 1000:03d}", name="ベンチ市教育委員会", kind=Board.Kind.MUNICIPAL,
                                 prefecture=prefecture)
    fiscal = fiscal_year_of(timezone.localdate())
    start, end = fiscal_year_bounds(fiscal)
    per_school = PUPILS // SCHOOLS
    for s in range(SCHOOLS):
        school = School.objects.create(code=make_school_code("B1", "13", "2", f"{(tag * 100 + s) % 10_000_000:07d}"),
                                       name=f"ベンチ第{s + 1}小学校", school_type="B1", board=board,
                                       prefecture=prefecture)
        year = SchoolYear.objects.create(school=school, year=fiscal, start_date=start, end_date=end)
        classes = [HomeroomClass.objects.create(school_year=year, grade_code=f"P{c % 6 + 1}", name=f"{c // 6 + 1}組")
                   for c in range((per_school + PER_CLASS - 1) // PER_CLASS)]
        students = [Student(school=school, family_name="試験", given_name=f"児童{p}", family_name_kana="シケン",
                            given_name_kana="ジドウ", sex="female" if p % 2 else "male")
                    for p in range(per_school)]
        Student.objects.bulk_create(students, batch_size=2000)
        ClassMembership.objects.bulk_create(
            [ClassMembership(student=st, homeroom_class=classes[i // PER_CLASS], shusseki_no=i % PER_CLASS + 1)
             for i, st in enumerate(students)], batch_size=5000)
    if connection.vendor == "postgresql":
        # A production database has planner statistics (autovacuum); a table filled a second ago does not.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return board


def _decrypt_baseline(board: Any) -> float:
    from komu.students.models import Student

    start = time.perf_counter()
    n = 0
    for s in Student.objects.filter(school__board=board).iterator(chunk_size=2000):
        n += len(s.family_name) + len(s.given_name) + len(s.family_name_kana) + len(s.given_name_kana)
    return time.perf_counter() - start


def _export(board: Any) -> tuple[float, float]:
    from komu.oneroster.selectors import export_scope_for
    from komu.oneroster.services import console_actor, roster_export

    actor = console_actor(board_ids=[board.pk])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    scope = export_scope_for(actor=actor, board_code=board.code)
    result = roster_export(actor=actor, roster_scope=scope, since=None, reason="bench")
    with tempfile.TemporaryFile() as archive:
        result.parts.write_zip(archive)
    result.parts.close()
    elapsed = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return elapsed, grown


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rest(board: Any) -> list[str]:
    from django.test import Client

    from komu.access.scope import Actor, Grant
    from komu.directory.models import Role, School
    from komu.oneroster.services import SCOPE_ROSTER, client_create
    from komu.testing.world import make_user

    user = make_user(f"bench-or-{uuid.uuid4().hex[:6]}")
    actor = Actor(user=user, grants=(Grant(role=Role.BOARD_OFFICER, board_id=board.pk),))
    issued = client_create(actor=actor, board_id=board.pk, name="bench",
                           school_ids=list(School.objects.filter(board=board).values_list("pk", flat=True)),
                           scopes=[SCOPE_ROSTER], rate_limit_per_minute=100_000)
    http = Client()
    basic = base64.b64encode(f"{issued.client.client_id}:{issued.secret}".encode()).decode()
    token = http.post("/ims/oneroster/token", {"grant_type": "client_credentials"},
                      headers={"Authorization": f"Basic {basic}"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    base = "/ims/oneroster/rostering/v1p2"
    start = time.perf_counter()
    first = http.get(f"{base}/students", {"limit": "100"}, headers=auth)
    cold = time.perf_counter() - start
    total = int(first["X-Total-Count"])
    pages: list[float] = []
    small: list[float] = []
    for i in range(60):
        offset = (i * 7919 * 100) % max(1, total - 100)
        t = time.perf_counter()
        response = http.get(f"{base}/students", {"limit": "100", "offset": str(offset)}, headers=auth)
        pages.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200
        t = time.perf_counter()
        http.get(f"{base}/schools", headers=auth)
        small.append((time.perf_counter() - t) * 1000)
    filtered: list[float] = []
    for _ in range(10):
        t = time.perf_counter()
        http.get(f"{base}/students", {"limit": "100", "filter": "givenName~'児童1' AND sourcedId>'8'"}, headers=auth)
        filtered.append((time.perf_counter() - t) * 1000)
    return [
        f"oneroster REST first page (roster build, {total:,} pupils): {cold:.1f} s",
        f"oneroster REST /students 100-item page: p50 {statistics.median(pages):.1f} ms, p95 {_pct(pages, 0.95):.1f} ms"
        f"  |  baseline /schools ({SCHOOLS} items): p50 {statistics.median(small):.1f} ms",
        f"oneroster REST /students with a filter (~ and >): p50 {statistics.median(filtered):.1f} ms",
    ]


def run() -> list[str]:
    from django.conf import settings

    settings.ONEROSTER_REST_CACHE_SECONDS = 600
    t = time.perf_counter()
    board = _build()
    built = time.perf_counter() - t
    baseline = _decrypt_baseline(board)
    elapsed, grown = _export(board)
    again, _grown = _export(board)
    lines = [
        f"# OneRoster — {PUPILS:,} pupils in {SCHOOLS} schools (built in {built:.0f} s)",
        f"oneroster CSV export, first (bulk, 8 files + zip, sourcedIds assigned): {elapsed:.1f} s, peak memory"
        f" +{grown:,.0f} MiB  |  baseline decrypting the pupils' names: {baseline:.1f} s  |  ratio {elapsed / baseline:.1f}",
        f"oneroster CSV export, repeated (sourcedIds known): {again:.1f} s, peak memory +{_grown:,.0f} MiB"
        f"  |  ratio {again / baseline:.1f}",
    ]
    return lines + _rest(board)
