"""Reading pupils and guardians within the actor's scope. Reads of sensitive fields are audited here."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.wareki import fiscal_year_of
from komu.directory.models import HomeroomClass, Role
from komu.students.models import ClassMembership, EmergencyContact, EnrollmentEvent, GuardianLink, Student


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
    sex: str  # the label (男 / 女 / 未設定), as the screens show it
    needs_review: bool
    sex_code: str = ""  # the stored value (male / female / unspecified), for the API


def listable_classes_for(actor: Actor) -> QuerySet[HomeroomClass]:
    """Classes whose pupil list the actor may open: a homeroom teacher only their own class(es), school and
    board roles every class of their schools, guardians none (they reach their children one by one).

    This is narrower than `scope.classes_for(actor, STUDENTS_VIEW)`, which gives a homeroom teacher the whole
    school's classes (the directory is not personal data): asking for another class's list must answer 404."""
    grants = actor.grants_with(roles.STUDENTS_VIEW)
    own_classes = [g.class_id for g in grants if g.role == Role.HOMEROOM_TEACHER and g.class_id is not None]
    wide = tuple(g for g in grants if g.role not in (Role.HOMEROOM_TEACHER, Role.GUARDIAN))
    q = Q(pk__in=own_classes)
    if wide:
        wide_actor = Actor(user=actor.user, grants=wide)
        q |= Q(school_year__school__in=scope.schools_for(wide_actor, roles.STUDENTS_VIEW))
    return HomeroomClass.objects.filter(q)


def class_choices_for(*, actor: Actor, school_id: int | None = None) -> list[HomeroomClass]:
    """This year's (and next year's, prepared in March) classes for the class picker, school by school."""
    current = fiscal_year_of(timezone.localdate())
    qs = listable_classes_for(actor).filter(school_year__year__gte=current)
    if school_id is not None:
        qs = qs.filter(school_year__school_id=school_id)
    return list(
        qs.select_related("school_year__school").order_by(
            "school_year__school__code", "school_year__year", "grade_code", "sort_order", "name"
        )
    )


def _rows(qs: QuerySet[Student], homeroom_class: HomeroomClass | None) -> list[StudentRow]:
    # Without a class, show the newest year's class: last year's membership is history, not where they are.
    membership_qs = ClassMembership.objects.select_related("homeroom_class").order_by(
        "-homeroom_class__school_year__year", "shusseki_no"
    )
    if homeroom_class is not None:
        membership_qs = membership_qs.filter(homeroom_class=homeroom_class)
    students = qs.prefetch_related(
        Prefetch("memberships", queryset=membership_qs, to_attr="current_memberships")
    )
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
                sex_code=s.sex,
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
    """Pupils in scope, optionally one class, an exact kana reading (blind index) or a 出席番号 within the
    class. Listing names is recorded as one audit event (who listed which class)."""
    qs = scope.students_for(actor).filter(is_active=True)
    homeroom_class = None
    if homeroom_class_id is not None:
        homeroom_class = scope.get_in_scope(
            listable_classes_for(actor).select_related("school_year__school"), pk=homeroom_class_id
        )
        qs = qs.filter(memberships__homeroom_class=homeroom_class)
        if shusseki_no is not None:
            qs = qs.filter(memberships__homeroom_class=homeroom_class, memberships__shusseki_no=shusseki_no)
    if kana:
        field = Student._meta.get_field("kana_index")
        family = Student._meta.get_field("family_kana_index")
        try:
            full_key = field.lookup_value(kana)
            family_key = family.lookup_value(kana)
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
            scope=(
                Scope(school_id=homeroom_class.school_year.school_id,
                      board_id=homeroom_class.school_year.school.board_id)
                if homeroom_class else _scope_of(actor)
            ),
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
class EmergencyContactRow:
    priority: int
    name: str
    relationship: str
    phone: str
    note: str


@dataclass(frozen=True)
class EnrollmentHistoryRow:
    """One 学籍の異動, as the 指導要録 学籍 section lists it."""

    id: uuid.UUID
    kind: str  # the stored value (transfer_out …)
    kind_label: str  # 転学 …
    date: datetime.date
    grade_code: str
    other_school_name: str
    other_school_code: str
    reason: str | None  # None without students.view_sensitive: 退学・転学の事由 can reveal family circumstances


@dataclass(frozen=True)
class StudentDetail:
    """What `student_get_for` returns. `health_note` and `guardians` are None when the actor may not see
    them (an empty string / list means "allowed, nothing recorded"); `can_edit` says whether `student_update`
    would accept this actor for this pupil."""

    student: Student
    memberships: list[ClassMembership]
    health_note: str | None
    guardians: list[GuardianContact] | None
    can_edit: bool = False
    # None like `guardians`: only with guardians.view_contact. History is part of every reader's record.
    emergency_contacts: list[EmergencyContactRow] | None = None
    history: list[EnrollmentHistoryRow] = dataclass_field(default_factory=list)


def student_get_for(*, actor: Actor, student_id: Any) -> StudentDetail:
    """One pupil's record. Health notes and guardian contacts appear only with their capability; every field
    shown is named in the audit event (who looked at this pupil's record)."""
    student = scope.get_in_scope(scope.students_for(actor).select_related("school"), pk=student_id)
    sensitive = scope.students_for(actor, roles.STUDENTS_VIEW_SENSITIVE).filter(pk=student.pk).exists()
    contacts = scope.students_for(actor, roles.GUARDIANS_VIEW_CONTACT).filter(pk=student.pk).exists()
    can_edit = scope.students_for(actor, roles.STUDENTS_EDIT).filter(pk=student.pk).exists()
    fields = [
        "family_name", "given_name", "family_name_kana", "given_name_kana", "birth_date", "sex", "address",
    ]
    with transaction.atomic():
        guardians = None
        emergency_contacts = None
        if contacts:
            links = (
                GuardianLink.objects.filter(student=student).select_related("guardian").order_by("priority")
            )
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
            emergency_contacts = [
                EmergencyContactRow(priority=c.priority, name=c.name, relationship=c.relationship, phone=c.phone,
                                    note=c.note)
                for c in EmergencyContact.objects.filter(student=student).order_by("priority")
            ]
            fields += ["emergency_contact.name", "emergency_contact.relationship", "emergency_contact.phone",
                       "emergency_contact.note"]
        health = student.health_note if sensitive else None
        if sensitive:
            fields.append("health_note")
        history = [
            EnrollmentHistoryRow(
                id=e.pk, kind=e.kind, kind_label=e.get_kind_display(), date=e.date, grade_code=e.grade_code,
                other_school_name=e.other_school_name, other_school_code=e.other_school_code,
                reason=e.reason if sensitive else None,
            )
            for e in EnrollmentEvent.objects.filter(student=student).order_by("date", "created_at")
        ]
        fields += ["enrollment_event.kind", "enrollment_event.date"]
        if sensitive:
            fields.append("enrollment_event.reason")
        audit_record(
            actor=actor.user,
            action="students.student.viewed",
            obj=student,
            fields=fields,
            scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
        )
        memberships = list(
            ClassMembership.objects.filter(student=student)
            .select_related("homeroom_class__school_year")
            .order_by("-homeroom_class__school_year__year")
        )
    return StudentDetail(student=student, memberships=memberships, health_note=health, guardians=guardians,
                         can_edit=can_edit, emergency_contacts=emergency_contacts, history=history)


def children_of(*, actor: Actor) -> list[StudentRow]:
    """A guardian's own children."""
    if not actor.is_guardian:
        return []
    return _rows(scope.students_for(actor).filter(is_active=True), None)


def listable_class_get(*, actor: Actor, class_id: Any) -> HomeroomClass:
    """One class whose list the actor may open (for the page heading); NotFoundOrNoAccess otherwise."""
    return scope.get_in_scope(listable_classes_for(actor).select_related("school_year__school"), pk=class_id)


@dataclass(frozen=True)
class EditAccess:
    """What an edit screen may offer for one pupil. Reads no personal data, so it is not audited."""

    student_id: uuid.UUID
    health_note: bool


def student_edit_access(*, actor: Actor, student_id: Any) -> EditAccess:
    """NotFoundOrNoAccess unless `student_update` would accept this actor for this pupil; `health_note` says
    whether they may also change the health note (only those who may read it)."""
    student = scope.get_in_scope(scope.students_for(actor, roles.STUDENTS_EDIT).only("pk"), pk=student_id)
    sensitive = scope.students_for(actor, roles.STUDENTS_VIEW_SENSITIVE).filter(pk=student.pk).exists()
    return EditAccess(student_id=student.pk, health_note=sensitive)
