"""Reading pupils and guardians within the actor's scope. Reads of sensitive fields are audited here."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count, Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.models import AuditEvent
from komu.audit.services import Scope, audit_record
from komu.core import codes
from komu.core.wareki import fiscal_year_of
from komu.directory.models import HomeroomClass, Role, School, SchoolYear
from komu.students.models import (
    ClassMembership,
    EmergencyContact,
    EnrollmentEvent,
    GuardianLink,
    SchoolNumberingRule,
    Sex,
    SpecialNeedsPlacement,
    Student,
)

if TYPE_CHECKING:
    from komu.web.selectors import Task
from komu.students.services import ROLLOVER_APPLIED, RolloverPlan, kana_order_key, rollover_preview


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
    # class_label is Japanese whatever the language (the API returns it); pages show class_display.
    class_display: str = ""


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


def _current(memberships: list[ClassMembership], today: datetime.date) -> ClassMembership | None:
    """Where a pupil is today: the class of the 年度 containing today; else the newest (an entrant placed for next
    年度, whose first day has not come). Next year's classes prepared in March must not hide this year's."""
    for m in memberships:
        year = m.homeroom_class.school_year
        if year.start_date <= today <= year.end_date:
            return m
    return memberships[0] if memberships else None


def _rows(qs: QuerySet[Student], homeroom_class: HomeroomClass | None) -> list[StudentRow]:
    # Without a class, show the class of today's 年度 (see _current): last year's membership is history.
    membership_qs = ClassMembership.objects.select_related("homeroom_class__school_year").order_by(
        "-homeroom_class__school_year__year", "shusseki_no"
    )
    if homeroom_class is not None:
        membership_qs = membership_qs.filter(homeroom_class=homeroom_class)
    students = qs.prefetch_related(
        Prefetch("memberships", queryset=membership_qs, to_attr="current_memberships")
    )
    rows = []
    today = timezone.localdate()
    for s in students:
        m = _current(s.current_memberships, today)
        rows.append(
            StudentRow(
                id=s.pk,
                shusseki_no=m.shusseki_no if m else None,
                class_label=str(m.homeroom_class) if m else "",
                class_display=m.homeroom_class.display_label if m else "",
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
    address: str = ""
    guardian_id: uuid.UUID | None = None  # for the record screen's edit link


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

    @property
    def grade_label(self) -> str:
        return codes.grade_display(self.grade_code)


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
    # None without students.view_sensitive (a disability is 要配慮個人情報); the placement itself is not.
    special_needs_category: str | None = None


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
                    address=link.guardian.address,
                    guardian_id=link.guardian_id,
                )
                for link in links
            ]
            fields += ["guardian.name", "guardian.phone", "guardian.email", "guardian.address"]
            emergency_contacts = [
                EmergencyContactRow(priority=c.priority, name=c.name, relationship=c.relationship, phone=c.phone,
                                    note=c.note)
                for c in EmergencyContact.objects.filter(student=student).order_by("priority")
            ]
            fields += ["emergency_contact.name", "emergency_contact.relationship", "emergency_contact.phone",
                       "emergency_contact.note"]
        health = student.health_note if sensitive else None
        if sensitive:
            fields += ["health_note", "special_needs_category"]
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
                         can_edit=can_edit, emergency_contacts=emergency_contacts, history=history,
                         special_needs_category=student.special_needs_category if sensitive else None)


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
    school_type: str = ""  # for the grade choices of an enrolment event


def student_edit_access(*, actor: Actor, student_id: Any) -> EditAccess:
    """NotFoundOrNoAccess unless `student_update` would accept this actor for this pupil; `health_note` says
    whether they may also change the health note (only those who may read it) — and the special-needs category."""
    student = scope.get_in_scope(
        scope.students_for(actor, roles.STUDENTS_EDIT).select_related("school").only("pk", "school__school_type"),
        pk=student_id,
    )
    sensitive = scope.students_for(actor, roles.STUDENTS_VIEW_SENSITIVE).filter(pk=student.pk).exists()
    return EditAccess(student_id=student.pk, health_note=sensitive, school_type=student.school.school_type)


# --- 学級編制 and 年次更新 ------------------------------------------------------------------------------------------
# Reads for the class placement and roll-over screens (services: placement_*, rollover_*). Both list names, so
# both record the read.

def placement_schools(*, actor: Actor, capability: str = roles.CLASS_PLACEMENT) -> list[School]:
    """Schools whose classes the actor may form (or roll over, with YEAR_ROLLOVER)."""
    return list(scope.schools_for(actor, capability).order_by("code"))


@dataclass(frozen=True)
class PlacementPupil:
    id: uuid.UUID
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    sex: str  # label
    sex_code: str
    special_needs: str  # the placement's label, "" for none
    special_needs_code: str
    shusseki_no: int | None = None


@dataclass(frozen=True)
class PlacementClass:
    id: int
    label: str
    kind: str
    special_needs_category: str
    pupils: list[PlacementPupil]

    @property
    def is_special(self) -> bool:
        return self.kind == HomeroomClass.Kind.SPECIAL_NEEDS

    @property
    def total(self) -> int:
        return len(self.pupils)

    @property
    def boys(self) -> int:
        return sum(1 for p in self.pupils if p.sex_code == Sex.MALE)

    @property
    def girls(self) -> int:
        return sum(1 for p in self.pupils if p.sex_code == Sex.FEMALE)

    @property
    def special_needs(self) -> int:
        return sum(1 for p in self.pupils if p.special_needs_code != SpecialNeedsPlacement.NONE)


@dataclass(frozen=True)
class PlacementGrade:
    code: str
    label: str
    pending: int


@dataclass(frozen=True)
class PlacementBoard:
    school: School
    year: int
    year_title: str
    school_year: SchoolYear | None
    grade_code: str
    grade_label: str
    grades: list[PlacementGrade]
    pending: list[PlacementPupil]
    classes: list[PlacementClass]
    year_started: bool  # after the first day moves between classes are refused

    @property
    def pending_by_id(self) -> dict[str, PlacementPupil]:
        return {str(p.id): p for p in self.pending}

    @property
    def class_by_id(self) -> dict[int, PlacementClass]:
        return {c.id: c for c in self.classes}


def _placement_pupil(s: Student, shusseki_no: int | None = None) -> PlacementPupil:
    return PlacementPupil(
        id=s.pk, family_name=s.family_name, given_name=s.given_name, family_name_kana=s.family_name_kana,
        given_name_kana=s.given_name_kana, sex=s.get_sex_display(), sex_code=s.sex,
        special_needs="" if s.special_needs_placement == SpecialNeedsPlacement.NONE
        else s.get_special_needs_placement_display(),
        special_needs_code=s.special_needs_placement, shusseki_no=shusseki_no,
    )


def placement_default_year(*, school: School) -> int:
    """The 年度 the placement screen opens on: the earliest one pupils are waiting for, else next 年度 from
    January (when entrants arrive), else this one."""
    today = timezone.localdate()
    current = fiscal_year_of(today)
    waiting = (
        Student.objects.filter(school=school, is_active=True, pending_year__gte=current)
        .order_by("pending_year").values_list("pending_year", flat=True).first()
    )
    if waiting is not None:
        return int(waiting)
    return current + 1 if today.month <= 3 else current


def placement_board(*, actor: Actor, school_id: Any, year: int, grade_code: str = "") -> PlacementBoard:
    """The placement screen's data: pupils waiting for a class of `grade_code` in 年度 `year`, and that year's
    classes of the grade with their pupils and counts. Records the read of the names."""
    school: School = scope.get_in_scope(scope.schools_for(actor, roles.CLASS_PLACEMENT), pk=school_id)
    grade_codes = codes.grades_for_school_type(school.school_type)
    pending_counts: dict[str, int] = {}
    for code in (
        Student.objects.filter(school=school, is_active=True, pending_year=year)
        .values_list("pending_grade_code", flat=True)
    ):
        pending_counts[code] = pending_counts.get(code, 0) + 1
    if grade_code not in grade_codes:
        grade_code = next((g for g in grade_codes if pending_counts.get(g)), grade_codes[0])
    school_year = SchoolYear.objects.filter(school=school, year=year).first()
    pending_students = list(
        Student.objects.filter(school=school, is_active=True, pending_year=year, pending_grade_code=grade_code)
    )
    pending_students.sort(key=kana_order_key)
    classes: list[PlacementClass] = []
    if school_year is not None:
        members: dict[int, list[PlacementPupil]] = {}
        for m in (
            ClassMembership.objects.filter(homeroom_class__school_year=school_year,
                                           homeroom_class__grade_code=grade_code, student__is_active=True)
            .select_related("student").order_by("shusseki_no")
        ):
            members.setdefault(m.homeroom_class_id, []).append(_placement_pupil(m.student, m.shusseki_no))
        for klass in HomeroomClass.objects.filter(school_year=school_year, grade_code=grade_code).order_by(
            "sort_order", "name"
        ):
            classes.append(PlacementClass(id=klass.pk, label=klass.display_label, kind=klass.kind,
                                          special_needs_category=klass.get_special_needs_category_display(),
                                          pupils=members.get(klass.pk, [])))
    board = PlacementBoard(
        school=school, year=year, year_title=SchoolYear(school=school, year=year).title,
        school_year=school_year, grade_code=grade_code, grade_label=codes.grade_display(grade_code),
        grades=[PlacementGrade(g, codes.grade_display(g), pending_counts.get(g, 0)) for g in grade_codes],
        pending=[_placement_pupil(s) for s in pending_students], classes=classes,
        year_started=school_year is not None and timezone.localdate() >= school_year.start_date,
    )
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="students.placement.viewed", obj=school,
            fields=["family_name", "given_name", "family_name_kana", "given_name_kana", "sex",
                    "special_needs_placement"],
            detail={"year": year, "grade_code": grade_code, "pending": len(board.pending),
                    "placed": sum(c.total for c in classes)},
            scope=Scope(school_id=school.pk, board_id=school.board_id),
        )
    return board


@dataclass(frozen=True)
class ProposalGroup:
    """One class in a placement proposal: who would join it and its counts afterwards."""

    klass: PlacementClass
    joining: list[PlacementPupil]

    @property
    def total_after(self) -> int:
        return self.klass.total + len(self.joining)

    @property
    def boys_after(self) -> int:
        return self.klass.boys + sum(1 for p in self.joining if p.sex_code == Sex.MALE)

    @property
    def girls_after(self) -> int:
        return self.klass.girls + sum(1 for p in self.joining if p.sex_code == Sex.FEMALE)


def placement_proposal_view(*, board: PlacementBoard, proposal: Any) -> list[ProposalGroup]:
    """The proposal grouped by class for display, from names already read (and audited) by placement_board. Each
    class lists its pupils in the pending list's order (五十音順), whatever order the balancing chose them in."""
    target = {move.student_id: move.homeroom_class_id for move in proposal.moves}
    grouped: dict[int, list[PlacementPupil]] = {c.id: [] for c in board.classes}
    for pupil in board.pending:
        class_id = target.get(str(pupil.id))
        if class_id in grouped:
            grouped[class_id].append(pupil)
    return [ProposalGroup(klass=c, joining=grouped[c.id]) for c in board.classes]


