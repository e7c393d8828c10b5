"""Writes to pupils and guardians. Each is atomic, validated, and audited in the same transaction."""

from __future__ import annotations

import datetime
import hashlib
import unicodedata
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core import codes
from komu.core.codes import CodeError, validate_grade_code, validate_school_code
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
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
    # Kana readings are stored normalised (katakana); _kana_sort turns them into 五十音順.
    far_future = datetime.date.max
    family, given = _kana_sort(student.family_name_kana), _kana_sort(student.given_name_kana)
    kana = (family[0], given[0], family[1], given[1], student.birth_date or far_future, str(student.pk))
    if order == SchoolNumberingRule.Order.BOYS_FIRST:
        return (_SEX_RANK_BOYS_FIRST.get(student.sex, 2), *kana)
    if order == SchoolNumberingRule.Order.GIRLS_FIRST:
        return (_SEX_RANK_GIRLS_FIRST.get(student.sex, 2), *kana)
    return kana


def _kana_sort(value: str) -> tuple[str, str]:
    """五十音順 as a dictionary orders it: (the reading without 濁点・半濁点 and with small kana made full size,
    the exact reading). Code point order alone would put ザイツ between サイ and シ rather than beside サイツ."""
    try:
        kana = normalize_kana(value).replace(" ", "")
    except TextError:
        # Stored readings were normalised on the way in; a legacy value that no longer passes still sorts.
        kana = value
    plain = "".join(
        c for c in unicodedata.normalize("NFD", kana) if c not in "\u3099\u309a"
    ).translate(_SMALL_TO_FULL)
    return plain, kana


_SMALL_TO_FULL = str.maketrans("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ")


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
    return _renumber_class(actor, homeroom_class)


def _numbering_order(school: School) -> str:
    rule = SchoolNumberingRule.objects.filter(school=school).values_list("order", flat=True).first()
    return rule or SchoolNumberingRule.Order.KANA


