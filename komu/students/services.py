"""Writes to pupils and guardians. Each is atomic, validated, and audited in the same transaction."""

from __future__ import annotations

import datetime
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.codes import CodeError, validate_grade_code, validate_school_code
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.core.text import TextError, check_name, normalize_kana, normalize_phone, reject_control_chars
from komu.core.wareki import fiscal_year_bounds, fiscal_year_of
from komu.directory.models import HomeroomClass, School, SchoolYear
from komu.students.models import (
    LEAVING_KINDS,
    TRANSFER_KINDS,
    ClassMembership,
    EmergencyContact,
    EnrollmentEvent,
    EnrollmentKind,
    Guardian,
    GuardianLink,
    SchoolNumberingRule,
    Sex,
    SpecialNeedsPlacement,
    Student,
)

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
# The oldest birth date accepted: 和暦 display starts in 1873, and no pupil or adult learner is older.
_EARLIEST_BIRTH_DATE = datetime.date(1900, 1, 1)
_MAX_ADDRESS = 200
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


def _require_edit(actor: Actor, school: School) -> None:
    if not scope.schools_for(actor, roles.STUDENTS_EDIT).filter(pk=school.pk).exists():
        raise PermissionDeniedError("この学校の児童生徒を編集する権限がありません。")


def _save(obj: Any) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise ValidationFailed("入力内容を確認してください。", errors=exc.message_dict) from exc
    obj.save()


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


@transaction.atomic
def membership_assign(*, actor: Actor, student: Student, homeroom_class: HomeroomClass,
                      shusseki_no: int) -> ClassMembership:
    _require_edit(actor, homeroom_class.school_year.school)
    if homeroom_class.school_year.school_id != student.school_id:
        raise ValidationFailed("別の学校の学級には所属させられません。")
    membership = ClassMembership(student=student, homeroom_class=homeroom_class, shusseki_no=shusseki_no)
    _save(membership)
    audit_record(
        actor=actor.user, action="students.membership.assigned", obj=student,
        fields=["homeroom_class", "shusseki_no"],
        detail={"class_id": homeroom_class.pk, "shusseki_no": shusseki_no},
        scope=Scope(school_id=student.school_id),
    )
    return membership


@dataclass
class GuardianInput:
    family_name: str
    given_name: str
    family_name_kana: str = ""
    given_name_kana: str = ""
    phone: str = ""
    email: str = ""
    address: str = ""


@transaction.atomic
def guardian_create_for(*, actor: Actor, student: Student, data: GuardianInput, relationship: str,
                        priority: int = 1, user: Any = None) -> Guardian:
    _require_edit(actor, student.school)
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name in ("family_name", "given_name"):
        try:
            values[name] = check_name(getattr(data, name)).value
        except TextError as exc:
            errors.setdefault(name, []).append(str(exc))
    for name in ("family_name_kana", "given_name_kana"):
        raw = getattr(data, name)
        try:
            values[name] = normalize_kana(raw) if raw else ""
        except TextError as exc:
            errors.setdefault(name, []).append(str(exc))
    try:
        values["phone"] = normalize_phone(data.phone) if data.phone else ""
    except TextError as exc:
        errors.setdefault("phone", []).append(str(exc))
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)
    guardian = Guardian(user=user, email=data.email.strip(), address=data.address, **values)
    _save(guardian)
    link = GuardianLink(guardian=guardian, student=student, relationship=relationship, priority=priority)
    _save(link)
    audit_record(
        actor=actor.user, action="students.guardian.created", obj=guardian,
        fields=[k for k, v in {**values, "email": data.email, "address": data.address}.items() if v],
        detail={"student_id": str(student.pk), "relationship": relationship},
        scope=Scope(school_id=student.school_id),
    )
    return guardian


# --- 学籍: emergency contacts, enrolment events, 出席番号 ---------------------------------------------------------

@dataclass
class EmergencyContactInput:
    name: str
    relationship: str
    phone: str
    note: str = ""


_MAX_EMERGENCY_CONTACTS = 10
_MAX_RELATIONSHIP = 20
_MAX_NOTE = 200
_MAX_REASON = 500


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


