"""学級編制 (class placement).

Pupils awaiting a class (Student.pending_year / pending_grade_code: accepted entrants, transfer-ins, pupils of a
re-formed grade) are placed into the 年度's classes of that grade. Selector: selectors.placement_board; views:
komu/students/views (placement*)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.directory.models import HomeroomClass, School
from komu.students.models import ClassMembership, SchoolNumberingRule, Sex, SpecialNeedsPlacement, Student
from komu.students.services._common import _save
from komu.students.services.numbering import _numbering_key, _renumber_class


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
                    % {"name": student.full_name, "klass": membership.homeroom_class.display_label}
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
        # A class whose kind (知的障害, 自閉症・情緒障害 …) the pupil's recorded category names comes first. The
        # category is recorded in Japanese, so the kind is matched by its Japanese name whatever the screen language.
        with translation.override("ja"):
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
