"""学級編制, 年次更新 and 出席番号の付け方 screens: who may open them, what they show, and that they write only
through the services (bulk form, drag-and-drop's same form, automatic proposal, roll-over preview and apply)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from komu.audit.models import AuditEvent
from komu.directory.models import HomeroomClass, School, SchoolYear
from komu.students.models import ClassMembership, SchoolNumberingRule, Student
from komu.testing.world import World

pytestmark = pytest.mark.django_db

PLACEMENT = reverse("students:placement")
AUTO = reverse("students:placement_auto")
ROLLOVER = reverse("students:rollover")
NUMBERING = reverse("students:numbering_rule")


def _next_year(world: World, school: School | None = None) -> SchoolYear:
    year = world.class_a1.school_year.year + 1
    return SchoolYear.objects.create(school=school or world.school_a, year=year,
                                     start_date=datetime.date(year, 4, 1), end_date=datetime.date(year + 1, 3, 31))


def _entrant(world: World, year: int, family: str, fk: str, sex: str = "male", school: School | None = None) -> Student:
    student = Student(school=school or world.school_a, family_name=family, given_name="一", family_name_kana=fk,
                      given_name_kana="ハジメ", sex=sex, pending_year=year, pending_grade_code="P1")
    student.save()
    return student


def test_placement_shows_waiting_pupils_and_classes_with_counts(signed_in: Any, world: World) -> None:
    year = _next_year(world)
    HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組")
    _entrant(world, year.year, "髙橋", "タカハシ", sex="female")
    response = signed_in("school_admin_a").get(PLACEMENT, {"year": year.year})
    assert response.status_code == 200
    body = response.content.decode()
    assert "髙橋" in body and "小学1年 1組" in body
    assert "この学級に入れる" in body and "自動で振り分ける" in body
    assert "students/placement.js" in body
    assert AuditEvent.objects.filter(action="students.placement.viewed").count() == 1


def test_placement_without_next_year_says_so_and_links_to_the_directory(signed_in: Any, world: World) -> None:
    year = world.class_a1.school_year.year + 1
    _entrant(world, year, "青木", "アオキ")
    response = signed_in("school_admin_a").get(PLACEMENT, {"year": year})
    body = response.content.decode()
    assert "まだ登録されていません" in body
    assert reverse("directory:year_create", args=[world.school_a.pk]) in body


def test_bulk_form_places_the_ticked_pupils(signed_in: Any, world: World) -> None:
    year = _next_year(world)
    klass = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組")
    a = _entrant(world, year.year, "渡辺", "ワタナベ")
    b = _entrant(world, year.year, "青木", "アオキ")
    response = signed_in("school_admin_a").post(PLACEMENT, {
        "school": world.school_a.pk, "year": year.year, "grade": "P1", "student": [str(a.pk), str(b.pk)],
        "homeroom_class": klass.pk,
    })
    assert response.status_code == 302
    assert [m.student_id for m in ClassMembership.objects.filter(homeroom_class=klass).order_by("shusseki_no")] == [
        b.pk, a.pk,
    ]


def test_bulk_form_without_pupils_or_class_explains_and_writes_nothing(signed_in: Any, world: World) -> None:
    year = _next_year(world)
    HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組")
    a = _entrant(world, year.year, "渡辺", "ワタナベ")
    client = signed_in("school_admin_a")
    response = client.post(PLACEMENT, {"school": world.school_a.pk, "year": year.year, "grade": "P1"})
    assert response.status_code == 200
    assert "チェックを入れてください" in response.content.decode()
    response = client.post(PLACEMENT, {"school": world.school_a.pk, "year": year.year, "grade": "P1",
                                       "student": [str(a.pk)]})
    assert "入れる学級を選んでください" in response.content.decode()
    assert not ClassMembership.objects.filter(homeroom_class__school_year=year).exists()


def test_placement_of_another_school_is_not_found(signed_in: Any, world: World) -> None:
    year_b = _next_year(world, world.school_b)
    klass_b = HomeroomClass.objects.create(school_year=year_b, grade_code="P1", name="1組")
    pupil_b = _entrant(world, year_b.year, "鈴木", "スズキ", school=world.school_b)
    client = signed_in("school_admin_a")
    assert client.get(PLACEMENT, {"school": world.school_b.pk}).status_code == 404
    response = client.post(PLACEMENT, {"school": world.school_a.pk, "year": year_b.year, "grade": "P1",
                                       "student": [str(pupil_b.pk)], "homeroom_class": klass_b.pk})
    assert response.status_code == 404
    assert not ClassMembership.objects.filter(student=pupil_b).exists()


def test_teachers_do_not_have_the_placement_or_rollover_screens(signed_in: Any, world: World) -> None:
    client = signed_in("homeroom_a1")
    assert client.get(PLACEMENT).status_code == 404
    assert client.get(ROLLOVER).status_code == 404


def test_auto_proposal_is_shown_then_applied(signed_in: Any, world: World) -> None:
    year = _next_year(world)
    one = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組", sort_order=1)
    two = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="2組", sort_order=2)
    a = _entrant(world, year.year, "青木", "アオキ")
    b = _entrant(world, year.year, "井上", "イノウエ")
    client = signed_in("school_admin_a")
    params = {"school": world.school_a.pk, "year": year.year, "grade": "P1"}
    response = client.get(AUTO, params)
    assert response.status_code == 200
    body = response.content.decode()
    assert "まだ何も変更していません" in body and "この案で学級に入れる" in body
    assert not ClassMembership.objects.filter(homeroom_class__school_year=year).exists()
    moves = [f"{a.pk}:{one.pk}", f"{b.pk}:{two.pk}"]
    response = client.post(AUTO, {**params, "move": moves})
    assert response.status_code == 302
    assert ClassMembership.objects.get(student=a).homeroom_class == one
    assert ClassMembership.objects.get(student=b).homeroom_class == two


def test_renumber_button_renumbers_and_returns(signed_in: Any, world: World) -> None:
    ClassMembership.objects.filter(student=world.students["a1_first"]).update(shusseki_no=7)
    response = signed_in("principal_a").post(reverse("students:renumber_class", args=[world.class_a1.pk]),
                                             {"next": NUMBERING})
    assert response.status_code == 302 and response["Location"] == NUMBERING
    assert ClassMembership.objects.get(student=world.students["a1_first"]).shusseki_no == 1
    # Another school's class answers 404, an external "next" is not followed.
    client = signed_in("principal_a")
    assert client.post(reverse("students:renumber_class", args=[world.class_b1.pk])).status_code == 404
    response = client.post(reverse("students:renumber_class", args=[world.class_a1.pk]),
                           {"next": "https://evil.example/"})
    assert response["Location"].startswith(reverse("students:list"))


def test_numbering_rule_screen_saves_the_rule(signed_in: Any, world: World) -> None:
    client = signed_in("principal_a")
    response = client.get(NUMBERING)
    assert response.status_code == 200 and "五十音順" in response.content.decode()
    response = client.post(NUMBERING, {"school": world.school_a.pk, "order": "boys_first"})
    assert response.status_code == 302
    assert SchoolNumberingRule.objects.get(school=world.school_a).order == "boys_first"
    response = client.post(NUMBERING, {"school": world.school_a.pk, "order": "by_height"})
    assert "一覧から選んでください" in response.content.decode()
    assert client.get(NUMBERING, {"school": world.school_b.pk}).status_code == 404


def test_rollover_preview_then_apply(signed_in: Any, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    year = world.class_a1.school_year.year
    today = datetime.date(year + 1, 3, 25)
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: today)
    client = signed_in("principal_a")
    response = client.get(ROLLOVER, {"from_year": year})
    assert response.status_code == 200
    body = response.content.decode()
    assert "小学2年 1組" in body and "新しく作る" in body and "年次更新を実行する" in body
    plan = response.context["plan"]
    # Without the confirmation tick nothing happens.
    form = {"school": world.school_a.pk, "from_year": year, "digest": plan.digest,
            "graduation_date": f"{year + 1}-03-19"}
    response = client.post(ROLLOVER, form)
    assert response.status_code == 200 and "チェックを入れてください" in response.content.decode()
    assert not SchoolYear.objects.filter(school=world.school_a, year=year + 1).exists()
    response = client.post(ROLLOVER, {**form, "confirm": "on"})
    assert response.status_code == 302
    assert ClassMembership.objects.filter(homeroom_class__school_year__year=year + 1).count() == 3
    response = client.get(response["Location"])
    assert "実行済み" in response.content.decode()
    response = client.post(ROLLOVER, {**form, "confirm": "on"})
    assert "実行済み" in response.content.decode()
    assert AuditEvent.objects.filter(action="students.rollover.applied").count() == 1


def test_rollover_of_another_school_is_not_found(signed_in: Any, world: World) -> None:
    assert signed_in("principal_a").get(ROLLOVER, {"school": world.school_b.pk}).status_code == 404


def test_class_list_links_to_the_class_tools_for_those_who_may_use_them(signed_in: Any, world: World) -> None:
    body = signed_in("school_admin_a").get(reverse("students:list"), {"class": world.class_a1.pk}).content.decode()
    assert PLACEMENT in body and ROLLOVER in body and NUMBERING in body
    assert reverse("students:renumber_class", args=[world.class_a1.pk]) in body
    body = signed_in("homeroom_a1").get(reverse("students:list")).content.decode()
    assert PLACEMENT not in body and ROLLOVER not in body


def test_placement_page_queries_do_not_grow_with_the_pupils(signed_in: Any, world: World) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    year = _next_year(world)
    one = HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組")
    HomeroomClass.objects.create(school_year=year, grade_code="P1", name="2組")
    client = signed_in("school_admin_a")
    params = {"school": world.school_a.pk, "year": year.year, "grade": "P1"}

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(PLACEMENT, params).status_code == 200
        return len(ctx.captured_queries)

    _entrant(world, year.year, "青木", "アオキ")
    count()  # the first request of a session also renews it
    few = count()
    for i in range(8):
        pupil = _entrant(world, year.year, f"井上{i}", "イノウエ")
        if i % 2:
            ClassMembership.objects.create(student=pupil, homeroom_class=one, shusseki_no=i)
            Student.objects.filter(pk=pupil.pk).update(pending_year=None, pending_grade_code="")
    assert count() == few


def test_rollover_in_april_starts_from_last_year_until_it_has_run(
    signed_in: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    year = world.class_a1.school_year.year
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: datetime.date(year + 1, 4, 10))
    response = signed_in("principal_a").get(ROLLOVER)
    assert response.status_code == 200
    assert response.context["plan"].from_year == year
    assert f"{year}年度 → {year + 1}年度" in response.content.decode()


def test_auto_proposal_lists_each_class_in_kana_order_whatever_order_the_balancing_took(
    signed_in: Any, world: World,
) -> None:
    year = _next_year(world)
    HomeroomClass.objects.create(school_year=year, grade_code="P1", name="1組", sort_order=1)
    _entrant(world, year.year, "上田", "ウエダ", sex="male")
    _entrant(world, year.year, "青木", "アオキ", sex="female")
    _entrant(world, year.year, "井上", "イノウエ", sex="male")
    body = signed_in("school_admin_a").get(AUTO, {"school": world.school_a.pk, "year": year.year,
                                                  "grade": "P1"}).content.decode()
    table = body[body.index("placement-proposal"):]
    assert table.index("アオキ") < table.index("イノウエ") < table.index("ウエダ")


def test_pupil_page_offers_the_transfer_and_says_a_pupil_awaits_placement(signed_in: Any, world: World) -> None:
    year = _next_year(world)
    waiting = _entrant(world, year.year, "青木", "アオキ")
    detail = reverse("students:detail", args=[waiting.pk])
    body = signed_in("principal_a").get(detail).content.decode()
    assert reverse("rosters:transfer_new", args=[waiting.pk]) in body
    assert "小学1年の学級編制待ち" in body and f"{PLACEMENT}?school={world.school_a.pk}" in body
    # A homeroom teacher neither transfers pupils nor places them.
    placed = world.students["a1_first"]
    body = signed_in("homeroom_a1").get(reverse("students:detail", args=[placed.pk])).content.decode()
    assert reverse("rosters:transfer_new", args=[placed.pk]) not in body and "学級編制待ち" not in body
