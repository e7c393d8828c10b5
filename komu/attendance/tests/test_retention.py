"""Retention: registers are kept five years after their school year ends, then purged with a record of what went."""

from __future__ import annotations

import datetime
from io import StringIO
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.utils import timezone

from komu.approvals.models import ApprovalRequest
from komu.attendance.models import (
    DailyRegister,
    GuardianReport,
    LongAbsenceRecord,
    Mark,
    MarkChange,
    MarkKind,
    MonthlyRegister,
    PeriodMark,
    SaveReceipt,
)
from komu.attendance.services import marks, retention
from komu.attendance.tests.entry_helpers import _fast_password_hashing, a_school_day, actor  # noqa: F401
from komu.audit.models import AuditEvent
from komu.core.errors import ValidationFailed
from komu.directory.models import HomeroomClass, School, SchoolYear
from komu.students.models import ClassMembership
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _old_year(world: World, school: School, year: int, pupil: str) -> HomeroomClass:
    """A past school year with one class and a full set of attendance rows for one pupil."""
    school_year = SchoolYear.objects.create(school=school, year=year, start_date=datetime.date(year, 4, 1),
                                            end_date=datetime.date(year + 1, 3, 31))
    klass = HomeroomClass.objects.create(school_year=school_year, grade_code="P1", name=f"{year}年1組")
    student = world.students[pupil]
    ClassMembership.objects.create(student=student, homeroom_class=klass, shusseki_no=1)
    user = world.user("homeroom_a1")
    day = datetime.date(year, 6, 3)
    now = timezone.now()
    Mark.objects.create(student=student, homeroom_class=klass, date=day, kind=MarkKind.LATE, updated_by=user)
    PeriodMark.objects.create(student=student, homeroom_class=klass, date=day, period=1, kind=MarkKind.ABSENT,
                              updated_by=user)
    MarkChange.objects.create(student=student, homeroom_class=klass, date=day, old_kind="present", new_kind="late",
                              changed_by=user, changed_at=now, version=1)
    DailyRegister.objects.create(homeroom_class=klass, date=day, entered_by=user, entered_at=now)
    register = MonthlyRegister.objects.create(homeroom_class=klass, year=year, month=6,
                                              status=MonthlyRegister.Status.LOCKED)
    ApprovalRequest.objects.create(
        school=school, document_type="attendance.monthly_register",
        content_type=ContentType.objects.get_for_model(MonthlyRegister), object_id=str(register.pk),
        title="出席簿", content_hash="0" * 64, steps=[{"role": "principal"}], submitted_by=user, submitted_at=now,
    )
    guardian = world.guardians["guardian_a"].user
    GuardianReport.objects.create(
        student=student, guardian_user=guardian, login_id="guardian", date=day, kind=GuardianReport.Kind.ABSENT,
        reason_code="fever", reason_category="illness", submitted_at=now, content_hash="0" * 64,
    )
    LongAbsenceRecord.objects.create(student=student, school_year=school_year, category="illness", recorded_by=user,
                                     recorded_at=now)
    return klass


@pytest.fixture
def history(world: World) -> World:
    _old_year(world, world.school_a, 2014, "a1_first")
    _old_year(world, world.school_b, 2015, "b1_first")
    marks.mark_set(actor=actor(world, "homeroom_a1"), student_id=world.students["a1_first"].pk,
                   date=a_school_day(world.class_a1), kind=MarkKind.LATE)
    return world


def test_a_dry_run_counts_and_deletes_nothing(history: World) -> None:
    report = retention.attendance_purge(before_year=2016, dry_run=True)
    assert [(y.school_code, y.year) for y in report.years] == sorted(
        [(history.school_a.code, 2014), (history.school_b.code, 2015)])
    assert all(y.counts == {"marks": 1, "period_marks": 1, "mark_changes": 1, "guardian_reports": 1,
                            "approval_requests": 1, "daily_registers": 1, "monthly_registers": 1,
                            "long_absence_records": 1} for y in report.years)
    assert Mark.objects.count() == 3 and MarkChange.objects.count() == 3
    assert not AuditEvent.objects.filter(action="attendance.retention.purged").exists()