@transaction.atomic
def emergency_contact_set(*, actor: Actor, student_id: Any,
                          contacts: Sequence[EmergencyContactInput]) -> list[EmergencyContact]:
    """Replace a pupil's emergency contacts with `contacts`, in order (the first is called first)."""
    student = _student_for_edit(actor, student_id)
    if len(contacts) > _MAX_EMERGENCY_CONTACTS:
        raise ValidationFailed(
            _("緊急連絡先は%(limit)d件までです。") % {"limit": _MAX_EMERGENCY_CONTACTS}
        )
    errors: dict[str, list[str]] = {}
    cleaned: list[dict[str, str]] = []
    for position, item in enumerate(contacts, start=1):
        problems: list[str] = []
        values: dict[str, str] = {}
        if not item.name.strip():
            problems.append(_("氏名を入力してください。"))
        else:
            try:
                values["name"] = check_name(item.name, field=_("氏名")).value
            except TextError as exc:
                problems.append(str(exc))
        values["relationship"] = _checked_text(
            item.relationship, label=_("続柄"), limit=_MAX_RELATIONSHIP, errors=problems
        )
        if not values["relationship"]:
            problems.append(_("続柄を入力してください（例: 祖母、父の勤務先）。"))
        try:
            values["phone"] = normalize_phone(item.phone)
        except TextError as exc:
            problems.append(str(exc))
        values["note"] = _checked_text(item.note, label=_("備考"), limit=_MAX_NOTE, errors=problems)
        if problems:
            errors[f"contacts.{position}"] = list(dict.fromkeys(problems))
        cleaned.append(values)
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)
    removed = EmergencyContact.objects.filter(student=student).delete()[0]
    saved = []
    for position, values in enumerate(cleaned, start=1):
        contact = EmergencyContact(student=student, priority=position, **values)
        _save(contact)
        saved.append(contact)
    audit_record(
        actor=actor.user, action="students.emergency_contact.replaced", obj=student,
        fields=["emergency_contact.name", "emergency_contact.relationship", "emergency_contact.phone",
                "emergency_contact.note"],
        detail={"count": len(saved), "removed": removed},
        scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
    )
    return saved


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


def _numbering_key(order: str, student: Student) -> tuple[Any, ...]:
    # Kana readings are stored normalised (katakana), so comparing the strings gives 五十音順.
    far_future = datetime.date.max
    kana = (_kana_sort(student.family_name_kana), _kana_sort(student.given_name_kana),
            student.birth_date or far_future, str(student.pk))
    if order == SchoolNumberingRule.Order.BOYS_FIRST:
        return (_SEX_RANK_BOYS_FIRST.get(student.sex, 2), *kana)
    if order == SchoolNumberingRule.Order.GIRLS_FIRST:
        return (_SEX_RANK_GIRLS_FIRST.get(student.sex, 2), *kana)
    return kana


def _kana_sort(value: str) -> str:
    try:
        return normalize_kana(value).replace(" ", "")
    except TextError:
        # Stored readings were normalised on the way in; a legacy value that no longer passes still sorts.
        return value


# Pupils whose sex is not recorded come after both groups rather than being guessed into one.
_SEX_RANK_BOYS_FIRST: dict[str, int] = {Sex.MALE: 0, Sex.FEMALE: 1}
_SEX_RANK_GIRLS_FIRST: dict[str, int] = {Sex.FEMALE: 0, Sex.MALE: 1}


@transaction.atomic
def shusseki_no_renumber(*, actor: Actor, homeroom_class_id: Any) -> int:
    """Give every pupil of a class a new 出席番号 (1, 2, …) by the school's rule; returns how many were changed."""
    homeroom_class: HomeroomClass = scope.get_in_scope(
        scope.classes_for(actor, roles.STUDENTS_EDIT).select_related("school_year__school"),
        pk=homeroom_class_id,
    )
    school = homeroom_class.school_year.school
    _require_edit(actor, school)
    rule = SchoolNumberingRule.objects.filter(school=school).values_list("order", flat=True).first()
    order = rule or SchoolNumberingRule.Order.KANA
    memberships = list(
        ClassMembership.objects.select_for_update().filter(homeroom_class=homeroom_class).select_related("student")
    )
    memberships.sort(key=lambda m: _numbering_key(order, m.student))
    changed = [m for position, m in enumerate(memberships, start=1) if m.shusseki_no != position]
    # Two passes keep (class, 出席番号) unique at every step: first move the changed rows out of the way.
    offset = len(memberships) + max((m.shusseki_no for m in memberships), default=0)
    for m in changed:
        ClassMembership.objects.filter(pk=m.pk).update(shusseki_no=m.shusseki_no + offset)
    for position, m in enumerate(memberships, start=1):
        if m.shusseki_no != position:
            ClassMembership.objects.filter(pk=m.pk).update(shusseki_no=position, updated_at=timezone.now())
            m.shusseki_no = position
    audit_record(
        actor=actor.user, action="students.shusseki_no.renumbered", obj=homeroom_class,
        fields=["shusseki_no"],
        detail={"count": len(memberships), "changed": len(changed), "order": order},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return len(changed)


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