def rollover_plan_get(*, actor: Actor, school_id: Any, from_year: int,
                      reform_grades: frozenset[str] = frozenset()) -> RolloverPlan:
    """The roll-over preview (services.rollover_preview) for the screen, recording that the names were read."""
    plan = rollover_preview(actor=actor, school_id=school_id, from_year=from_year, reform_grades=reform_grades)
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="students.rollover.previewed", object_type="directory.school",
            object_id=str(plan.school_id),
            fields=["family_name", "given_name", "family_name_kana", "given_name_kana"],
            detail={"from_year": from_year, "promoted": plan.promoted, "graduates": plan.graduates},
            scope=Scope(school_id=plan.school_id),
        )
    return plan


def numbering_schools(*, actor: Actor) -> list[School]:
    """Schools whose 出席番号の付け方 the actor may set (those whose pupils they may edit)."""
    return list(scope.schools_for(actor, roles.STUDENTS_EDIT).order_by("code"))


def numbering_rule_get(*, actor: Actor, school_id: Any) -> str:
    """The school's numbering order (五十音順 mixed when none is recorded). Not personal data: not audited."""
    school = scope.get_in_scope(scope.schools_for(actor, roles.STUDENTS_EDIT), pk=school_id)
    order = SchoolNumberingRule.objects.filter(school=school).values_list("order", flat=True).first()
    return str(order or SchoolNumberingRule.Order.KANA)