def test_a_purge_removes_only_years_whose_retention_has_ended_and_records_it(history: World) -> None:
    report = retention.attendance_purge(before_year=2015)
    assert [(y.school_code, y.year) for y in report.years] == [(history.school_a.code, 2014)]
    assert not Mark.objects.filter(homeroom_class__school_year__year=2014).exists()
    assert not LongAbsenceRecord.objects.filter(school_year__year=2014).exists()
    assert not GuardianReport.objects.filter(date__year=2014).exists()
    assert ApprovalRequest.objects.count() == 1  # 2015's stays
    assert GuardianReport.objects.filter(date__year=2015).count() == 1
    assert Mark.objects.filter(homeroom_class__school_year__year=2015).count() == 1
    assert Mark.objects.filter(homeroom_class=history.class_a1).count() == 1  # this year's mark stays
    event = AuditEvent.objects.get(action="attendance.retention.purged")
    assert event.school_id == history.school_a.pk and event.actor_username == "system"
    assert event.detail["year"] == 2014 and event.detail["counts"]["marks"] == 1
    assert event.detail["kept_until"] == "2020-03-31"


def test_a_purge_that_would_reach_a_year_still_kept_removes_nothing(history: World) -> None:
    current = history.class_a1.school_year.year
    with pytest.raises(ValidationFailed, match="まで保存期間です"):
        retention.attendance_purge(before_year=current + 1)
    assert Mark.objects.count() == 3


def test_the_last_day_of_retention_still_keeps_the_year(history: World) -> None:
    # 2014年度 ends 2015-03-31 and is kept until 2020-03-31 inclusive.
    with pytest.raises(ValidationFailed):
        retention.attendance_purge(before_year=2015, today=datetime.date(2020, 3, 31))
    assert retention.attendance_purge(before_year=2015, today=datetime.date(2020, 4, 1)).years


@pytest.mark.parametrize(("today", "expected"), [
    (datetime.date(2026, 11, 26), 2021),  # 2020年度 ended 2021-03-31, kept until 2026-03-31
    (datetime.date(2026, 3, 31), 2020),
    (datetime.date(2026, 4, 1), 2021),
])
def test_the_default_before_year_is_the_first_year_still_kept(today: datetime.date, expected: int) -> None:
    assert retention.latest_purgeable_before_year(today) == expected


def test_old_save_receipts_are_dropped(history: World) -> None:
    day = a_school_day(history.class_a1)
    old = SaveReceipt.objects.create(key="old", actor=history.user("homeroom_a1"),
                                     student=history.students["a1_first"], date=day,
                                     created_at=timezone.now() - datetime.timedelta(days=8))
    fresh = SaveReceipt.objects.create(key="new", actor=history.user("homeroom_a1"),
                                       student=history.students["a1_first"], date=day, created_at=timezone.now())
    report = retention.attendance_purge(before_year=2014)
    assert report.receipts == 1
    assert not SaveReceipt.objects.filter(pk=old.pk).exists() and SaveReceipt.objects.filter(pk=fresh.pk).exists()


def test_the_command_prints_what_it_would_remove_and_then_removes_it(history: World) -> None:
    out = StringIO()
    call_command("attendance", "purge", "--before-year", "2016", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "2014年度: 出欠の記録 1、時限ごとの出欠 1、訂正履歴 1" in text
    assert "--dry-run のため削除していません" in text
    assert Mark.objects.count() == 3
    out = StringIO()
    call_command("attendance", "purge", "--before-year", "2016", stdout=out)
    assert "16 件を削除しました（2 校・年度）" in out.getvalue()
    assert Mark.objects.count() == 1
    assert AuditEvent.objects.filter(action="attendance.retention.purged", channel="cli").count() == 2


def test_the_command_refuses_a_year_still_kept(history: World) -> None:
    with pytest.raises(CommandError, match="保存期間です"):
        call_command("attendance", "purge", "--before-year", str(history.class_a1.school_year.year + 1))
    assert Mark.objects.count() == 3


def test_the_scheduled_task_purges_by_the_rule(history: World, settings: Any) -> None:
    from komu.attendance.tasks import purge_expired_registers

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    result = purge_expired_registers.enqueue()
    assert result.return_value["before_year"] == retention.latest_purgeable_before_year()
    assert {y["year"] for y in result.return_value["years"]} == {2014, 2015}
    assert Mark.objects.count() == 1
