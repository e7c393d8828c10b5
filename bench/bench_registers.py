"""Monthly 出席簿 for a school of 1,000 pupils (≤ 1 s) and one class's PDF (≤ 2 s) — issue 4.

1. Every class's month register of a 1,000-pupil school (29 classes of 34–35, a month of 授業日 with exceptions
   marked for about one pupil in eight each day), built as the principal's screen builds it
   (`monthly_register_get_for`: scope, calendar and rules, marks, day-by-day totals, approval state, one audit
   event per class). Baseline, same run: one SQL query fetching the same marks rows through the driver and
   counting them per pupil and kind in Python — the least any register must do.
2. One class's monthly register as a PDF (`monthly_register_print_for` + `monthly_register_pdf`: seals verified,
   Japanese fonts, grid, totals). Baseline, same run: reportlab drawing the same number of text cells (names and
   day symbols) on an A4 landscape page with a built-in CID font, no layout logic.
"""

from __future__ import annotations

import datetime
import io
import statistics
import time
import uuid
from typing import Any

PUPILS = 1000
CLASS_SIZE = 35
REPEATS = 3


def _build() -> tuple[Any, list[Any], int, int]:
    from django.utils import timezone

    from komu.attendance import calendar
    from komu.attendance.models import Mark
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
    board = Board.objects.create(code=f"137{int(tag, 16) % 1000:03d}", name="月報ベンチ市教育委員会",
                                 kind=Board.Kind.MUNICIPAL, prefecture=prefecture)
    school = School.objects.create(
        code=make_school_code("B1", "13", "2", f"{(int(tag, 16) + 7) % 10_000_000:07d}"), name="月報ベンチ小学校",
        school_type="B1", board=board, prefecture=prefecture,
    )
    fiscal = fiscal_year_of(today)
    start, end = fiscal_year_bounds(fiscal)
    year = SchoolYear.objects.create(school=school, year=fiscal, start_date=start, end_date=end)
    # The last complete month before today (or the year's first month early in April).
    first_of_month = today.replace(day=1)
    month_end = first_of_month - datetime.timedelta(days=1)
    if month_end < start:
        month_end = (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1) - datetime.timedelta(days=1)
    y, m = month_end.year, month_end.month
    first, last = calendar.month_bounds(y, m)
    days = calendar.school_days(year, first, last)
    principal = make_user(f"bench-p{tag}")
    StaffAssignment.objects.create(user=principal, role=Role.PRINCIPAL, school=school)
    classes = []
    made = 0
    n = 0
    kinds = [("absent", "illness"), ("late", ""), ("early_leave", ""), ("absent", "other")]
    while made < PUPILS:
        size = min(CLASS_SIZE, PUPILS - made)
        klass = HomeroomClass.objects.create(school_year=year, grade_code=f"P{n % 6 + 1}", name=f"{n + 1}組",
                                             sort_order=n)
        students = [Student(school=school, family_name="試験", given_name=f"児童{made + i}",
                            family_name_kana="シケン", given_name_kana="ジドウ") for i in range(size)]
        Student.objects.bulk_create(students)
        ClassMembership.objects.bulk_create(
            [ClassMembership(student=s, homeroom_class=klass, shusseki_no=i + 1) for i, s in enumerate(students)]
        )
        marks = []
        for d_index, day in enumerate(days):
            for i, s in enumerate(students):
                if (i + d_index) % 8 == 0:
                    kind, reason = kinds[(i + d_index) % len(kinds)]
                    marks.append(Mark(student=s, homeroom_class=klass, date=day, kind=kind, absence_reason=reason,
                                      updated_by=principal))
        Mark.objects.bulk_create(marks)
        classes.append(klass)
        made += size
        n += 1
    return principal, classes, y, m


def _registers(principal: Any, classes: list[Any], y: int, m: int) -> str:
    from django.db import connection

    from komu.access.scope import forget_actor, get_actor
    from komu.attendance.selectors.monthly import monthly_register_get_for

    times = []
    for _ in range(REPEATS):
        forget_actor(principal)
        started = time.perf_counter()
        actor = get_actor(principal)
        pages = [monthly_register_get_for(actor=actor, class_id=k.pk, year=y, month=m) for k in classes]
        times.append(time.perf_counter() - started)
        assert len(pages) == len(classes)
    first, last = datetime.date(y, m, 1), (datetime.date(y, m, 28) + datetime.timedelta(days=4)).replace(day=1)
    ids = [k.pk for k in classes]
    base = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        counts: dict[tuple[Any, str], int] = {}
        with connection.cursor() as cursor:
            placeholders = ",".join(["%s"] * len(ids))
            cursor.execute(
                "SELECT student_id, kind, absence_reason FROM attendance_mark "  # noqa: S608 - placeholders only
                f"WHERE homeroom_class_id IN ({placeholders}) AND date >= %s AND date < %s",
                [*ids, first, last],
            )
            for student_id, kind, _reason in cursor.fetchall():
                counts[(student_id, kind)] = counts.get((student_id, kind), 0) + 1
        base.append(time.perf_counter() - started)
    best, base_best = min(times), min(base)
    return (f"monthly 出席簿, every class of a {PUPILS:,}-pupil school ({len(classes)} classes): "
            f"{best:.3f} s (median {statistics.median(times):.3f} s, target ≤ 1 s)  |  baseline one SQL query "
            f"of the same marks counted in Python: {base_best:.3f} s  |  ratio {base_best / best:.3f}")


def _pdf(principal: Any, klass: Any, y: int, m: int) -> str:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    from komu.access.scope import get_actor
    from komu.attendance.pdf import monthly_register_pdf
    from komu.attendance.selectors.monthly import monthly_register_print_for

    actor = get_actor(principal)
    times = []
    size = 0
    page = None
    for _ in range(REPEATS):
        started = time.perf_counter()
        page = monthly_register_print_for(actor=actor, class_id=klass.pk, year=y, month=m)
        result = monthly_register_pdf(page, printed_by="ベンチ 校長")
        times.append(time.perf_counter() - started)
        size = len(result.content)
    assert page is not None
    rows = len(page.rows)
    days = len(page.days)
    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    base = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        buffer = io.BytesIO()
        pen = canvas.Canvas(buffer, pagesize=landscape(A4))
        pen.setFont("HeiseiKakuGo-W5", 7)
        for r in range(rows):
            pen.drawString(20, 560 - r * 14, "試験 児童")
            for d in range(days):
                pen.drawString(120 + d * 20, 560 - r * 14, "／")
        pen.showPage()
        pen.save()
        base.append(time.perf_counter() - started)
    best, base_best = min(times), min(base)
    return (f"one class's monthly 出席簿 PDF ({rows} pupils, seals verified, {size / 1024:.0f} KiB): {best:.3f} s "
            f"(target ≤ 2 s)  |  baseline reportlab drawing the same {rows}×{days} cells with a CID font: "
            f"{base_best:.3f} s  |  ratio {base_best / best:.2f}")


def run() -> list[str]:
    principal, classes, y, m = _build()
    return [_registers(principal, classes, y, m), _pdf(principal, classes[0], y, m)]
