"""学級編制: pupils awaiting placement go into next year's classes by hand, in bulk or by an automatic proposal, and
every class is numbered in kana order."""

from __future__ import annotations

import datetime
import unicodedata
from typing import Any

import pytest

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.directory.models import HomeroomClass, School, SchoolYear
from komu.students import services
from komu.students.models import ClassMembership, SchoolNumberingRule, SpecialNeedsPlacement, Student
from komu.students.services import (
    PlacementMove,
    numbering_rule_set,
    placement_apply_proposal,
    placement_assign,
    placement_auto_propose,
)
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _next_year(world: World, school: School | None = None) -> SchoolYear:
    school = school or world.school_a
    year = world.class_a1.school_year.year + 1
    return SchoolYear.objects.create(school=school, year=year, start_date=datetime.date(year, 4, 1),
                                     end_date=datetime.date(year + 1, 3, 31))


def _entrant(school: School, year: int, family: str, given: str, fk: str, gk: str, sex: str = "male",
             **extra: Any) -> Student:
    student = Student(school=school, family_name=family, given_name=given, family_name_kana=fk,
                      given_name_kana=gk, sex=sex, pending_year=year, pending_grade_code="P1", **extra)
    student.save()
    return student


def _numbers(klass: HomeroomClass) -> list[tuple[int, str]]:
    return [(m.shusseki_no, m.student.family_name) for m in
            ClassMembership.objects.filter(homeroom_class=klass).select_related("student").order_by("shusseki_no")]


def test_bulk_placement_clears_pending_and_numbers_in_kana_order(world: World) -> None:
    year = _next_year(world)
    klass = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組")
    # 髙/﨑 are kept as typed; a reading typed on a Mac arrives decomposed (NFD) and still sorts as ザ.
    yamazaki = _entrant(world.school_a, year.year, "山﨑", "太郎", unicodedata.normalize("NFD", "ヤマザキ"), "タロウ")
    takahashi = _entrant(world.school_a, year.year, "髙橋", "花", "タカハシ", "ハナ", sex="female")
    aoki = _entrant(world.school_a, year.year, "青木", "一", "アオキ", "ハジメ")
    saito = _entrant(world.school_a, year.year, "斉藤", "次郎", "サイトウ", "ジロウ")
    zaitsu = _entrant(world.school_a, year.year, "財津", "三郎", unicodedata.normalize("NFD", "ザイツ"), "サブロウ")
    actor = get_actor(world.user("school_admin_a"))
    result = placement_assign(actor=actor, student_ids=[yamazaki.pk, takahashi.pk, aoki.pk, saito.pk, zaitsu.pk],
                              homeroom_class_id=klass.pk)
    assert (result.placed, result.moved) == (5, 0)
    # 五十音順 as a dictionary: 濁点 is a second-level difference, so ザイツ (サイツ) comes before サイトウ, where
    # code point order would put it after.
    assert _numbers(klass) == [(1, "青木"), (2, "財津"), (3, "斉藤"), (4, "髙橋"), (5, "山﨑")]
    yamazaki.refresh_from_db()
    assert (yamazaki.pending_year, yamazaki.pending_grade_code) == (None, "")
    events = AuditEvent.objects.filter(action="students.placement.assigned")
    assert events.count() == 5
    assert AuditEvent.objects.filter(action="students.shusseki_no.renumbered", object_id=str(klass.pk)).exists()


def test_numbering_follows_the_school_rule(world: World) -> None:
    year = _next_year(world)
    klass = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組")
    boy = _entrant(world.school_a, year.year, "青木", "一", "アオキ", "ハジメ")
    girl = _entrant(world.school_a, year.year, "渡辺", "花", "ワタナベ", "ハナ", sex="female")
    actor = get_actor(world.user("principal_a"))
    numbering_rule_set(actor=actor, school_id=world.school_a.pk, order=SchoolNumberingRule.Order.GIRLS_FIRST)
    placement_assign(actor=actor, student_ids=[boy.pk, girl.pk], homeroom_class_id=klass.pk)
    assert _numbers(klass) == [(1, "渡辺"), (2, "青木")]
    assert AuditEvent.objects.filter(action="students.numbering_rule.set").count() == 1


def test_numbering_rule_rejects_unknown_order_and_other_school(world: World) -> None:
    actor = get_actor(world.user("principal_a"))
    with pytest.raises(ValidationFailed):
        numbering_rule_set(actor=actor, school_id=world.school_a.pk, order="by_height")
    with pytest.raises(NotFoundOrNoAccess):
        numbering_rule_set(actor=actor, school_id=world.school_b.pk, order=SchoolNumberingRule.Order.KANA)


