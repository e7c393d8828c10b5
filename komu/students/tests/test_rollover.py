"""年次更新: promote every pupil, graduate the top grade, carry classes over or re-form them — previewed first,
applied once, in one transaction, without disturbing this year's registers."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from komu.access.scope import get_actor
from komu.attendance.selectors.registers import entry_classes_for
from komu.attendance.selectors.reports import report_class_on
from komu.attendance.services import marks
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.directory.models import HomeroomClass, SchoolYear
from komu.students import services
from komu.students.models import ClassMembership, EnrollmentEvent, EnrollmentKind, Student
from komu.students.selectors import rollover_plan_get
from komu.students.services import RolloverOptions, rollover_apply, rollover_preview
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _sixth_grade(world: World) -> tuple[HomeroomClass, Student]:
    klass = HomeroomClass.objects.create(school_year=world.class_a1.school_year, grade_code="P6", name="1組")
    pupil = Student(school=world.school_a, family_name="卒業", given_name="一", family_name_kana="ソツギョウ",
                    given_name_kana="ハジメ", sex="male")
    pupil.save()
    ClassMembership.objects.create(student=pupil, homeroom_class=klass, shusseki_no=1)
    return klass, pupil


def _march(monkeypatch: pytest.MonkeyPatch, world: World, day: int = 25) -> datetime.date:
    """Pretend today is late March of the world's 年度 (the roll-over is prepared before 1 April)."""
    today = datetime.date(world.class_a1.school_year.year + 1, 3, day)
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: today)
    return today


def _options(plan: Any, *, graduation: datetime.date, reform: frozenset[str] = frozenset()) -> RolloverOptions:
    return RolloverOptions(graduation_date=graduation, reform_grades=reform, digest=plan.digest)


def test_preview_shows_every_change_and_writes_nothing(world: World) -> None:
    _sixth_grade(world)
    actor = get_actor(world.user("principal_a"))
    before = AuditEvent.objects.count()
    plan = rollover_preview(actor=actor, school_id=world.school_a.pk, from_year=world.class_a1.school_year.year)
    assert AuditEvent.objects.count() == before
    assert not SchoolYear.objects.filter(year=plan.to_year).exists()
    assert (plan.promoted, plan.graduates) == (3, 1)
    first = plan.grades[0]
    assert first.grade_code == "P1" and first.next_grade_code == "P2"
    assert [(c.source_label, c.target_label, len(c.pupils)) for c in first.classes] == [
        ("小学1年 1組", "小学2年 1組", 2), ("小学1年 2組", "小学2年 2組", 1),
    ]
    assert plan.grades[-1].next_grade_code is None
    assert len(plan.classes_to_create) == 2
    # Shown through the selector, the read of names is recorded.
    rollover_plan_get(actor=actor, school_id=world.school_a.pk, from_year=plan.from_year)
    assert AuditEvent.objects.filter(action="students.rollover.previewed").count() == 1


