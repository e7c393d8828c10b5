from __future__ import annotations

import datetime

from komu.attendance.models import ClassClosure, Mark, MarkKind
from komu.attendance.registers import build_month
from komu.students.models import EnrollmentEvent, EnrollmentKind
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


def test_a_pupil_who_leaves_or_joins_within_the_month_is_counted_only_while_enrolled(world: World) -> None:
    klass = world.class_a1
    year = klass.school_year.year
    first, second = world.students["a1_first"], world.students["a1_second"]
    user = world.user("homeroom_a1")
    before = build_month(klass, year, 6)
    unchanged = before.content_hash()
    days = before.days
    leave, join = days[9], days[5]
    EnrollmentEvent.objects.create(student=first, kind=EnrollmentKind.TRANSFER_OUT, date=leave, grade_code="P1",
                                   other_school_name="他市立小学校", recorded_by=user)
    EnrollmentEvent.objects.create(student=second, kind=EnrollmentKind.TRANSFER_IN, date=join, grade_code="P1",
                                   other_school_name="前の小学校", recorded_by=user)
    # A mark on a day the pupil was no longer enrolled counts for nothing.
    Mark.objects.create(student=first, homeroom_class=klass, date=days[12], kind=MarkKind.ABSENT,
                        absence_reason="illness", updated_by=user)
    sheet = build_month(klass, year, 6)
    gone, new = sheet.pupils[0], sheet.pupils[1]
    assert gone.totals.lesson_days == 10 and gone.totals.absent_days == 0
    assert gone.not_enrolled == frozenset(days[10:])
    assert new.totals.lesson_days == len(days) - 5
    assert new.not_enrolled == frozenset(days[:5])
    assert sheet.content_hash() != unchanged
    canonical = sheet.canonical()["pupils"]
    assert isinstance(canonical, list) and "not_enrolled" in canonical[0]
    # A register without such pupils hashes exactly as before (seals made earlier still verify).
    EnrollmentEvent.objects.all().delete()
    Mark.objects.filter(date=days[12]).delete()
    assert build_month(klass, year, 6).content_hash() == unchanged
