"""Pupils (児童生徒): create and update the record."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.core.text import TextError, check_name, normalize_kana, reject_control_chars
from komu.directory.models import School
from komu.students.models import Sex, Student
from komu.students.services._common import _EARLIEST_BIRTH_DATE, _MAX_ADDRESS, _require_edit, _save

# The fields of StudentInput, in form order; student_update's `only` names a subset of them.
PERSONAL_STUDENT_FIELDS = (
    "family_name", "given_name", "family_name_kana", "given_name_kana", "sex", "birth_date", "address",
    "health_note",
)


@dataclass
class StudentInput:
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    sex: str = Sex.UNSPECIFIED
    birth_date: datetime.date | None = None
    address: str = ""
    health_note: str = ""


_LABELS = {
    "family_name": gettext_lazy("姓"), "given_name": gettext_lazy("名"),
    "family_name_kana": gettext_lazy("姓（ふりがな）"), "given_name_kana": gettext_lazy("名（ふりがな）"),
    "address": gettext_lazy("住所"), "health_note": gettext_lazy("健康上の配慮"),
}
_MAX_HEALTH_NOTE = 2000


def _clean_student_input(data: StudentInput) -> tuple[dict[str, Any], bool]:
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    needs_review = False
    for name in ("family_name", "given_name"):
        raw = getattr(data, name)
        if not raw.strip():
            errors.setdefault(name, []).append(_("%(label)sを入力してください。") % {"label": _LABELS[name]})
            continue
        try:
            checked = check_name(raw, field=str(_LABELS[name]))
            values[name] = checked.value
            needs_review = needs_review or checked.needs_review
        except TextError as exc:
            errors.setdefault(name, []).append(str(exc))
    for name in ("family_name_kana", "given_name_kana"):
        try:
            values[name] = normalize_kana(getattr(data, name), field=str(_LABELS[name]))
        except TextError as exc:
            errors.setdefault(name, []).append(str(exc))
            continue
        if not values[name]:
            errors.setdefault(name, []).append(
                _("%(label)sをカタカナまたはひらがなで入力してください。") % {"label": _LABELS[name]}
            )
    if data.sex not in Sex.values:
        errors.setdefault("sex", []).append(_("性別は「男」「女」「未設定」から選んでください。"))
    if data.birth_date is not None and not _EARLIEST_BIRTH_DATE <= data.birth_date <= timezone.localdate():
        errors.setdefault("birth_date", []).append(
            _("生年月日が正しくありません。1900年1月1日から今日までの日付を入力してください。")
        )
    for name, limit, allow in (("address", _MAX_ADDRESS, ""), ("health_note", _MAX_HEALTH_NOTE, "\r\n")):
        text = getattr(data, name)
        try:
            reject_control_chars(text, str(_LABELS[name]), allow=allow)
        except TextError as exc:
            errors.setdefault(name, []).append(str(exc))
            continue
        if len(text) > limit:
            errors.setdefault(name, []).append(
                _("%(label)sが長すぎます（%(length)d文字）。%(limit)d文字以内で入力してください。")
                % {"label": _LABELS[name], "length": len(text), "limit": limit}
            )
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)
    values.update(sex=data.sex, birth_date=data.birth_date, address=data.address.strip(),
                  health_note=data.health_note.strip())
    return values, needs_review


@transaction.atomic
def student_create(*, actor: Actor, school: School, data: StudentInput) -> Student:
    _require_edit(actor, school)
    values, needs_review = _clean_student_input(data)
    student = Student(school=school, needs_review=needs_review, **values)
    _save(student)
    audit_record(
        actor=actor.user, action="students.student.created", obj=student,
        fields=[f for f in PERSONAL_STUDENT_FIELDS if values.get(f)],
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return student


@transaction.atomic
def student_update(*, actor: Actor, student_id: Any, data: StudentInput,
                   only: Collection[str] | None = None) -> Student:
    """Change a pupil's record. `only` names the fields to take from `data` (a partial update: a form without
    the health note, an API PATCH); the others keep their stored values.

    The health note is sensitive (情報資産 class I): only someone who may read it may write it, so a board
    officer's edit cannot overwrite what they are not allowed to see."""
    student: Student = scope.get_in_scope(
        scope.students_for(actor, roles.STUDENTS_EDIT).select_related("school"), pk=student_id
    )
    applied = set(PERSONAL_STUDENT_FIELDS if only is None else only)
    unknown = applied - set(PERSONAL_STUDENT_FIELDS)
    if unknown:
        raise ValueError(f"student_update: unknown fields {sorted(unknown)}")
    if "health_note" in applied and not scope.students_for(actor, roles.STUDENTS_VIEW_SENSITIVE).filter(
        pk=student.pk
    ).exists():
        raise PermissionDeniedError(_("健康上の配慮を変更する権限がありません。"))
    merged = StudentInput(**{
        name: getattr(data if name in applied else student, name) for name in PERSONAL_STUDENT_FIELDS
    })
    values, needs_review = _clean_student_input(merged)
    changed = [name for name, value in values.items() if getattr(student, name) != value]
    for name, value in values.items():
        setattr(student, name, value)
    student.needs_review = needs_review
    _save(student)
    audit_record(
        actor=actor.user, action="students.student.updated", obj=student, fields=changed,
        scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
    )
    return student
