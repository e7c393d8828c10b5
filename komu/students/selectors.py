"""Reading pupils and guardians within the actor's scope. Reads of sensitive fields are audited here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Prefetch, QuerySet

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.directory.models import HomeroomClass
from komu.students.models import ClassMembership, GuardianLink, Student


@dataclass(frozen=True)
class StudentRow:
    """One line of a class list: what a teacher needs to recognise a pupil, nothing more."""

    id: uuid.UUID
    shusseki_no: int | None
    class_label: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    sex: str
    needs_review: bool


def _rows(qs: QuerySet[Student], homeroom_class: HomeroomClass | None) -> list[StudentRow]:
    membership_qs = ClassMembership.objects.select_related("homeroom_class")
    if homeroom_class is not None:
        membership_qs = membership_qs.filter(homeroom_class=homeroom_class)
    students = qs.prefetch_related(Prefetch("memberships", queryset=membership_qs, to_attr="current_memberships"))
    rows = []
    for s in students:
        m = s.current_memberships[0] if s.current_memberships else None
        rows.append(
            StudentRow(
                id=s.pk,
                shusseki_no=m.shusseki_no if m else None,
                class_label=str(m.homeroom_class) if m else "",
                family_name=s.family_name,
                given_name=s.given_name,
                family_name_kana=s.family_name_kana,
                given_name_kana=s.given_name_kana,
                sex=s.get_sex_display(),
                needs_review=s.needs_review,
            )
        )
    rows.sort(key=lambda r: (r.class_label, r.shusseki_no or 9999, r.family_name_kana, r.given_name_kana))
    return rows


def student_list(
    *,
    actor: Actor,
    homeroom_class_id: int | None = None,
    kana: str = "",
    shusseki_no: int | None = None,
    limit: int = 200,
) -> list[StudentRow]:
    """Pupils in scope, optionally one class, an exact kana reading (blind index) or a 出席番号 within the class.
    Listing names is recorded as one audit event (who listed which class)."""
    qs = scope.students_for(actor).filter(is_active=True)
    homeroom_class = None
    if homeroom_class_id is not None:
        homeroom_class = scope.get_in_scope(scope.classes_for(actor, roles.STUDENTS_VIEW)
                                            if not actor.is_guardian else HomeroomClass.objects.none(),
                                            pk=homeroom_class_id)
        qs = qs.filter(memberships__homeroom_class=homeroom_class)
        if shusseki_no is not None:
            qs = qs.filter(memberships__homeroom_class=homeroom_class, memberships__shusseki_no=shusseki_no)
    if kana:
        field = Student._meta.get_field("kana_index")
        family = Student._meta.get_field("family_kana_index")
        try:
            full_key = field.lookup_value(kana)  # type: ignore[attr-defined]
            family_key = family.lookup_value(kana)  # type: ignore[attr-defined]
        except ValueError:
            return []
        qs = qs.filter(kana_index=full_key) | qs.filter(family_kana_index=family_key)
    with transaction.atomic():
        rows = _rows(qs.distinct()[:limit] if not kana else qs.distinct(), homeroom_class)[:limit]
        audit_record(
            actor=actor.user,
            action="students.list.viewed",
            object_type="directory.homeroomclass" if homeroom_class else "students.student",
            object_id=str(homeroom_class.pk) if homeroom_class else "",
            fields=["family_name", "given_name", "family_name_kana", "given_name_kana"],
            detail={"count": len(rows), "search": bool(kana)},
            scope=Scope(school_id=homeroom_class.school_year.school_id) if homeroom_class else _scope_of(actor),
        )
    return rows


def _scope_of(actor: Actor) -> Scope:
    primary = actor.primary
    if primary is None:
        return Scope()
    return Scope(school_id=primary.school_id, board_id=primary.board_id)


@dataclass(frozen=True)
class GuardianContact:
    relationship: str
    priority: int
    name: str
    phone: str
    email: str


@dataclass(frozen=True)
class StudentDetail:
    student: Student
    memberships: list[ClassMembership]
    health_note: str | None
    guardians: list[GuardianContact] | None


def student_get_for(*, actor: Actor, student_id: Any) -> StudentDetail:
    """One pupil's record. Health notes and guardian contacts appear only with their capability; every field
    shown is named in the audit event (who looked at this pupil's record)."""
    student = scope.get_in_scope(scope.students_for(actor).select_related("school"), pk=student_id)
    sensitive = scope.students_for(actor, roles.STUDENTS_VIEW_SENSITIVE).filter(pk=student.pk).exists()
    contacts = scope.students_for(actor, roles.GUARDIANS_VIEW_CONTACT).filter(pk=student.pk).exists()
    fields = ["family_name", "given_name", "family_name_kana", "given_name_kana", "birth_date", "sex", "address"]
    with transaction.atomic():
        guardians = None
        if contacts:
            links = GuardianLink.objects.filter(student=student).select_related("guardian").order_by("priority")
            guardians = [
                GuardianContact(
                    relationship=link.relationship,
                    priority=link.priority,
                    name=link.guardian.full_name,
                    phone=link.guardian.phone,
                    email=link.guardian.email,
                )
                for link in links
            ]
            fields += ["guardian.name", "guardian.phone", "guardian.email"]
        health = student.health_note if sensitive else None
        if sensitive:
            fields.append("health_note")
        audit_record(
            actor=actor.user,
            action="students.student.viewed",
            obj=student,
            fields=fields,
            scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
        )
        memberships = list(
            ClassMembership.objects.filter(student=student).select_related("homeroom_class__school_year")
        )
    return StudentDetail(student=student, memberships=memberships, health_note=health, guardians=guardians)


def children_of(*, actor: Actor) -> list[StudentRow]:
    """A guardian's own children."""
    if not actor.is_guardian:
        return []
    return _rows(scope.students_for(actor).filter(is_active=True), None)
