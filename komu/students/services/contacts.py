"""緊急連絡先 (emergency contacts) of a pupil."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import ValidationFailed
from komu.core.text import TextError, check_name, normalize_phone
from komu.students.models import EmergencyContact
from komu.students.services._common import _MAX_RELATIONSHIP, _checked_text, _save, _student_for_edit


@dataclass
class EmergencyContactInput:
    name: str
    relationship: str
    phone: str
    note: str = ""


_MAX_EMERGENCY_CONTACTS = 10
_MAX_NOTE = 200


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