def _renumber_class(actor: Actor, homeroom_class: HomeroomClass) -> int:
    """Renumber one class by its school's rule and audit it; the caller has checked scope and holds the
    transaction. Shared by shusseki_no_renumber, class placement and the year roll-over."""
    school = homeroom_class.school_year.school
    order = _numbering_order(school)
    memberships = list(
        # of=self, order by pk: lock the membership rows only — on PostgreSQL the join to the pupil and the default
        # ordering's joins (class, year, school) would otherwise lock those rows too and serialise a school.
        ClassMembership.objects.select_for_update(of=("self",)).filter(homeroom_class=homeroom_class)
        .select_related("student").order_by("pk")
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


# --- 出席番号の規則 (numbering rule setting) -------------------------------------------------------------------------
# Owned with the class placement and roll-over blocks below; views: komu/students/views (numbering_rule).

def kana_order_key(student: Student) -> tuple[Any, ...]:
    """The sort key of 五十音順 (mixed), as used for 出席番号: for lists that should read in the same order."""
    return _numbering_key(SchoolNumberingRule.Order.KANA, student)


@transaction.atomic
def numbering_rule_set(*, actor: Actor, school_id: Any, order: str) -> SchoolNumberingRule:
    """Set how the school numbers its classes (五十音順 mixed, boys first, girls first). Existing numbers are
    left as they are until a class is renumbered (numbers on printed registers must not change silently)."""
    school: School = scope.get_in_scope(scope.schools_for(actor, roles.STUDENTS_EDIT), pk=school_id)
    if order not in SchoolNumberingRule.Order.values:
        raise ValidationFailed(
            _("入力内容を確認してください。"),
            errors={"order": [_("出席番号の付け方は一覧から選んでください。")]},
        )
    rule, _created = SchoolNumberingRule.objects.select_for_update().get_or_create(school=school)
    previous = "" if _created else rule.order
    rule.order = order
    _save(rule)
    audit_record(
        actor=actor.user, action="students.numbering_rule.set", obj=school, fields=["order"],
        detail={"order": order, "previous": previous},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return rule


# --- 学級編制 (class placement) ---------------------------------------------------------------------------------------
# Pupils awaiting a class (Student.pending_year / pending_grade_code: accepted entrants, transfer-ins, pupils of a
# re-formed grade) are placed into the 年度's classes of that grade. Selector: selectors.placement_board; views:
# komu/students/views (placement*).

def _placement_school(actor: Actor, school_id: Any, capability: str = roles.CLASS_PLACEMENT) -> School:
    school: School = scope.get_in_scope(scope.schools_for(actor, capability), pk=school_id)
    return school


def _placement_class(actor: Actor, homeroom_class_id: Any) -> HomeroomClass:
    homeroom_class: HomeroomClass = scope.get_in_scope(
        HomeroomClass.objects.filter(
            school_year__school__in=scope.schools_for(actor, roles.CLASS_PLACEMENT)
        ).select_related("school_year__school"),
        pk=homeroom_class_id,
    )
    return homeroom_class


@dataclass(frozen=True)
class PlacementResult:
    placed: int  # pupils who were awaiting placement
    moved: int  # pupils moved from another class of the same 年度
    unchanged: int  # pupils already in the class


def _place(actor: Actor, homeroom_class: HomeroomClass, student_ids: Sequence[Any],
           *, renumber: bool = True) -> tuple[PlacementResult, set[HomeroomClass]]:
    """Put pupils into one class (the caller holds the transaction and has checked scope). Returns the result
    and the classes whose membership changed (to be renumbered)."""
    school_year = homeroom_class.school_year
    school = school_year.school
    ids = _uuid_strings(student_ids)
    if not ids:
        raise ValidationFailed(_("学級に入れる児童生徒を選んでください。"))
    students = {
        str(s.pk): s
        for s in Student.objects.select_for_update().filter(school=school, is_active=True, pk__in=ids)
    }
    if len(students) != len(ids):
        # A pupil of another school, a removed pupil or a forged id: answer like a missing object.
        raise NotFoundOrNoAccess("見つかりません。")
    current = {
        str(m.student_id): m
        for m in ClassMembership.objects.select_for_update(of=("self",)).order_by("pk")
        .filter(student_id__in=ids, homeroom_class__school_year=school_year)
        .select_related("homeroom_class__school_year__school")
    }
    started = timezone.localdate() >= school_year.start_date
    errors: list[str] = []
    for sid in ids:
        student = students[sid]
        membership = current.get(sid)
        if membership is not None:
            if membership.homeroom_class_id == homeroom_class.pk:
                continue
            if membership.homeroom_class.grade_code != homeroom_class.grade_code:
                errors.append(_("%(name)sさんは別の学年の学級にいます。学年の違う学級には移せません。")
                              % {"name": student.full_name})
            elif started:
                errors.append(
                    _("%(name)sさんはすでに%(klass)sにいます。年度が始まった後の学級の変更はこの画面ではできません。")
                    % {"name": student.full_name, "klass": str(membership.homeroom_class)}
                )
        elif student.pending_year != school_year.year or student.pending_grade_code != homeroom_class.grade_code:
            errors.append(
                _("%(name)sさんは%(year)s・%(grade)sの学級編制待ちではありません。")
                % {"name": student.full_name, "year": school_year.title,
                   "grade": homeroom_class.get_grade_code_display()}
            )
    if errors:
        raise ValidationFailed(_("学級に入れられない児童生徒がいます。"), errors={"students": errors})
    touched: set[HomeroomClass] = {homeroom_class}
    placed = moved = unchanged = 0
    next_no = (
        max(ClassMembership.objects.filter(homeroom_class=homeroom_class).values_list("shusseki_no", flat=True),
            default=0) + 1
    )
    for sid in ids:
        student = students[sid]
        membership = current.get(sid)
        if membership is not None and membership.homeroom_class_id == homeroom_class.pk:
            unchanged += 1
            continue
        if membership is not None:
            touched.add(membership.homeroom_class)
            membership.delete()
            moved += 1
            previous: Any = membership.homeroom_class_id
        else:
            placed += 1
            previous = None
        new = ClassMembership(student=student, homeroom_class=homeroom_class, shusseki_no=next_no)
        next_no += 1
        _save(new)
        if student.pending_year is not None or student.pending_grade_code:
            student.pending_year = None
            student.pending_grade_code = ""
            student.save(update_fields=["pending_year", "pending_grade_code", "updated_at"])
        audit_record(
            actor=actor.user, action="students.placement.assigned", obj=student,
            fields=["homeroom_class", "pending_year", "pending_grade_code"],
            detail={"class_id": homeroom_class.pk, "from_class_id": previous, "year": school_year.year},
            scope=Scope(school_id=school.pk, board_id=school.board_id),
        )
    if renumber:
        for klass in sorted(touched, key=lambda k: k.pk):
            _renumber_class(actor, klass)
    return PlacementResult(placed=placed, moved=moved, unchanged=unchanged), touched


def _uuid_strings(values: Sequence[Any]) -> list[str]:
    """Pupil ids from a form, each as its canonical string, in order without repeats; a malformed id names
    nothing (NotFoundOrNoAccess, like a missing pupil)."""
    out: dict[str, None] = {}
    for value in values:
        text = str(value)
        if not text.isascii() or text != text.strip():
            raise NotFoundOrNoAccess("見つかりません。")
        try:
            out[str(uuid.UUID(text))] = None
        except ValueError:
            raise NotFoundOrNoAccess("見つかりません。") from None
    return list(out)


@transaction.atomic
def placement_assign(*, actor: Actor, student_ids: Sequence[Any], homeroom_class_id: Any) -> PlacementResult:
    """Place pupils awaiting placement (or, before the 年度 starts, move pupils between classes of the same
    grade) into one class, and renumber the classes concerned by the school's rule."""
    homeroom_class = _placement_class(actor, homeroom_class_id)
    result, _touched = _place(actor, homeroom_class, student_ids)
    return result


@dataclass(frozen=True)
class PlacementMove:
    student_id: str
    homeroom_class_id: int


@dataclass(frozen=True)
class PlacementProposal:
    """自動編制の案: which pupil goes to which class. `unplaced` are pupils the proposal could not place (a
    特別支援学級 pupil when the grade has no 特別支援学級 in that 年度)."""

    school_id: int
    year: int
    grade_code: str
    moves: tuple[PlacementMove, ...]
    unplaced: tuple[str, ...]


@dataclass
class _Tally:
    klass: HomeroomClass
    total: int = 0
    by_sex: dict[str, int] = dataclass_field(default_factory=dict)
    special_needs: int = 0


def placement_auto_propose(*, actor: Actor, school_id: Any, year: int, grade_code: str) -> PlacementProposal:
    """Propose classes for every pupil awaiting placement in a 年度 and grade; writes nothing.

    Pupils placed in 特別支援学級 go to the grade's 特別支援学級 — one of the kind their recorded category names
    if there is one — the smallest first. The others are spread
    over the regular classes in kana order, sex by sex, each to the class with the fewest pupils of that sex,
    then the fewest pupils, counting those already placed; 通級 pupils are spread first so that they are not
    gathered in one class."""
    school = _placement_school(actor, school_id)
    classes = list(
        HomeroomClass.objects.filter(school_year__school=school, school_year__year=year, grade_code=grade_code)
        .order_by("sort_order", "name")
    )
    tallies = {k.pk: _Tally(klass=k) for k in classes}
    for m in ClassMembership.objects.filter(homeroom_class__in=classes, student__is_active=True).select_related(
        "student"
    ):
        tally = tallies[m.homeroom_class_id]
        tally.total += 1
        tally.by_sex[m.student.sex] = tally.by_sex.get(m.student.sex, 0) + 1
        if m.student.special_needs_placement != SpecialNeedsPlacement.NONE:
            tally.special_needs += 1
    pending = list(Student.objects.filter(school=school, is_active=True, pending_year=year,
                                          pending_grade_code=grade_code))
    pending.sort(key=lambda s: _numbering_key(SchoolNumberingRule.Order.KANA, s))
    regular = [tallies[k.pk] for k in classes if k.kind == HomeroomClass.Kind.REGULAR]
    special = [tallies[k.pk] for k in classes if k.kind == HomeroomClass.Kind.SPECIAL_NEEDS]
    moves: list[PlacementMove] = []
    unplaced: list[str] = []
    position = {k.pk: i for i, k in enumerate(classes)}

    def put(student: Student, tally: _Tally) -> None:
        tally.total += 1
        tally.by_sex[student.sex] = tally.by_sex.get(student.sex, 0) + 1
        if student.special_needs_placement != SpecialNeedsPlacement.NONE:
            tally.special_needs += 1
        moves.append(PlacementMove(student_id=str(student.pk), homeroom_class_id=tally.klass.pk))

    for student in pending:
        if student.special_needs_placement != SpecialNeedsPlacement.SPECIAL_NEEDS_CLASS:
            continue
        if not special:
            unplaced.append(str(student.pk))
            continue
        # A class whose kind (知的障害, 自閉症・情緒障害 …) the pupil's recorded category names comes first.
        matching = [t for t in special
                    if t.klass.special_needs_category
                    and t.klass.get_special_needs_category_display() in student.special_needs_category]
        put(student, min(matching or special, key=lambda t: (t.total, position[t.klass.pk])))
    others = [s for s in pending if s.special_needs_placement != SpecialNeedsPlacement.SPECIAL_NEEDS_CLASS]
    resource = [s for s in others if s.special_needs_placement == SpecialNeedsPlacement.RESOURCE_ROOM]
    rest = [s for s in others if s.special_needs_placement != SpecialNeedsPlacement.RESOURCE_ROOM]
    for student in resource:
        if not regular:
            unplaced.append(str(student.pk))
            continue
        put(student, min(regular, key=lambda t: (t.special_needs, t.by_sex.get(student.sex, 0), t.total,
                                                 position[t.klass.pk])))
    for sex in (Sex.MALE, Sex.FEMALE, Sex.UNSPECIFIED):
        for student in (s for s in rest if s.sex == sex):
            if not regular:
                unplaced.append(str(student.pk))
                continue
            put(student, min(regular, key=lambda t: (t.by_sex.get(sex, 0), t.total, position[t.klass.pk])))
    return PlacementProposal(school_id=school.pk, year=year, grade_code=grade_code, moves=tuple(moves),
                             unplaced=tuple(unplaced))


@transaction.atomic
def placement_apply_proposal(*, actor: Actor, school_id: Any, year: int, grade_code: str,
                             moves: Sequence[PlacementMove]) -> PlacementResult:
    """Apply a proposal (as shown to the user and posted back): every pupil into their class, all or nothing,
    each class renumbered once."""
    school = _placement_school(actor, school_id)
    if not moves:
        raise ValidationFailed(_("適用する案がありません。学級編制待ちの児童生徒がいるか確認してください。"))
    by_class: dict[int, list[str]] = {}
    for move in moves:
        by_class.setdefault(move.homeroom_class_id, []).append(move.student_id)
    classes = {
        k.pk: k
        for k in HomeroomClass.objects.filter(
            pk__in=list(by_class), school_year__school=school, school_year__year=year, grade_code=grade_code
        ).select_related("school_year__school")
    }
    if len(classes) != len(by_class):
        raise NotFoundOrNoAccess("見つかりません。")
    totals = PlacementResult(placed=0, moved=0, unchanged=0)
    touched: set[HomeroomClass] = set()
    for class_id in sorted(by_class):
        result, classes_touched = _place(actor, classes[class_id], by_class[class_id], renumber=False)
        touched |= classes_touched
        totals = PlacementResult(placed=totals.placed + result.placed, moved=totals.moved + result.moved,
                                 unchanged=totals.unchanged + result.unchanged)
    for klass in sorted(touched, key=lambda k: k.pk):
        _renumber_class(actor, klass)
    audit_record(
        actor=actor.user, action="students.placement.proposal_applied", obj=school,
        detail={"year": year, "grade_code": grade_code, "placed": totals.placed, "classes": sorted(by_class)},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return totals


# --- 入学者名簿の受入 (komu.rosters): entrants of the coming 年度 -------------------------------------------------

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
def guardian_update_for(*, actor: Actor, student_id: Any, guardian_id: Any, data: GuardianInput,
                        relationship: str | None = None) -> Guardian:
    """Change a guardian of a pupil in the actor's editing scope (and, if given, the 続柄 to that pupil)."""
    student = _student_for_edit(actor, student_id)
    link: GuardianLink = scope.get_in_scope(
        GuardianLink.objects.filter(student=student).select_related("guardian"), guardian_id=guardian_id
    )
    guardian = link.guardian
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
    values.update(email=data.email.strip(), address=data.address)
    changed = [name for name, value in values.items() if getattr(guardian, name) != value]
    for name, value in values.items():
        setattr(guardian, name, value)
    _save(guardian)
    if relationship is not None and relationship.strip() and relationship.strip() != link.relationship:
        link.relationship = relationship.strip()
        _save(link)
        changed.append("relationship")
    audit_record(
        actor=actor.user, action="students.guardian.updated", obj=guardian, fields=changed,
        detail={"student_id": str(student.pk)},
        scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
    )
    return guardian


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


# --- 年次更新 (year roll-over) --------------------------------------------------------------------------------------
# From 年度 Y to Y+1 for one school: every pupil of Y's classes goes up a grade, the top grade graduates, each grade's
# classes are carried over (same names, 出席番号 renumbered) or re-formed (pupils await placement in Y+1).
# 特別支援学級 are always carried over as such. Selector: selectors.rollover_plan_get (audits the read of names);
# views: komu/students/views (rollover). Attendance finds a pupil's class by date (the school year containing the
# day), so Y+1 memberships prepared in March leave Y's registers as they are.

ROLLOVER_APPLIED = "students.rollover.applied"


@dataclass(frozen=True)
class RolloverPupil:
    id: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    sex: str  # label
    shusseki_no: int
    special_needs: bool


@dataclass(frozen=True)
class RolloverClassPlan:
    """One class of 年度 Y and what becomes of it."""

    source_id: int
    source_label: str
    kind: str
    special_needs_category: str
    name: str
    sort_order: int
    target_grade: str | None  # None: the class graduates
    target_label: str  # 小学3年 1組, or "" when graduating / re-formed
    target_exists: bool
    carried_over: bool
    pupils: tuple[RolloverPupil, ...]


@dataclass(frozen=True)
class RolloverGradePlan:
    grade_code: str
    grade_label: str
    next_grade_code: str | None  # None for the top grade (卒業)
    next_grade_label: str
    reformed: bool
    classes: tuple[RolloverClassPlan, ...]

    @property
    def pupil_count(self) -> int:
        return sum(len(c.pupils) for c in self.classes)


@dataclass(frozen=True)
class RolloverApplied:
    occurred_at: datetime.datetime
    actor_username: str


@dataclass(frozen=True)
class RolloverPlan:
    school_id: int
    school_name: str
    from_year: int
    to_year: int
    from_year_title: str
    to_year_title: str
    to_year_exists: bool
    to_year_start: datetime.date
    to_year_end: datetime.date
    graduation_default: datetime.date
    from_year_start: datetime.date
    grades: tuple[RolloverGradePlan, ...]
    without_class: int  # enrolled pupils with no class in Y: left as they are
    already_in_next_year: int  # pupils of Y's classes who already have a class in Y+1: left as they are
    applied: RolloverApplied | None
    digest: str

    @property
    def graduates(self) -> int:
        return sum(g.pupil_count for g in self.grades if g.next_grade_code is None)

    @property
    def promoted(self) -> int:
        return sum(g.pupil_count for g in self.grades if g.next_grade_code is not None)

    @property
    def classes_to_create(self) -> list[RolloverClassPlan]:
        return [c for g in self.grades for c in g.classes if c.carried_over and not c.target_exists]


@dataclass(frozen=True)
class RolloverOptions:
    """What the user chose on the preview: the graduation date, the grades (of 年度 Y) whose classes are
    re-formed, and the digest of the plan they saw (a changed roster since the preview is refused)."""

    graduation_date: datetime.date
    reform_grades: frozenset[str]
    digest: str


def _rollover_applied(school: School, from_year: int) -> RolloverApplied | None:
    from komu.audit.models import AuditEvent

    event = (
        AuditEvent.objects.filter(action=ROLLOVER_APPLIED, object_type="directory.school", object_id=str(school.pk),
                                  detail__from_year=from_year)
        .order_by("id").only("occurred_at", "actor_username").first()
    )
    return RolloverApplied(event.occurred_at, event.actor_username) if event is not None else None


def _rollover_plan(school: School, from_year: int, reform_grades: Collection[str]) -> RolloverPlan:
    source_year = SchoolYear.objects.filter(school=school, year=from_year).first()
    if source_year is None:
        raise ValidationFailed(
            _("%(year)sの年度が登録されていません。") % {"year": f"{from_year}年度"}
        )
    to_year = from_year + 1
    target_year = SchoolYear.objects.filter(school=school, year=to_year).first()
    to_start, to_end = (
        (target_year.start_date, target_year.end_date) if target_year else fiscal_year_bounds(to_year)
    )
    grades = list(codes.grades_for_school_type(school.school_type))
    classes = list(
        HomeroomClass.objects.filter(school_year=source_year).order_by("grade_code", "sort_order", "name")
    )
    existing_targets = {
        (k.grade_code, k.name): k for k in HomeroomClass.objects.filter(school_year__school=school,
                                                                        school_year__year=to_year)
    }
    in_next_year = set(
        ClassMembership.objects.filter(homeroom_class__school_year__school=school,
                                       homeroom_class__school_year__year=to_year)
        .values_list("student_id", flat=True)
    )
    members: dict[int, list[ClassMembership]] = {}
    for m in (
        ClassMembership.objects.filter(homeroom_class__school_year=source_year, student__is_active=True)
        .select_related("student").order_by("shusseki_no")
    ):
        members.setdefault(m.homeroom_class_id, []).append(m)
    skipped = 0
    digest_parts: list[str] = [f"{school.pk}:{from_year}"]
    by_grade: dict[str, list[RolloverClassPlan]] = {}
    for klass in classes:
        if klass.grade_code not in grades:
            continue
        index = grades.index(klass.grade_code)
        next_grade = grades[index + 1] if index + 1 < len(grades) else None
        special = klass.kind == HomeroomClass.Kind.SPECIAL_NEEDS
        carried = next_grade is not None and (special or klass.grade_code not in reform_grades)
        pupils = []
        for m in members.get(klass.pk, []):
            if m.student_id in in_next_year:
                skipped += 1
                continue
            s = m.student
            pupils.append(RolloverPupil(
                id=str(s.pk), family_name=s.family_name, given_name=s.given_name,
                family_name_kana=s.family_name_kana, given_name_kana=s.given_name_kana, sex=s.get_sex_display(),
                shusseki_no=m.shusseki_no, special_needs=s.special_needs_placement != SpecialNeedsPlacement.NONE,
            ))
            digest_parts.append(f"{s.pk}@{klass.pk}")
        target = existing_targets.get((next_grade, klass.name)) if next_grade else None
        by_grade.setdefault(klass.grade_code, []).append(RolloverClassPlan(
            source_id=klass.pk, source_label=str(klass), kind=klass.kind,
            special_needs_category=klass.special_needs_category, name=klass.name, sort_order=klass.sort_order,
            target_grade=next_grade,
            target_label=f"{codes.grade_label(next_grade)} {klass.name}" if carried and next_grade else "",
            target_exists=target is not None, carried_over=carried, pupils=tuple(pupils),
        ))
        digest_parts.append(f"class:{klass.pk}:{target.pk if target else '-'}")
    grade_plans = []
    for grade in grades:
        if grade not in by_grade:
            continue
        index = grades.index(grade)
        next_grade = grades[index + 1] if index + 1 < len(grades) else None
        grade_plans.append(RolloverGradePlan(
            grade_code=grade, grade_label=codes.grade_label(grade), next_grade_code=next_grade,
            next_grade_label=codes.grade_label(next_grade) if next_grade else "",
            reformed=next_grade is not None and grade in reform_grades, classes=tuple(by_grade[grade]),
        ))
    placed = {m.student_id for ms in members.values() for m in ms}
    without_class = (
        Student.objects.filter(school=school, is_active=True, pending_year__isnull=True)
        .exclude(pk__in=placed).exclude(pk__in=in_next_year).count()
    )
    return RolloverPlan(
        school_id=school.pk, school_name=school.name, from_year=from_year, to_year=to_year,
        from_year_title=source_year.title, to_year_title=SchoolYear(school=school, year=to_year).title,
        to_year_exists=target_year is not None, to_year_start=to_start, to_year_end=to_end,
        graduation_default=source_year.end_date, from_year_start=source_year.start_date,
        grades=tuple(grade_plans), without_class=without_class, already_in_next_year=skipped,
        applied=_rollover_applied(school, from_year),
        digest=hashlib.sha256("\n".join(digest_parts).encode()).hexdigest()[:32],
    )


def rollover_preview(*, actor: Actor, school_id: Any, from_year: int,
                     reform_grades: Collection[str] = ()) -> RolloverPlan:
    """What the roll-over from 年度 `from_year` would do, pupil by pupil; writes nothing. The names it returns
    are personal data: show them through selectors.rollover_plan_get, which records the read."""
    school = _placement_school(actor, school_id, roles.YEAR_ROLLOVER)
    return _rollover_plan(school, from_year, frozenset(reform_grades))


@dataclass(frozen=True)
class RolloverResult:
    promoted: int
    graduated: int
    pending: int
    classes_created: int
    year_created: bool


@transaction.atomic
def rollover_apply(*, actor: Actor, school_id: Any, from_year: int, plan_options: RolloverOptions) -> RolloverResult:
    """Carry out the roll-over in one transaction: create 年度 Y+1 if missing, carry classes over (created if
    missing) with their pupils renumbered, send re-formed grades' pupils to class placement, graduate the top
    grade (卒業 recorded, no longer enrolled). Refused when it has already run for this school and year, when
    the roster changed since the preview, or before the graduation date."""
    school = _placement_school(actor, school_id, roles.YEAR_ROLLOVER)
    # One roll-over at a time per school: the second waits here and then finds the first one's audit event.
    School.objects.select_for_update().filter(pk=school.pk).order_by("pk").first()
    applied = _rollover_applied(school, from_year)
    if applied is not None:
        raise ValidationFailed(
            _("%(year)sから次の年度への年次更新は実行済みです（%(when)s、%(who)s）。もう一度は実行できません。")
            % {"year": f"{from_year}年度", "when": timezone.localtime(applied.occurred_at).strftime("%Y-%m-%d %H:%M"),
               "who": applied.actor_username}
        )
    grades = codes.grades_for_school_type(school.school_type)
    unknown = set(plan_options.reform_grades) - set(grades[:-1])
    if unknown:
        raise ValidationFailed(_("学級を編制し直す学年の指定が正しくありません。"),
                               errors={"reform_grades": [_("学年は一覧から選んでください。")]})
    plan = _rollover_plan(school, from_year, plan_options.reform_grades)
    if plan.digest != plan_options.digest:
        raise ValidationFailed(
            _("確認画面を表示した後に名簿や学級が変わりました。もう一度内容を確認してから実行してください。")
        )
    day = plan_options.graduation_date
    errors: list[str] = []
    if not plan.from_year_start <= day <= plan.graduation_default:
        errors.append(_("卒業の日は%(start)sから%(end)sまでの日付を入力してください。")
                      % {"start": plan.from_year_start.isoformat(), "end": plan.graduation_default.isoformat()})
    elif plan.graduates and day > timezone.localdate():
        errors.append(
            _("卒業の日（%(day)s）より前には年次更新を実行できません。卒業生はこの処理で在籍でなくなるためです。"
              "卒業式の日を入力するか、その日以降に実行してください。") % {"day": day.isoformat()}
        )
    if errors:
        raise ValidationFailed(_("入力内容を確認してください。"), errors={"graduation_date": errors})
    board_scope = Scope(school_id=school.pk, board_id=school.board_id)
    target_year = SchoolYear.objects.filter(school=school, year=plan.to_year).first()
    year_created = target_year is None
    if target_year is None:
        target_year = SchoolYear(school=school, year=plan.to_year, start_date=plan.to_year_start,
                                 end_date=plan.to_year_end)
        _save(target_year)
        audit_record(actor=actor.user, action="directory.school_year.created", obj=target_year,
                     detail={"year": plan.to_year, "by": ROLLOVER_APPLIED}, scope=board_scope)
    promoted = graduated = pending = created = 0
    graduates: list[str] = []
    awaiting: list[str] = []
    for grade in plan.grades:
        for cls in grade.classes:
            ids = [p.id for p in cls.pupils]
            if grade.next_grade_code is None:
                for student in Student.objects.select_for_update().filter(pk__in=ids):
                    event = EnrollmentEvent(student=student, kind=EnrollmentKind.GRADUATION, date=day,
                                            grade_code=grade.grade_code, recorded_by=actor.user)
                    _save(event)
                    student.is_active = False
                    student.save(update_fields=["is_active", "updated_at"])
                    audit_record(
                        actor=actor.user, action="students.enrollment_event.recorded", obj=student,
                        fields=["kind", "date", "grade_code"],
                        detail={"event_id": str(event.pk), "kind": EnrollmentKind.GRADUATION, "deactivated": True,
                                "by": ROLLOVER_APPLIED},
                        scope=board_scope,
                    )
                    graduates.append(str(student.pk))
                graduated += len(ids)
            elif cls.carried_over:
                target = HomeroomClass.objects.filter(school_year=target_year, grade_code=grade.next_grade_code,
                                                      name=cls.name).first()
                if target is None:
                    target = HomeroomClass(
                        school_year=target_year, grade_code=grade.next_grade_code, name=cls.name, kind=cls.kind,
                        special_needs_category=cls.special_needs_category, sort_order=cls.sort_order,
                    )
                    _save(target)
                    created += 1
                    audit_record(actor=actor.user, action="directory.class.created", obj=target,
                                 detail={"name": cls.name, "grade_code": grade.next_grade_code,
                                         "by": ROLLOVER_APPLIED}, scope=board_scope)
                start = max(ClassMembership.objects.filter(homeroom_class=target)
                            .values_list("shusseki_no", flat=True), default=0)
                ClassMembership.objects.bulk_create([
                    ClassMembership(student_id=uuid.UUID(sid), homeroom_class=target, shusseki_no=start + i)
                    for i, sid in enumerate(ids, start=1)
                ])
                promoted += len(ids)
                if ids:
                    _renumber_class(actor, target)
            else:
                Student.objects.filter(pk__in=ids).update(
                    pending_year=plan.to_year, pending_grade_code=grade.next_grade_code, updated_at=timezone.now()
                )
                promoted += len(ids)
                pending += len(ids)
                awaiting.extend(ids)
    audit_record(
        actor=actor.user, action=ROLLOVER_APPLIED, obj=school,
        fields=["homeroom_class", "pending_year", "pending_grade_code", "is_active"],
        detail={"from_year": from_year, "to_year": plan.to_year, "promoted": promoted, "graduated": graduated,
                "pending": pending, "classes_created": created, "year_created": year_created,
                "reform_grades": sorted(plan_options.reform_grades), "graduation_date": day.isoformat(),
                "graduates": graduates, "awaiting_placement": awaiting},
        scope=board_scope,
    )
    return RolloverResult(promoted=promoted, graduated=graduated, pending=pending, classes_created=created,
                          year_created=year_created)


# --- 保護者 (guardians) from the pupil's record screens ----------------------------------------------------------------
# guardian_add / guardian_update: what the record's 保護者 section posts (views/records.py). They check what the
# older guardian_create_for does not (続柄, e-mail, address lengths) and take the pupil by id within edit scope.

_MAX_EMAIL = 254
_MAX_GUARDIAN_PRIORITY = 9


def _clean_guardian(data: GuardianInput, relationship: str, priority: int) -> tuple[dict[str, Any], str]:
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name, label in (("family_name", _("姓")), ("given_name", _("名"))):
        raw = getattr(data, name)
        if not raw.strip():
            errors[name] = [_("%(label)sを入力してください。") % {"label": label}]
            continue
        try:
            values[name] = check_name(raw, field=label).value
        except TextError as exc:
            errors[name] = [str(exc)]
    for name, label in (("family_name_kana", _("姓（ふりがな）")), ("given_name_kana", _("名（ふりがな）"))):
        raw = getattr(data, name)
        try:
            values[name] = normalize_kana(raw, field=label) if raw.strip() else ""
        except TextError as exc:
            errors[name] = [str(exc)]
    try:
        values["phone"] = normalize_phone(data.phone) if data.phone.strip() else ""
    except TextError as exc:
        errors["phone"] = [str(exc)]
    email = data.email.strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = [_("メールアドレスの形が正しくありません（例: hogosha@example.jp）。")]
        if len(email) > _MAX_EMAIL:
            errors["email"] = [_("メールアドレスが長すぎます。")]
    values["email"] = email
    problems: list[str] = []
    values["address"] = _checked_text(data.address, label=_("住所"), limit=_MAX_ADDRESS, errors=problems)
    if problems:
        errors["address"] = problems
    problems = []
    rel = _checked_text(relationship, label=_("続柄"), limit=_MAX_RELATIONSHIP, errors=problems)
    if problems:
        errors["relationship"] = problems
    elif not rel:
        errors["relationship"] = [_("続柄を入力してください（例: 母、父、祖母）。")]
    if not 1 <= priority <= _MAX_GUARDIAN_PRIORITY:
        errors["priority"] = [_("連絡順位は1〜9の数字で入力してください。")]
    if errors:
        raise ValidationFailed(_("入力内容を確認してください。"), errors=errors)
    return values, rel


@transaction.atomic
def guardian_add(*, actor: Actor, student_id: Any, data: GuardianInput, relationship: str,
                 priority: int = 1) -> Guardian:
    """Add a guardian (保護者) to a pupil, with 続柄 and contact priority."""
    student = _student_for_edit(actor, student_id)
    _clean_guardian(data, relationship, priority)
    return guardian_create_for(actor=actor, student=student, data=data, relationship=relationship.strip(),
                               priority=priority)


@transaction.atomic
def guardian_update(*, actor: Actor, student_id: Any, guardian_id: Any, data: GuardianInput, relationship: str,
                    priority: int) -> Guardian:
    """Change a guardian's record and their 続柄・連絡順位 for this pupil. The record is the person's: a change
    of phone number shows on every child they are a guardian of."""
    student = _student_for_edit(actor, student_id)
    link: GuardianLink = scope.get_in_scope(
        GuardianLink.objects.select_for_update(of=("self",)).filter(student=student).select_related("guardian")
        .order_by("pk"),
        guardian_id=guardian_id,
    )
    values, rel = _clean_guardian(data, relationship, priority)
    guardian = link.guardian
    changed = [name for name, value in values.items() if getattr(guardian, name) != value]
    for name, value in values.items():
        setattr(guardian, name, value)
    _save(guardian)
    link_changed = [name for name, value in (("relationship", rel), ("priority", priority))
                    if getattr(link, name) != value]
    link.relationship = rel
    link.priority = priority
    _save(link)
    audit_record(
        actor=actor.user, action="students.guardian.updated", obj=guardian, fields=changed + link_changed,
        detail={"student_id": str(student.pk)},
        scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
    )
    return guardian