@dataclass(frozen=True)
class GuardianEdit:
    """A guardian's record as the edit form shows it."""

    guardian_id: uuid.UUID
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    relationship: str
    priority: int
    phone: str
    email: str
    address: str


def guardian_get_for_edit(*, actor: Actor, student_id: Any, guardian_id: Any) -> GuardianEdit:
    """One guardian of a pupil the actor may edit (and whose contacts they may see); the read is recorded."""
    student = scope.get_in_scope(
        scope.students_for(actor, roles.STUDENTS_EDIT).filter(
            pk__in=scope.students_for(actor, roles.GUARDIANS_VIEW_CONTACT).values("pk")
        ).select_related("school"),
        pk=student_id,
    )
    link = scope.get_in_scope(GuardianLink.objects.filter(student=student).select_related("guardian"),
                              guardian_id=guardian_id)
    g = link.guardian
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="students.guardian.viewed", obj=g,
            fields=["name", "kana", "phone", "email", "address"], detail={"student_id": str(student.pk)},
            scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
        )
    return GuardianEdit(guardian_id=g.pk, family_name=g.family_name, given_name=g.given_name,
                        family_name_kana=g.family_name_kana, given_name_kana=g.given_name_kana,
                        relationship=link.relationship, priority=link.priority, phone=g.phone, email=g.email,
                        address=g.address)


