from __future__ import annotations

import datetime

from komu.attendance.models import ClassClosure, Mark, MarkKind
from komu.attendance.registers import build_month
from komu.testing.world import World


def test_a_month_sheet_counts_marks_and_closures_and_hashes_stably(world: World) -> None:
    klass = world.class_a1
    year = klass.school_year.year
    june = datetime.date(year, 6, 1)
    first = world.students["a1_first"]
    Mark.objects.create(student=first, homeroom_class=klass, date=datetime.date(year, 6, 2), kind=MarkKind.ABSENT,
                        absence_reason="illness", updated_by=world.user("homeroom_a1"))
    ClassClosure.objects.create(homeroom_class=klass, start_date=datetime.date(year, 6, 4),
                                end_date=datetime.date(year, 6, 5))
    sheet = build_month(klass, june.year, june.month)
    assert [p.shusseki_no for p in sheet.pupils] == [1, 2]
    mine = sheet.pupils[0]
    assert mine.family_name == "髙橋"
    assert mine.totals.absent_days == 1
    assert mine.totals.closure_days == 2
    assert mine.totals.lesson_days == len(sheet.days) > 15
    assert sheet.content_hash() == build_month(klass, june.year, june.month).content_hash()
    Mark.objects.create(student=first, homeroom_class=klass, date=datetime.date(year, 6, 3), kind=MarkKind.LATE,
                        updated_by=world.user("homeroom_a1"))
    assert sheet.content_hash() != build_month(klass, june.year, june.month).content_hash()
