"""Helpers shared by the students services: the edit-scope checks, validated save, and text checks."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.core.text import TextError, reject_control_chars
from komu.directory.models import School
from komu.students.models import Student

# The oldest birth date accepted: 和暦 display starts in 1873, and no pupil or adult learner is older.
_EARLIEST_BIRTH_DATE = datetime.date(1900, 1, 1)
_MAX_ADDRESS = 200


def _require_edit(actor: Actor, school: School) -> None:
    if not scope.schools_for(actor, roles.STUDENTS_EDIT).filter(pk=school.pk).exists():
        raise PermissionDeniedError("この学校の児童生徒を編集する権限がありません。")


def _save(obj: Any) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise ValidationFailed("入力内容を確認してください。", errors=exc.message_dict) from exc
    obj.save()


_MAX_RELATIONSHIP = 20


def _checked_text(text: str, *, label: str, limit: int, errors: list[str], allow: str = "") -> str:
    try:
        reject_control_chars(text, label, allow=allow)
    except TextError as exc:
        errors.append(str(exc))
        return ""
    cleaned = text.strip()
    if len(cleaned) > limit:
        errors.append(
            _("%(label)sが長すぎます（%(length)d文字）。%(limit)d文字以内で入力してください。")
            % {"label": label, "length": len(cleaned), "limit": limit}
        )
    return cleaned


def _student_for_edit(actor: Actor, student_id: Any) -> Student:
    # Same scope as student_update: a pupil outside the actor's editing scope answers NotFoundOrNoAccess.
    student: Student = scope.get_in_scope(
        scope.students_for(actor, roles.STUDENTS_EDIT).select_related("school"), pk=student_id
    )
    return student
