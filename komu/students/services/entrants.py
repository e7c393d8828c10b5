"""入学者名簿の受入 (komu.rosters): entrants of the coming 年度 — admission, its cancellation, and the board's
特別支援学級 amendment before the school year."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.codes import CodeError, validate_grade_code
from komu.core.errors import ValidationFailed
from komu.core.wareki import fiscal_year_bounds
from komu.directory.models import School
from komu.students.models import (
    ClassMembership,
    EnrollmentEvent,
    EnrollmentKind,
    SpecialNeedsPlacement,
    Student,
)
from komu.students.services._common import _require_edit, _save, _student_for_edit
from komu.students.services.guardians import GuardianInput, guardian_create_for
from komu.students.services.students import StudentInput, student_create


@dataclass
class EntrantAdmission:
    """One child of an accepted 入学者名簿: the pupil, their guardian (if the board gave one) and the admission."""

    student: StudentInput
    special_needs_placement: str
    admission_date: datetime.date
    grade_code: str
    pending_year: int
    guardian: GuardianInput | None = None
    relationship: str = ""


@transaction.atomic
def entrant_admit(*, actor: Actor, school: School, data: EntrantAdmission) -> Student:
    """Create an entrant accepted from a roster: the pupil (awaiting class placement in ``pending_year`` and
    ``grade_code``), their guardian link and the 入学 event.

    Unlike enrollment_event_record, the 入学 date lies in the coming school year: the roster is accepted in
    winter for April, so the event is recorded ahead of time by design."""
    _require_edit(actor, school)
    try:
        grade = validate_grade_code(data.grade_code, school_type=school.school_type)
    except CodeError as exc:
        raise ValidationFailed("入力内容を確認してください。", errors={"grade_code": [str(exc)]}) from exc
    if data.special_needs_placement not in SpecialNeedsPlacement.values:
        raise ValidationFailed("入力内容を確認してください。", errors={"special_needs_placement": [
            _("特別支援教育の形態は「なし」「特別支援学級」「通級による指導」から選んでください。")
        ]})
    student = student_create(actor=actor, school=school, data=data.student)
    student.special_needs_placement = data.special_needs_placement
    student.pending_year = data.pending_year
    student.pending_grade_code = grade
    _save(student)
    if data.guardian is not None:
        guardian_create_for(actor=actor, student=student, data=data.guardian,
                            relationship=data.relationship.strip() or _("保護者"))
    event = EnrollmentEvent(student=student, kind=EnrollmentKind.ADMISSION, date=data.admission_date,
                            grade_code=grade, recorded_by=actor.user)
    _save(event)
    audit_record(
        actor=actor.user, action="students.entrant.admitted", obj=student,
        fields=["special_needs_placement", "pending_year", "pending_grade_code", "enrollment_event.kind"],
        detail={"event_id": str(event.pk), "pending_year": data.pending_year, "grade_code": grade},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return student


@transaction.atomic
def entrant_admission_cancel(*, actor: Actor, student_id: Any, fiscal_year: int, reason: str) -> Student:
    """Undo the admission of an entrant who will not come (the board withdrew the child from the roster: 転出,
    就学猶予, another school designated) before the school year starts: the pupil leaves the registry
    (is_active=False), the planned 入学 event and any class placement in that year are removed. A pupil who has
    already started school cannot be cancelled this way (record 転学・退学 instead)."""
    student = _student_for_edit(actor, student_id)
    start = fiscal_year_bounds(fiscal_year)[0]
    if timezone.localdate() >= start:
        raise ValidationFailed(_("入学後の児童生徒は取り消せません。転学・退学として記録してください。"))
    events = EnrollmentEvent.objects.filter(student=student, kind=EnrollmentKind.ADMISSION, date__gte=start)
    removed_events = events.count()
    events.delete()
    removed_classes = ClassMembership.objects.filter(
        student=student, homeroom_class__school_year__year=fiscal_year
    ).delete()[0]
    student.is_active = False
    student.pending_year = None
    student.pending_grade_code = ""
    _save(student)
    audit_record(
        actor=actor.user, action="students.entrant.admission_cancelled", obj=student,
        fields=["is_active", "pending_year", "pending_grade_code"],
        detail={"fiscal_year": fiscal_year, "events_removed": removed_events, "memberships_removed": removed_classes,
                "reason": reason[:200]},
        scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
    )
    return student

@transaction.atomic
def entrant_special_needs_class_set(*, actor: Actor, student_id: Any, special_needs_class: bool) -> Student:
    """The board changed an entrant's 特別支援学級 placement before the school year (a roster amendment): switch
    between なし and 特別支援学級. Only for pupils still awaiting class placement; no category text is written,
    so it needs no sensitive-data capability (student_special_needs_set is the general tool)."""
    student = _student_for_edit(actor, student_id)
    if student.pending_year is None:
        raise ValidationFailed(_("学級編制済みの児童生徒です。特別支援教育の形態は児童生徒の画面で変更してください。"))
    placement = SpecialNeedsPlacement.SPECIAL_NEEDS_CLASS if special_needs_class else SpecialNeedsPlacement.NONE
    if student.special_needs_placement != placement:
        student.special_needs_placement = placement
        _save(student)
        audit_record(
            actor=actor.user, action="students.student.updated", obj=student, fields=["special_needs_placement"],
            scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
        )
    return student
