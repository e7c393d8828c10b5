"""学籍の異動 (enrolment history): 入学・編入学・転入学・転学・退学・卒業."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.codes import CodeError, validate_grade_code, validate_school_code
from komu.core.errors import ValidationFailed
from komu.core.wareki import fiscal_year_bounds, fiscal_year_of, to_wareki
from komu.directory.models import School, SchoolYear
from komu.students.models import LEAVING_KINDS, TRANSFER_KINDS, EnrollmentEvent, EnrollmentKind
from komu.students.services._common import _EARLIEST_BIRTH_DATE, _checked_text, _save, _student_for_edit

_MAX_REASON = 500


def _school_year_end(school: School, day: datetime.date) -> datetime.date:
    """The last day of the school year that contains `day`, per the school's own 年度 if recorded."""
    year = fiscal_year_of(day)
    recorded = SchoolYear.objects.filter(school=school, year=year).values_list("end_date", flat=True).first()
    return recorded if recorded is not None else fiscal_year_bounds(year)[1]


@transaction.atomic
def enrollment_event_record(*, actor: Actor, student_id: Any, kind: str, date: datetime.date, grade_code: str,
                            other_school_name: str = "", other_school_code: str = "",
                            reason: str = "") -> EnrollmentEvent:
    """Record one 学籍の異動. 転学・退学・卒業 end the pupil's enrolment (is_active=False) in the same transaction."""
    student = _student_for_edit(actor, student_id)
    errors: dict[str, list[str]] = {}
    if kind not in EnrollmentKind.values:
        errors["kind"] = [_("異動の種類は「入学」「編入学」「転入学」「転学」「退学」「卒業」から選んでください。")]
    # Records are kept ahead of time only within the current school year (卒業 on 3月, 転学 announced in advance).
    latest = _school_year_end(student.school, timezone.localdate())
    if date > latest:
        errors["date"] = [
            _("年月日が今年度より先です。%(latest)s までの日付を入力してください。") % {"latest": latest.isoformat()}
        ]
    elif date < _EARLIEST_BIRTH_DATE:
        errors["date"] = [_("年月日が正しくありません。1900年1月1日以降の日付を入力してください。")]
    try:
        grade = validate_grade_code(grade_code, school_type=student.school.school_type)
    except CodeError as exc:
        errors["grade_code"] = [str(exc)]
        grade = ""
    code = ""
    if other_school_code.strip():
        try:
            code = validate_school_code(other_school_code).code
        except CodeError as exc:
            errors["other_school_code"] = [str(exc)]
        else:
            if code == student.school.code:
                errors["other_school_code"] = [_("他校の学校コードに自校のコードが入力されています。確認してください。")]
    name_problems: list[str] = []
    name = _checked_text(other_school_name, label=_("他校名"), limit=100, errors=name_problems)
    if name_problems:
        errors["other_school_name"] = name_problems
    elif kind in TRANSFER_KINDS and not name:
        errors["other_school_name"] = [_("転入学・転学では相手の学校名を入力してください。")]
    reason_problems: list[str] = []
    reason_text = _checked_text(reason, label=_("事由"), limit=_MAX_REASON, errors=reason_problems, allow="\r\n")
    if reason_problems:
        errors["reason"] = reason_problems
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)
    event = EnrollmentEvent(
        student=student, kind=kind, date=date, grade_code=grade, other_school_name=name,
        other_school_code=code, reason=reason_text, recorded_by=actor.user,
    )
    _save(event)
    deactivated = kind in LEAVING_KINDS and student.is_active
    if deactivated:
        student.is_active = False
        student.save(update_fields=["is_active", "updated_at"])
    audit_record(
        actor=actor.user, action="students.enrollment_event.recorded", obj=student,
        fields=["kind", "date", "grade_code"] + (["reason"] if reason_text else []),
        detail={"event_id": str(event.pk), "kind": kind, "deactivated": deactivated},
        scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
    )
    return event


@transaction.atomic
def enrollment_event_redate(*, actor: Actor, event_id: Any, date: datetime.date, reason: str) -> EnrollmentEvent:
    """Move the date of a 入学 recorded ahead of time (an entrant accepted from a 入学者名簿) when the board changes
    the 入学予定日. Allowed only while the pupil has not started: the school year of the recorded date has not
    begun and that date is still ahead; the new date stays within the same 年度 (the one the pupil awaits).
    After that the 入学 is history, kept as it is. Setting the date it already has changes and records nothing."""
    event: EnrollmentEvent = scope.get_in_scope(
        EnrollmentEvent.objects.select_for_update(of=("self",))
        .filter(student__in=scope.students_for(actor, roles.STUDENTS_EDIT))
        .select_related("student__school"),
        pk=event_id,
    )
    student = event.student
    if event.kind != EnrollmentKind.ADMISSION:
        raise ValidationFailed(_("年月日を移せるのは、前もって記録された「入学」だけです。"))
    if date == event.date:
        return event
    year = fiscal_year_of(event.date)
    start, end = fiscal_year_bounds(year)
    today = timezone.localdate()
    errors: dict[str, list[str]] = {}
    if today >= start or today >= event.date:
        errors["date"] = [
            _("%(year)d年度はすでに始まっているため、入学の年月日（%(old)s）は変更できません。"
              "必要なら学籍の異動として記録してください。")
            % {"year": year, "old": to_wareki(event.date)}
        ]
    elif not start <= date <= end:
        errors["date"] = [
            _("入学の年月日は%(year)d年度の中（%(start)s〜%(end)s）で入力してください。")
            % {"year": year, "start": to_wareki(start), "end": to_wareki(end)}
        ]
    reason_problems: list[str] = []
    reason_text = _checked_text(reason, label=_("事由"), limit=_MAX_REASON, errors=reason_problems, allow="\r\n")
    if reason_problems:
        errors["reason"] = reason_problems
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)
    old = event.date
    event.date = date
    _save(event)
    audit_record(
        actor=actor.user, action="students.enrollment_event.redated", obj=student, fields=["enrollment_event.date"],
        detail={"event_id": str(event.pk), "kind": event.kind, "old": old.isoformat(), "new": date.isoformat(),
                "reason": reason_text[:200]},
        scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
    )
    return event
