"""特別支援教育 placement of a pupil (特別支援学級 / 通級による指導) and its category."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.students.models import SpecialNeedsPlacement, Student
from komu.students.services._common import _checked_text, _save, _student_for_edit

_MAX_SPECIAL_NEEDS_CATEGORY = 200


@transaction.atomic
def student_special_needs_set(*, actor: Actor, student_id: Any, placement: str, category: str = "") -> Student:
    """Record a pupil's 特別支援教育 placement (特別支援学級 / 通級による指導) and its category text.

    The category names a disability, so like the health note only someone who may read sensitive data may
    write it."""
    student = _student_for_edit(actor, student_id)
    if not scope.students_for(actor, roles.STUDENTS_VIEW_SENSITIVE).filter(pk=student.pk).exists():
        raise PermissionDeniedError(_("特別支援教育の情報を変更する権限がありません。"))
    errors: dict[str, list[str]] = {}
    if placement not in SpecialNeedsPlacement.values:
        errors["special_needs_placement"] = [
            _("特別支援教育の形態は「なし」「特別支援学級」「通級による指導」から選んでください。")
        ]
    problems: list[str] = []
    text = _checked_text(category, label=_("障害種別・指導の内容"), limit=_MAX_SPECIAL_NEEDS_CATEGORY,
                         errors=problems)
    if problems:
        errors["special_needs_category"] = problems
    elif placement == SpecialNeedsPlacement.NONE and text:
        errors["special_needs_category"] = [
            _("形態が「なし」のときは障害種別・指導の内容を空欄にしてください。")
        ]
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)
    changed = [name for name, value in (("special_needs_placement", placement), ("special_needs_category", text))
               if getattr(student, name) != value]
    student.special_needs_placement = placement
    student.special_needs_category = text
    _save(student)
    audit_record(
        actor=actor.user, action="students.student.updated", obj=student, fields=changed,
        scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
    )
    return student
