"""保護者 (guardians): create, update and link to a pupil."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.accounts.models import User
from komu.audit.services import Scope, audit_record
from komu.core.errors import ValidationFailed
from komu.core.text import TextError, check_name, normalize_kana, normalize_phone
from komu.students.models import Guardian, GuardianLink, Student
from komu.students.services._common import (
    _MAX_ADDRESS,
    _MAX_RELATIONSHIP,
    _checked_text,
    _require_edit,
    _save,
    _student_for_edit,
)


@dataclass
class GuardianInput:
    family_name: str
    given_name: str
    family_name_kana: str = ""
    given_name_kana: str = ""
    phone: str = ""
    email: str = ""
    address: str = ""


def _guardian_names_and_phone(data: GuardianInput) -> dict[str, Any]:
    """The checks guardian_create_for and guardian_update_for make (rosters, imports): names, readings and phone,
    normalised. The record screens' guardian_add / guardian_update check more (_clean_guardian)."""
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
    return values


@transaction.atomic
def guardian_create_for(*, actor: Actor, student: Student, data: GuardianInput, relationship: str,
                        priority: int = 1, user: Any = None) -> Guardian:
    _require_edit(actor, student.school)
    values = _guardian_names_and_phone(data)
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


@transaction.atomic
def guardian_update_for(*, actor: Actor, student_id: Any, guardian_id: Any, data: GuardianInput,
                        relationship: str | None = None) -> Guardian:
    """Change a guardian of a pupil in the actor's editing scope (and, if given, the 続柄 to that pupil)."""
    student = _student_for_edit(actor, student_id)
    link: GuardianLink = scope.get_in_scope(
        GuardianLink.objects.filter(student=student).select_related("guardian"), guardian_id=guardian_id
    )
    guardian = link.guardian
    values = _guardian_names_and_phone(data)
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


# --- 関連付けの解除 (unlinking a guardian from a pupil) ----------------------------------------------------------------
# After a custody change, or when a guardian was linked to the wrong pupil. The link goes; the guardian's record
# stays (the pupil's history, and reports the guardian sent, still name them). The audit event keeps what the link
# was (続柄, 連絡順位) and why it was removed. A guardian's account reaches a pupil only through a link
# (scope.get_actor derives child_ids from GuardianLink on every request), so access ends with the commit.

_MAX_UNLINK_REASON = 500


@dataclass(frozen=True)
class GuardianUnlinked:
    guardian_id: Any
    account_deactivated: bool


@transaction.atomic
def guardian_unlink(*, actor: Actor, student_id: Any, guardian_id: Any, reason: str) -> GuardianUnlinked:
    """Remove the link between a guardian and a pupil in the actor's editing scope.

    An enrolled pupil keeps at least one guardian: the last one cannot be removed (add the new guardian first).
    When the guardian has no pupil left, their sign-in account (if any) is deactivated, so that it no longer
    signs in at all; the guardian's record stays."""
    scope.require(actor, roles.STUDENTS_EDIT)
    student = _student_for_edit(actor, student_id)
    # Lock the pupil's row: two unlinks of the same pupil's guardians run one after the other, so they cannot
    # both pass the last-guardian check.
    enrolled = Student.objects.select_for_update().filter(pk=student.pk).values_list("is_active", flat=True).get()
    link: GuardianLink = scope.get_in_scope(
        GuardianLink.objects.filter(student=student).select_related("guardian__user"), guardian_id=guardian_id,
    )
    problems: list[str] = []
    cleaned = _checked_text(reason, label=_("解除の理由"), limit=_MAX_UNLINK_REASON, errors=problems, allow="\n\r")
    if not problems and not cleaned:
        problems.append(_("解除の理由を入力してください（例: 親権者の変更、誤って関連付けたため）。"))
    if problems:
        raise ValidationFailed(_("入力内容を確認してください。"), errors={"reason": problems})
    if enrolled and not GuardianLink.objects.filter(student=student).exclude(pk=link.pk).exists():
        raise ValidationFailed(_(
            "在籍中の児童生徒の保護者を0人にすることはできません。先に新しい保護者を「保護者を追加」で登録してから、"
            "この保護者の関連付けを解除してください。"
        ))
    guardian = link.guardian
    relationship, priority = link.relationship, link.priority
    link.delete()
    account_deactivated = False
    user = guardian.user
    if (user is not None and user.kind == User.Kind.GUARDIAN and user.is_active
            and not GuardianLink.objects.filter(guardian=guardian).exists()):
        user.is_active = False
        user.save(update_fields=["is_active"])
        account_deactivated = True
    board_scope = Scope(school_id=student.school_id, board_id=student.school.board_id)
    audit_record(
        actor=actor.user, action="students.guardian.unlinked", obj=guardian, fields=["relationship", "priority"],
        detail={"student_id": str(student.pk), "relationship": relationship, "priority": priority,
                "reason": cleaned, "account_deactivated": account_deactivated},
        scope=board_scope,
    )
    if account_deactivated and user is not None:
        audit_record(
            actor=actor.user, action="accounts.user.deactivated", obj=user, fields=["is_active"],
            detail={"cause": "students.guardian.unlinked", "guardian_id": str(guardian.pk),
                    "student_id": str(student.pk)},
            scope=board_scope,
        )
    return GuardianUnlinked(guardian_id=guardian.pk, account_deactivated=account_deactivated)