@dataclass(frozen=True)
class GuardianUnlinkView:
    """What the unlink page shows of a guardian: who it is, and whether the link may go at all."""

    guardian_id: uuid.UUID
    name: str
    relationship: str
    priority: int
    last_of_enrolled: bool  # the only guardian of an enrolled pupil: add the new one first


def guardian_get_for_unlink(*, actor: Actor, student_id: Any, guardian_id: Any) -> GuardianUnlinkView:
    """One guardian of a pupil the actor may edit, as the unlink page shows it (name, 続柄, 連絡順位; the read of
    the name is recorded, nothing more is read)."""
    student = scope.get_in_scope(
        scope.students_for(actor, roles.STUDENTS_EDIT).filter(
            pk__in=scope.students_for(actor, roles.GUARDIANS_VIEW_CONTACT).values("pk")
        ).select_related("school"),
        pk=student_id,
    )
    links = GuardianLink.objects.filter(student=student)
    link = scope.get_in_scope(links.select_related("guardian"), guardian_id=guardian_id)
    g = link.guardian
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="students.guardian.viewed", obj=g, fields=["name", "relationship"],
            detail={"student_id": str(student.pk), "purpose": "unlink"},
            scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
        )
    return GuardianUnlinkView(
        guardian_id=g.pk, name=f"{g.family_name} {g.given_name}", relationship=link.relationship,
        priority=link.priority, last_of_enrolled=student.is_active and not links.exclude(pk=link.pk).exists(),
    )


def rollover_default_from_year(*, actor: Actor, school_id: Any) -> int:
    """The 年度 the roll-over screen starts from: this one, except early in a new 年度 (April–June) when last
    year's roll-over has not been run yet — a school that missed it in March does it first thing in April."""
    school = scope.get_in_scope(scope.schools_for(actor, roles.YEAR_ROLLOVER), pk=school_id)
    today = timezone.localdate()
    current = fiscal_year_of(today)
    if today.month not in (4, 5, 6) or not SchoolYear.objects.filter(school=school, year=current - 1).exists():
        return current
    done = AuditEvent.objects.filter(action=ROLLOVER_APPLIED, object_type="directory.school",
                                     object_id=str(school.pk), detail__from_year=current - 1).exists()
    return current if done else current - 1


