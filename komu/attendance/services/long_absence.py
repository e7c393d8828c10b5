"""長期欠席 (30 days or more absent in a school year): the reason category the school reports in MEXT's survey
(病気, 経済的理由, 不登校, その他). Sensitive: a 不登校 classification is about a child's welfare; it is written and
read only within the school, and every write is audited."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.attendance.models import LongAbsenceCategory, LongAbsenceRecord
from komu.audit.services import Scope, audit_record
from komu.core.errors import ValidationFailed
from komu.directory.models import SchoolYear


@transaction.atomic
def long_absence_record_set(*, actor: Actor, student_id: uuid.UUID | str, year: int,
                            category: str) -> LongAbsenceRecord | None:
    """Record (or change, or with category "" clear) the pupil's 長期欠席 reason category for the school year
    `year` (年度). Scope: pupils whose attendance the actor records."""
    student = scope.get_in_scope(scope.students_for(actor, roles.ATTENDANCE_RECORD).select_related("school"),
                                 pk=student_id)
    if category and category not in LongAbsenceCategory.values:
        message = "長期欠席の理由の区分を「病気」「経済的理由」「不登校」「その他」から選んでください。"
        raise ValidationFailed(message, errors={"category": [message]})
    school_year = SchoolYear.objects.filter(school=student.school, year=year).first()
    if school_year is None:
        raise ValidationFailed(f"{year}年度が登録されていません。")
    existing = LongAbsenceRecord.objects.select_for_update().filter(student=student, school_year=school_year).first()
    old = existing.category if existing else ""
    if old == category:
        return existing
    record: LongAbsenceRecord | None
    if not category:
        assert existing is not None
        existing.delete()
        record = None
    else:
        record = existing or LongAbsenceRecord(student=student, school_year=school_year)
        record.category = category
        record.recorded_by = actor.user
        record.recorded_at = timezone.now()
        record.save()
    audit_record(
        actor=actor.user, action="attendance.long_absence.recorded", obj=student, fields=["long_absence"],
        detail={"year": year, "old": old, "new": category},
        scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
    )
    return record