def test_apply_carries_classes_over_graduates_and_keeps_this_years_registers(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _six, graduate = _sixth_grade(world)
    today = _march(monkeypatch, world)
    year = world.class_a1.school_year.year
    actor = get_actor(world.user("principal_a"))
    plan = rollover_preview(actor=actor, school_id=world.school_a.pk, from_year=year)
    ceremony = datetime.date(year + 1, 3, 19)
    result = rollover_apply(actor=actor, school_id=world.school_a.pk, from_year=year,
                            plan_options=_options(plan, graduation=ceremony))
    assert (result.promoted, result.graduated, result.classes_created, result.year_created) == (3, 1, 2, True)
    next_one = HomeroomClass.objects.get(school_year__year=year + 1, grade_code="P2", name="1組")
    assert [(m.shusseki_no, m.student.family_name_kana) for m in next_one.memberships.select_related("student")
            .order_by("shusseki_no")] == [(1, "タカハシ"), (2, "ヤマザキ")]
    graduate.refresh_from_db()
    assert not graduate.is_active
    event = EnrollmentEvent.objects.get(student=graduate)
    assert (event.kind, event.date, event.grade_code) == (EnrollmentKind.GRADUATION, ceremony, "P6")
    assert AuditEvent.objects.filter(action="students.rollover.applied", object_id=str(world.school_a.pk)).count() == 1
    # This year's memberships are untouched and attendance still finds this year's class for today.
    pupil = world.students["a1_first"]
    assert ClassMembership.objects.filter(student=pupil, homeroom_class=world.class_a1, shusseki_no=1).exists()
    assert report_class_on(pupil, today) == world.class_a1
    assert marks._membership_on(pupil.pk, today).homeroom_class_id == world.class_a1.pk
    assert marks._membership_on(pupil.pk, datetime.date(year + 1, 4, 8)).homeroom_class_id == next_one.pk
    # The register pickers list this year's classes on a March day, next year's from April.
    march_classes = entry_classes_for(actor=actor, day=today)
    assert world.class_a1 in march_classes and next_one not in march_classes
    assert next_one in entry_classes_for(actor=actor, day=datetime.date(year + 1, 4, 8))


def test_reformed_grade_sends_pupils_to_placement(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _march(monkeypatch, world)
    year = world.class_a1.school_year.year
    actor = get_actor(world.user("school_admin_a"))
    plan = rollover_preview(actor=actor, school_id=world.school_a.pk, from_year=year, reform_grades={"P1"})
    assert all(not c.carried_over for c in plan.grades[0].classes)
    result = rollover_apply(actor=actor, school_id=world.school_a.pk, from_year=year,
                            plan_options=_options(plan, graduation=datetime.date(year + 1, 3, 19),
                                                  reform=frozenset({"P1"})))
    assert (result.pending, result.classes_created) == (3, 0)
    assert Student.objects.filter(pending_year=year + 1, pending_grade_code="P2").count() == 3
    assert not HomeroomClass.objects.filter(school_year__year=year + 1).exists()


def test_special_needs_classes_are_carried_over_even_when_the_grade_is_reformed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _march(monkeypatch, world)
    year = world.class_a1.school_year.year
    special = HomeroomClass.objects.create(school_year=world.class_a1.school_year, grade_code="P1", name="ひまわり",
                                           kind=HomeroomClass.Kind.SPECIAL_NEEDS,
                                           special_needs_category=HomeroomClass.SpecialNeedsCategory.AUTISM_EMOTIONAL)
    pupil = Student(school=world.school_a, family_name="支援", given_name="一", family_name_kana="シエン",
                    given_name_kana="ハジメ", special_needs_placement="special_needs_class")
    pupil.save()
    ClassMembership.objects.create(student=pupil, homeroom_class=special, shusseki_no=1)
    actor = get_actor(world.user("school_admin_a"))
    plan = rollover_preview(actor=actor, school_id=world.school_a.pk, from_year=year, reform_grades={"P1"})
    rollover_apply(actor=actor, school_id=world.school_a.pk, from_year=year,
                   plan_options=_options(plan, graduation=datetime.date(year + 1, 3, 19), reform=frozenset({"P1"})))
    carried = HomeroomClass.objects.get(school_year__year=year + 1, grade_code="P2", name="ひまわり")
    assert carried.kind == HomeroomClass.Kind.SPECIAL_NEEDS
    assert carried.special_needs_category == HomeroomClass.SpecialNeedsCategory.AUTISM_EMOTIONAL
    assert carried.memberships.get().student_id == pupil.pk


def test_apply_refuses_to_run_twice(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _march(monkeypatch, world)
    year = world.class_a1.school_year.year
    actor = get_actor(world.user("principal_a"))
    plan = rollover_preview(actor=actor, school_id=world.school_a.pk, from_year=year)
    options = _options(plan, graduation=datetime.date(year + 1, 3, 19))
    rollover_apply(actor=actor, school_id=world.school_a.pk, from_year=year, plan_options=options)
    memberships = ClassMembership.objects.count()
    again = rollover_preview(actor=actor, school_id=world.school_a.pk, from_year=year)
    assert again.applied is not None
    with pytest.raises(ValidationFailed) as exc:
        rollover_apply(actor=actor, school_id=world.school_a.pk, from_year=year,
                       plan_options=_options(again, graduation=datetime.date(year + 1, 3, 19)))
    assert "実行済み" in str(exc.value)
    assert ClassMembership.objects.count() == memberships


def test_apply_refuses_a_stale_preview_and_a_future_graduation_date(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sixth_grade(world)
    _march(monkeypatch, world, day=10)
    year = world.class_a1.school_year.year
    actor = get_actor(world.user("principal_a"))
    plan = rollover_preview(actor=actor, school_id=world.school_a.pk, from_year=year)
    with pytest.raises(ValidationFailed) as exc:
        rollover_apply(actor=actor, school_id=world.school_a.pk, from_year=year,
                       plan_options=_options(plan, graduation=plan.graduation_default))
    assert "graduation_date" in exc.value.errors
    with pytest.raises(ValidationFailed):
        rollover_apply(actor=actor, school_id=world.school_a.pk, from_year=year,
                       plan_options=RolloverOptions(graduation_date=datetime.date(year + 1, 3, 9),
                                                    reform_grades=frozenset(), digest="0" * 32))
    assert not SchoolYear.objects.filter(school=world.school_a, year=year + 1).exists()


def test_failure_midway_leaves_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _six, graduate = _sixth_grade(world)
    _march(monkeypatch, world)
    year = world.class_a1.school_year.year
    actor = get_actor(world.user("principal_a"))
    plan = rollover_preview(actor=actor, school_id=world.school_a.pk, from_year=year)
    real = services.rollover._renumber_class
    calls = []

    def failing(actor: Any, klass: HomeroomClass) -> int:
        calls.append(klass.pk)
        if len(calls) == 2:
            raise RuntimeError("connection lost")
        return real(actor, klass)

    monkeypatch.setattr(services.rollover, "_renumber_class", failing)
    with pytest.raises(RuntimeError):
        rollover_apply(actor=actor, school_id=world.school_a.pk, from_year=year,
                       plan_options=_options(plan, graduation=datetime.date(year + 1, 3, 19)))
    assert not SchoolYear.objects.filter(school=world.school_a, year=year + 1).exists()
    assert not HomeroomClass.objects.filter(school_year__year=year + 1).exists()
    graduate.refresh_from_db()
    assert graduate.is_active
    assert not EnrollmentEvent.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="students.rollover").exists()


def test_other_school_and_roles_without_the_capability_are_not_found(world: World) -> None:
    year = world.class_a1.school_year.year
    with pytest.raises(NotFoundOrNoAccess):
        rollover_preview(actor=get_actor(world.user("principal_a")), school_id=world.school_b.pk, from_year=year)
    with pytest.raises(NotFoundOrNoAccess):
        rollover_preview(actor=get_actor(world.user("homeroom_a1")), school_id=world.school_a.pk, from_year=year)
    with pytest.raises(NotFoundOrNoAccess):
        rollover_apply(actor=get_actor(world.user("board_officer_a")), school_id=world.school_a.pk,
                       from_year=year, plan_options=RolloverOptions(datetime.date(year + 1, 3, 19),
                                                                    frozenset(), ""))


def test_preview_of_a_year_that_does_not_exist_says_so(world: World) -> None:
    with pytest.raises(ValidationFailed):
        rollover_preview(actor=get_actor(world.user("principal_a")), school_id=world.school_a.pk, from_year=1999)


def test_search_shows_this_years_class_while_next_years_is_prepared(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from komu.students.selectors import student_list

    _march(monkeypatch, world)
    year = world.class_a1.school_year.year
    actor = get_actor(world.user("principal_a"))
    plan = rollover_preview(actor=actor, school_id=world.school_a.pk, from_year=year)
    rollover_apply(actor=actor, school_id=world.school_a.pk, from_year=year,
                   plan_options=_options(plan, graduation=datetime.date(year + 1, 3, 19)))
    rows = student_list(actor=actor, kana="タカハシ ヨシノ")
    assert [r.class_label for r in rows] == ["小学1年 1組"]
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: datetime.date(year + 1, 4, 8))
    rows = student_list(actor=actor, kana="タカハシ ヨシノ")
    assert [r.class_label for r in rows] == ["小学2年 1組"]


def test_home_page_todo_names_schools_whose_rollover_is_due(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from komu.students.selectors import rollover_todos

    year = world.class_a1.school_year.year
    actor = get_actor(world.user("principal_a"))
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: datetime.date(year, 11, 26))
    assert rollover_todos(actor=actor) == []
    _march(monkeypatch, world)
    assert [(t.school_id, t.from_year) for t in rollover_todos(actor=actor)] == [(world.school_a.pk, year)]
    plan = rollover_preview(actor=actor, school_id=world.school_a.pk, from_year=year)
    rollover_apply(actor=actor, school_id=world.school_a.pk, from_year=year,
                   plan_options=_options(plan, graduation=datetime.date(year + 1, 3, 19)))
    assert rollover_todos(actor=actor) == []