def test_moving_between_classes_before_the_year_starts_renumbers_both(world: World) -> None:
    year = _next_year(world)
    one = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組")
    two = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="2組")
    a = _entrant(world.school_a, year.year, "青木", "一", "アオキ", "ハジメ")
    b = _entrant(world.school_a, year.year, "井上", "二", "イノウエ", "ジ")
    actor = get_actor(world.user("school_admin_a"))
    placement_assign(actor=actor, student_ids=[a.pk, b.pk], homeroom_class_id=one.pk)
    result = placement_assign(actor=actor, student_ids=[a.pk], homeroom_class_id=two.pk)
    assert (result.placed, result.moved) == (0, 1)
    assert _numbers(one) == [(1, "井上")]
    assert _numbers(two) == [(1, "青木")]


def test_moving_after_the_year_started_is_refused(world: World) -> None:
    # The world's classes belong to the current 年度, which has started.
    actor = get_actor(world.user("school_admin_a"))
    pupil = world.students["a2_first"]
    with pytest.raises(ValidationFailed) as exc:
        placement_assign(actor=actor, student_ids=[pupil.pk], homeroom_class_id=world.class_a1.pk)
    assert "年度が始まった後" in str(exc.value.errors["students"][0])
    assert ClassMembership.objects.get(student=pupil).homeroom_class_id == world.class_a2.pk


def test_a_pupil_not_awaiting_this_grade_is_refused_and_nothing_is_written(world: World) -> None:
    year = _next_year(world)
    klass = HomeroomClass.objects.create(school_year=year, grade_code="P2", name="1組")
    waiting = _entrant(world.school_a, year.year, "青木", "一", "アオキ", "ハジメ")  # awaits P1, not P2
    actor = get_actor(world.user("school_admin_a"))
    with pytest.raises(ValidationFailed):
        placement_assign(actor=actor, student_ids=[waiting.pk], homeroom_class_id=klass.pk)
    assert not ClassMembership.objects.filter(homeroom_class=klass).exists()
    assert not AuditEvent.objects.filter(action="students.placement.assigned").exists()


def test_other_schools_classes_and_pupils_are_not_found(world: World) -> None:
    year_a = _next_year(world)
    year_b = _next_year(world, world.school_b)
    klass_a = HomeroomClass.objects.create(school_year=year_a, grade_code="P1", name="1組")
    klass_b = HomeroomClass.objects.create(school_year=year_b, grade_code="P1", name="1組")
    pupil_a = _entrant(world.school_a, year_a.year, "青木", "一", "アオキ", "ハジメ")
    pupil_b = _entrant(world.school_b, year_b.year, "井上", "二", "イノウエ", "ジ")
    actor = get_actor(world.user("school_admin_a"))
    with pytest.raises(NotFoundOrNoAccess):
        placement_assign(actor=actor, student_ids=[pupil_b.pk], homeroom_class_id=klass_b.pk)
    with pytest.raises(NotFoundOrNoAccess):
        placement_assign(actor=actor, student_ids=[pupil_b.pk], homeroom_class_id=klass_a.pk)
    with pytest.raises(NotFoundOrNoAccess):
        placement_assign(actor=actor, student_ids=["not-a-uuid"], homeroom_class_id=klass_a.pk)
    # A homeroom teacher has no placement capability at all.
    with pytest.raises(NotFoundOrNoAccess):
        placement_assign(actor=get_actor(world.user("homeroom_a1")), student_ids=[pupil_a.pk],
                         homeroom_class_id=klass_a.pk)


def test_auto_proposal_balances_counts_and_sex_and_sends_special_needs_to_their_class(world: World) -> None:
    year = _next_year(world)
    one = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組", sort_order=1)
    two = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="2組", sort_order=2)
    special = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="ひまわり", sort_order=3,
                                           kind=HomeroomClass.Kind.SPECIAL_NEEDS,
                                           special_needs_category=HomeroomClass.SpecialNeedsCategory.INTELLECTUAL)
    kana = ["アイダ", "イトウ", "ウエダ", "エンドウ", "オオタ", "カトウ", "キムラ", "クドウ"]
    boys = [_entrant(world.school_a, year.year, f"男{i}", "太", k, "タ") for i, k in enumerate(kana[:4])]
    girls = [_entrant(world.school_a, year.year, f"女{i}", "花", k, "ハナ", sex="female")
             for i, k in enumerate(kana[4:])]
    needs = _entrant(world.school_a, year.year, "支援", "一", "シエン", "ハジメ",
                     special_needs_placement=SpecialNeedsPlacement.SPECIAL_NEEDS_CLASS)
    actor = get_actor(world.user("school_admin_a"))
    before = AuditEvent.objects.count()
    proposal = placement_auto_propose(actor=actor, school_id=world.school_a.pk, year=year.year, grade_code="P1")
    assert AuditEvent.objects.count() == before  # a proposal writes nothing
    assert not ClassMembership.objects.filter(homeroom_class__school_year=year).exists()
    target = {m.student_id: m.homeroom_class_id for m in proposal.moves}
    assert target[str(needs.pk)] == special.pk
    for group in (boys, girls):
        counts = [sum(1 for s in group if target[str(s.pk)] == k.pk) for k in (one, two)]
        assert counts == [2, 2]
    # Kana order alternates: アイダ → 1組, イトウ → 2組.
    assert target[str(boys[0].pk)] == one.pk and target[str(boys[1].pk)] == two.pk
    result = placement_apply_proposal(actor=actor, school_id=world.school_a.pk, year=year.year, grade_code="P1",
                                      moves=proposal.moves)
    assert result.placed == 9
    assert [n for n, _name in _numbers(one)] == [1, 2, 3, 4]
    assert not Student.objects.filter(pending_year=year.year).exists()
    assert AuditEvent.objects.filter(action="students.placement.proposal_applied").count() == 1


