"""Reads of the disclosure log: the principal's register of outstanding printed documents, one document by
serial, and — for a lost document — exactly which persons and which fields were on it (names decrypted,
audited)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.disclosures.models import Disclosure
from komu.students.exports import FIELD_LABELS as EXPORT_FIELD_LABELS
from komu.students.models import ClassMembership, Student
from komu.web.selectors import Task

# Every field code a disclosure may name, with its heading (the exports' codes plus the printed documents').
FIELD_LABELS: dict[str, object] = {
    **EXPORT_FIELD_LABELS,
    "emergency_contacts": gettext_lazy("緊急連絡先（氏名・続柄・電話番号）"),
    "attendance": gettext_lazy("出欠の記録"),
    "attendance_notes": gettext_lazy("出欠の備考"),
    "transfer_documents": gettext_lazy("転学書類（在学証明書・指導要録の写し等）"),
}


def field_label(code: str) -> str:
    return str(FIELD_LABELS.get(code, code))


def _managed(actor: Actor) -> QuerySet[Disclosure]:
    schools = scope.schools_for(actor, roles.DISCLOSURES_MANAGE)
    return Disclosure.objects.filter(school__in=schools).select_related("actor", "school", "closed_by")


def outstanding_for(*, actor: Actor) -> list[Disclosure]:
    """Printed documents of the actor's schools not yet returned, shredded or reported lost (newest first). No
    personal data: serials, counts, who printed and why."""
    if not actor.has(roles.DISCLOSURES_MANAGE):
        return []
    return list(_managed(actor).filter(status=Disclosure.Status.OUTSTANDING, medium=Disclosure.Medium.PRINT))


def recent_for(*, actor: Actor, limit: int = 50) -> list[Disclosure]:
    """The latest closed or exported documents (files, returned, shredded, lost), newest first."""
    if not actor.has(roles.DISCLOSURES_MANAGE):
        return []
    return list(_managed(actor).exclude(status=Disclosure.Status.OUTSTANDING, medium=Disclosure.Medium.PRINT)
                [:limit])


def disclosure_get_for(*, actor: Actor, serial: str) -> Disclosure:
    return scope.get_in_scope(_managed(actor), serial=str(serial).strip().upper())


@dataclass(frozen=True)
class PersonLine:
    id: str
    name: str
    kana: str
    klass: str
    shusseki_no: int | None


@dataclass(frozen=True)
class DocumentContents:
    disclosure: Disclosure
    persons: list[PersonLine]
    missing_ids: list[str]
    field_labels: list[str]


def document_contents(*, actor: Actor, serial: str) -> DocumentContents:
    """Exactly the persons and fields a document held, for its lost report. Decrypts the names: audited as
    "disclosures.disclosure.contents_viewed"."""
    disclosure = disclosure_get_for(actor=actor, serial=serial)
    ids = []
    for raw in disclosure.person_ids:
        try:
            ids.append(uuid.UUID(str(raw)))
        except ValueError:
            continue
    students = {s.pk: s for s in Student.objects.filter(pk__in=ids)}
    memberships = {
        m.student_id: m for m in ClassMembership.objects.filter(student_id__in=ids)
        .select_related("homeroom_class__school_year").order_by("homeroom_class__school_year__year")
    }
    persons, missing = [], []
    for pid in ids:
        student = students.get(pid)
        if student is None:
            missing.append(str(pid))
            continue
        m = memberships.get(pid)
        persons.append(PersonLine(id=str(pid), name=student.full_name, kana=student.full_kana,
                                  klass=m.homeroom_class.display_label if m else "", shusseki_no=m.shusseki_no if m else None))
    with transaction.atomic():
        school = disclosure.school
        audit_record(actor=actor.user, action="disclosures.disclosure.contents_viewed", obj=disclosure,
                     fields=["name", "kana"], detail={"serial": disclosure.serial, "persons": len(persons)},
                     scope=Scope(school_id=school.pk, board_id=school.board_id) if school else None)
    return DocumentContents(disclosure, persons, missing, [field_label(f) for f in disclosure.fields])


def home_tasks(*, actor: Actor) -> list[Task]:
    """Principal / vice-principal: printed documents still outstanding, urgent after 7 days."""
    from django.utils import timezone

    items = outstanding_for(actor=actor)
    if not items:
        return []
    oldest = min(d.created_at for d in items)
    urgent = (timezone.now() - oldest).days >= 7
    return [Task(
        _("回収されていない印刷物が%(n)d件あります") % {"n": len(items)},
        _("返却または廃棄を確認して記録してください。"),
        reverse("disclosures:register"), urgent=urgent,
    )]
