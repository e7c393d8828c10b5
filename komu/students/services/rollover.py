"""年次更新 (year roll-over).

From 年度 Y to Y+1 for one school: every pupil of Y's classes goes up a grade, the top grade graduates, each grade's
classes are carried over (same names, 出席番号 renumbered) or re-formed (pupils await placement in Y+1).
特別支援学級 are always carried over as such. Selector: selectors.rollover_plan_get (audits the read of names);
views: komu/students/views (rollover). Attendance finds a pupil's class by date (the school year containing the
day), so Y+1 memberships prepared in March leave Y's registers as they are."""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core import codes
from komu.core.errors import ValidationFailed
from komu.core.wareki import fiscal_year_bounds
from komu.directory.models import HomeroomClass, School, SchoolYear
from komu.students.models import (
    ClassMembership,
    EnrollmentEvent,
    EnrollmentKind,
    SpecialNeedsPlacement,
    Student,
)
from komu.students.services._common import _save
from komu.students.services.numbering import _renumber_class
from komu.students.services.placement import _placement_school

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
            source_id=klass.pk, source_label=klass.display_label, kind=klass.kind,
            special_needs_category=klass.special_needs_category, name=klass.name, sort_order=klass.sort_order,
            target_grade=next_grade,
            target_label=f"{codes.grade_display(next_grade)} {klass.name}" if carried and next_grade else "",
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
            grade_code=grade, grade_label=codes.grade_display(grade), next_grade_code=next_grade,
            next_grade_label=codes.grade_display(next_grade) if next_grade else "",
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