def test_auto_proposal_leaves_special_needs_pupils_unplaced_without_such_a_class(world: World) -> None:
    year = _next_year(world)
    HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組")
    needs = _entrant(world.school_a, year.year, "支援", "一", "シエン", "ハジメ",
                     special_needs_placement=SpecialNeedsPlacement.SPECIAL_NEEDS_CLASS)
    proposal = placement_auto_propose(actor=get_actor(world.user("school_admin_a")), school_id=world.school_a.pk,
                                      year=year.year, grade_code="P1")
    assert proposal.moves == ()
    assert proposal.unplaced == (str(needs.pk),)


def test_applying_a_proposal_is_all_or_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    year = _next_year(world)
    one = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組")
    two = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="2組")
    a = _entrant(world.school_a, year.year, "青木", "一", "アオキ", "ハジメ")
    b = _entrant(world.school_a, year.year, "井上", "二", "イノウエ", "ジ")
    calls = []

    def failing_renumber(actor: Any, klass: HomeroomClass) -> int:
        calls.append(klass.pk)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return 0

    monkeypatch.setattr(services.placement, "_renumber_class", failing_renumber)
    with pytest.raises(RuntimeError):
        placement_apply_proposal(
            actor=get_actor(world.user("school_admin_a")), school_id=world.school_a.pk, year=year.year,
            grade_code="P1", moves=[PlacementMove(str(a.pk), one.pk), PlacementMove(str(b.pk), two.pk)],
        )
    assert not ClassMembership.objects.filter(homeroom_class__school_year=year).exists()
    assert Student.objects.filter(pending_year=year.year).count() == 2
    assert not AuditEvent.objects.filter(action="students.placement.assigned").exists()


def test_a_proposal_naming_another_grades_class_is_not_found(world: World) -> None:
    year = _next_year(world)
    other = HomeroomClass.objects.create(school_year=year, grade_code="P2", name="1組")
    a = _entrant(world.school_a, year.year, "青木", "一", "アオキ", "ハジメ")
    with pytest.raises(NotFoundOrNoAccess):
        placement_apply_proposal(actor=get_actor(world.user("school_admin_a")), school_id=world.school_a.pk,
                                 year=year.year, grade_code="P1", moves=[PlacementMove(str(a.pk), other.pk)])


def test_home_page_todo_counts_pupils_awaiting_placement_per_grade(world: World) -> None:
    from komu.students.selectors import placement_todos

    year = world.class_a1.school_year.year + 1
    _entrant(world.school_a, year, "青木", "一", "アオキ", "ハジメ")
    _entrant(world.school_a, year, "井上", "二", "イノウエ", "ジ")
    _entrant(world.school_b, year, "鈴木", "三", "スズキ", "サブロウ")
    todos = placement_todos(actor=get_actor(world.user("principal_a")))
    assert [(t.school_id, t.year, t.grade_label, t.count) for t in todos] == [(world.school_a.pk, year, "小学1年", 2)]
    assert todos[0].url.startswith("/students/placement/?school=")
    assert placement_todos(actor=get_actor(world.user("homeroom_a1"))) == []


def test_auto_proposal_prefers_the_special_needs_class_of_the_pupils_category(world: World) -> None:
    year = _next_year(world)
    intellectual = HomeroomClass.objects.create(
        school_year=year, grade_code="P1", name="ひまわり", kind=HomeroomClass.Kind.SPECIAL_NEEDS,
        special_needs_category=HomeroomClass.SpecialNeedsCategory.INTELLECTUAL)
    autism = HomeroomClass.objects.create(
        school_year=year, grade_code="P1", name="たんぽぽ", kind=HomeroomClass.Kind.SPECIAL_NEEDS,
        special_needs_category=HomeroomClass.SpecialNeedsCategory.AUTISM_EMOTIONAL)
    pupils = [
        _entrant(world.school_a, year.year, f"支援{i}", "一", kana, "ハジメ",
                 special_needs_placement=SpecialNeedsPlacement.SPECIAL_NEEDS_CLASS, special_needs_category=category)
        for i, (kana, category) in enumerate([("アイダ", "自閉症・情緒障害"), ("イトウ", "自閉症・情緒障害"),
                                             ("ウエダ", "")])
    ]
    proposal = placement_auto_propose(actor=get_actor(world.user("school_admin_a")), school_id=world.school_a.pk,
                                      year=year.year, grade_code="P1")
    target = {m.student_id: m.homeroom_class_id for m in proposal.moves}
    assert [target[str(p.pk)] for p in pupils] == [autism.pk, autism.pk, intellectual.pk]