# --- To-dos for the home page (komu/web reads these; counts only, no names, so not audited) ----------------------

@dataclass(frozen=True)
class PlacementTodo:
    """学級編制待ち: pupils of one school waiting for a class of a 年度 and grade."""

    school_id: int
    school_name: str
    year: int
    grade_code: str
    grade_label: str
    count: int

    @property
    def url(self) -> str:
        return f"{reverse('students:placement')}?school={self.school_id}&year={self.year}&grade={self.grade_code}"


def placement_todos(*, actor: Actor) -> list[PlacementTodo]:
    """Per school, 年度 and grade: how many pupils await class placement (accepted entrants, transfer-ins,
    re-formed grades). For the home page of school administrators, vice-principals and principals."""
    schools = scope.schools_for(actor, roles.CLASS_PLACEMENT)
    rows = (
        Student.objects.filter(school__in=schools, is_active=True, pending_year__isnull=False)
        .values("school_id", "school__name", "pending_year", "pending_grade_code")
        .annotate(n=Count("pk")).order_by("school__code", "pending_year", "pending_grade_code")
    )
    return [
        PlacementTodo(school_id=r["school_id"], school_name=r["school__name"], year=r["pending_year"] or 0,
                      grade_code=r["pending_grade_code"],
                      grade_label=codes.grade_display(r["pending_grade_code"]), count=r["n"])
        for r in rows
    ]


@dataclass(frozen=True)
class RolloverTodo:
    school_id: int
    school_name: str
    from_year: int

    @property
    def url(self) -> str:
        return f"{reverse('students:rollover')}?school={self.school_id}&from_year={self.from_year}"


def rollover_todos(*, actor: Actor) -> list[RolloverTodo]:
    """Schools whose year roll-over is due and not yet run: from February (the roll-over is prepared in March)
    until it has run, including an April–June catch-up for last 年度."""
    today = timezone.localdate()
    current = fiscal_year_of(today)
    if today.month in (2, 3):
        from_year = current
    elif today.month in (4, 5, 6):
        from_year = current - 1
    else:
        return []
    schools = list(
        scope.schools_for(actor, roles.YEAR_ROLLOVER).filter(years__year=from_year).distinct().order_by("code")
    )
    done = set(
        AuditEvent.objects.filter(action=ROLLOVER_APPLIED, object_type="directory.school",
                                  object_id__in=[str(s.pk) for s in schools], detail__from_year=from_year)
        .values_list("object_id", flat=True)
    )
    return [RolloverTodo(school_id=s.pk, school_name=s.name, from_year=from_year) for s in schools
            if str(s.pk) not in done]


def home_tasks(*, actor: Actor) -> list[Task]:
    """The home page's to-dos: pupils awaiting a class (学級編制) and a year roll-over that is due (counts only)."""
    from django.utils.translation import gettext as _

    from komu.web.selectors import Task

    tasks = [
        Task(
            _("学級編制待ちの児童生徒が%(n)d名います") % {"n": todo.count},
            _("%(school)s %(year)d年度 %(grade)s: 学級に入れると出席番号が付きます。")
            % {"school": todo.school_name, "year": todo.year, "grade": todo.grade_label},
            todo.url,
        )
        for todo in placement_todos(actor=actor)
    ]
    tasks += [
        Task(
            _("年次更新がまだです"),
            _("%(school)s %(year)d年度→%(next)d年度: 進級・卒業と学級の引き継ぎを確認して実行してください。")
            % {"school": todo.school_name, "year": todo.from_year, "next": todo.from_year + 1},
            todo.url,
        )
        for todo in rollover_todos(actor=actor)
    ]
    return tasks
