"""The pupil screens, read as sentences: who sees which class and pupil, what each role sees on a record, and
that every listing and record view leaves an audit event."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from komu.audit.models import AuditEvent
from komu.students.models import ClassMembership, Student
from komu.testing.world import World

pytestmark = pytest.mark.django_db

LIST = reverse("students:list")


def detail_url(student: Student) -> str:
    return reverse("students:detail", kwargs={"student_id": student.pk})


def edit_url(student: Student) -> str:
    return reverse("students:edit", kwargs={"student_id": student.pk})


def add_pupils(world: World, count: int, *, start: int = 3) -> list[Student]:
    pupils = []
    for no in range(start, start + count):
        student = Student(
            school=world.school_a, family_name="青木", given_name=f"太郎{no}", family_name_kana="アオキ",
            given_name_kana=f"タロウ{'ー' * (no % 5)}", sex="male", birth_date=datetime.date(2017, 5, 1),
        )
        student.save()
        ClassMembership.objects.create(student=student, homeroom_class=world.class_a1, shusseki_no=no)
        pupils.append(student)
    return pupils


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- class lists -----------------------------------------------------------------------------------------------


def test_homeroom_teacher_lands_on_their_own_class(signed_in: Any, world: World) -> None:
    response = signed_in("homeroom_a1").get(LIST)
    assert response.status_code == 200
    assert response.context["homeroom_class"] == world.class_a1
    body = response.content.decode()
    # Stored exactly as entered: 4-byte 𠮷, the compatibility ideograph 﨑 and a variation sequence survive.
    assert "髙橋" in body and "𠮷乃" in body and "山﨑" in body and "葛󠄀太" in body
    assert "タカハシ" in body
    assert "佐藤" not in body  # class 2's pupil


def test_homeroom_teacher_cannot_see_another_class(signed_in: Any, world: World) -> None:
    client = signed_in("homeroom_a1")
    assert client.get(LIST, {"class": world.class_a2.pk}).status_code == 404
    assert client.get(LIST, {"class": world.class_b1.pk}).status_code == 404
    assert client.get(LIST, {"class": "not-a-number"}).status_code == 404


def test_homeroom_teacher_cannot_open_a_pupil_of_another_class(signed_in: Any, world: World) -> None:
    client = signed_in("homeroom_a1")
    assert client.get(detail_url(world.students["a1_first"])).status_code == 200
    assert client.get(detail_url(world.students["a2_first"])).status_code == 404


def test_teacher_of_school_a_cannot_reach_school_b(signed_in: Any, world: World) -> None:
    client = signed_in("teacher_a")
    assert client.get(LIST, {"class": world.class_a2.pk}).status_code == 200
    assert client.get(LIST, {"class": world.class_b1.pk}).status_code == 404
    assert client.get(detail_url(world.students["b1_first"])).status_code == 404
    response = client.get(LIST, {"kana": "スズキ"})
    assert response.status_code == 200
    assert response.context["rows"] == []


def test_principal_picks_among_the_classes_of_their_school(signed_in: Any, world: World) -> None:
    response = signed_in("principal_a").get(LIST)
    assert response.status_code == 200
    assert response.context["rows"] is None  # nothing listed until a class is chosen
    assert [c.pk for c in response.context["class_options"]] == [world.class_a1.pk, world.class_a2.pk]
    assert "学級を選ぶか、ふりがなで検索してください。" in response.content.decode()


def test_board_officer_chooses_a_school_before_a_class(signed_in: Any, world: World) -> None:
    client = signed_in("board_officer_a")
    response = client.get(LIST)
    assert [s.pk for s in response.context["schools"]] == [world.school_a.pk, world.school_a2.pk]
    assert response.context["class_options"] == []
    response = client.get(LIST, {"school": world.school_a.pk})
    assert [c.pk for c in response.context["class_options"]] == [world.class_a1.pk, world.class_a2.pk]
    assert client.get(LIST, {"class": world.class_b1.pk}).status_code == 404


def test_listing_a_class_is_audited(signed_in: Any, world: World) -> None:
    signed_in("homeroom_a1").get(LIST, {"class": world.class_a1.pk})
    [event] = events("students.list.viewed")
    assert event.actor_username == "homeroom_a1"
    assert event.object_type == "directory.homeroomclass"
    assert event.object_id == str(world.class_a1.pk)
    assert event.detail["count"] == 2
    assert event.school_id == world.school_a.pk


def test_class_list_costs_the_same_queries_for_2_or_35_pupils(
    signed_in: Any, world: World, django_assert_num_queries: Any
) -> None:
    client = signed_in("homeroom_a1")
    client.get(LIST)  # warm the session and caches
    with CaptureQueriesContext(connection) as small:
        assert client.get(LIST).status_code == 200
    add_pupils(world, 33)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(LIST)
    assert len(response.context["rows"]) == 35


def test_search_result_page_costs_the_same_queries_for_few_or_many_matches(
    signed_in: Any, world: World, django_assert_num_queries: Any
) -> None:
    client = signed_in("principal_a")
    add_pupils(world, 1)
    client.get(LIST, {"kana": "アオキ"})
    with CaptureQueriesContext(connection) as small:
        assert len(client.get(LIST, {"kana": "アオキ"}).context["rows"]) == 1
    add_pupils(world, 20, start=10)
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(client.get(LIST, {"kana": "アオキ"}).context["rows"]) == 21


def test_guardian_children_page_costs_the_same_queries_for_one_or_three_children(
    signed_in: Any, world: World, django_assert_num_queries: Any
) -> None:
    from komu.students.models import GuardianLink

    client = signed_in("guardian_a")
    url = reverse("students:children")
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    for sibling in add_pupils(world, 2):
        GuardianLink.objects.create(guardian=world.guardians["guardian_a"], student=sibling, relationship="母")
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert len(response.context["children"]) == 3


# --- search ----------------------------------------------------------------------------------------------------


def test_search_by_full_or_family_kana_reading(signed_in: Any, world: World) -> None:
    client = signed_in("principal_a")
    full = client.get(LIST, {"kana": "タカハシ ヨシノ"}).context["rows"]
    family = client.get(LIST, {"kana": "たかはし"}).context["rows"]  # hiragana is folded to katakana
    assert [r.id for r in full] == [world.students["a1_first"].pk]
    assert [r.id for r in family] == [world.students["a1_first"].pk]


def test_search_by_part_of_a_reading_finds_nothing_and_says_why(signed_in: Any, world: World) -> None:
    response = signed_in("principal_a").get(LIST, {"kana": "タカ"})
    assert response.context["rows"] == []
    assert "読み全体（姓と名、または姓だけ）" in response.content.decode()


def test_search_with_letters_that_are_not_kana_explains_in_japanese(signed_in: Any, world: World) -> None:
    response = signed_in("principal_a").get(LIST, {"kana": "Takahashi"})
    assert response.status_code == 200
    assert response.context["rows"] is None
    assert "カタカナ" in response.content.decode()


def test_search_by_shusseki_no_within_the_class(signed_in: Any, world: World) -> None:
    client = signed_in("homeroom_a1")
    rows = client.get(LIST, {"class": world.class_a1.pk, "no": "2"}).context["rows"]
    assert [r.id for r in rows] == [world.students["a1_second"].pk]
    response = client.get(LIST, {"class": world.class_a1.pk, "no": "abc"})
    assert "出席番号は数字で入力してください。" in response.content.decode()


# --- a pupil's record ------------------------------------------------------------------------------------------


def test_homeroom_teacher_sees_health_note_and_guardian_contacts(signed_in: Any, world: World) -> None:
    response = signed_in("homeroom_a1").get(detail_url(world.students["a1_first"]))
    body = response.content.decode()
    assert "卵アレルギー" in body and "要配慮個人情報" in body
    assert "090-1234-5678" in body and "髙橋 陽子" in body
    assert "平成29年4月3日" in body and "2017-04-03" in body  # 和暦 first, the western date beside it


def test_teacher_sees_neither_health_note_nor_guardian_contacts(signed_in: Any, world: World) -> None:
    response = signed_in("teacher_a").get(detail_url(world.students["a1_first"]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "卵アレルギー" not in body and "健康上の配慮" not in body
    assert "090-1234-5678" not in body and "保護者の連絡先" not in body
    [event] = events("students.student.viewed")
    assert "health_note" not in event.fields and "guardian.phone" not in event.fields


def test_board_officer_sees_contacts_but_not_the_health_note(signed_in: Any, world: World) -> None:
    body = signed_in("board_officer_a").get(detail_url(world.students["a1_first"])).content.decode()
    assert "090-1234-5678" in body
    assert "卵アレルギー" not in body


def test_viewing_a_record_is_audited_with_the_fields_shown(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    signed_in("nurse_a").get(detail_url(student))
    [event] = events("students.student.viewed")
    assert event.actor_username == "nurse_a"
    assert event.object_id == str(student.pk)
    assert "health_note" in event.fields and "birth_date" in event.fields


def test_principal_gets_a_link_to_who_viewed_the_record(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    body = signed_in("principal_a").get(detail_url(student)).content.decode()
    assert f"/audit/?object={student.pk}" in body and "この記録を見た人" in body


def test_homeroom_teacher_gets_no_audit_link_and_no_edit_button(signed_in: Any, world: World) -> None:
    body = signed_in("homeroom_a1").get(detail_url(world.students["a1_first"])).content.decode()
    assert "この記録を見た人" not in body
    assert "記録を編集" not in body


def test_names_with_markup_are_escaped_never_rendered(signed_in: Any, world: World) -> None:
    student = world.students["a1_second"]
    student.given_name = "<script>alert(1)</script>"
    student.save()
    for url in (detail_url(student), f"{LIST}?class={world.class_a1.pk}"):
        body = signed_in("homeroom_a1").get(url).content.decode()
        assert "<script>alert(1)</script>" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_pupils_with_legacy_gaiji_are_flagged(signed_in: Any, world: World) -> None:
    student = world.students["a1_second"]
    student.given_name = "\ue000太"
    student.needs_review = True
    student.save()
    client = signed_in("homeroom_a1")
    assert "外字の確認が必要" in client.get(LIST).content.decode()
    assert "外字の確認が必要" in client.get(detail_url(student)).content.decode()


# --- guardians -------------------------------------------------------------------------------------------------


def test_guardian_sees_only_their_own_children(signed_in: Any, world: World) -> None:
    response = signed_in("guardian_a").get(reverse("students:children"))
    assert response.status_code == 200
    assert [c.id for c in response.context["children"]] == [world.students["a1_first"].pk]
    body = response.content.decode()
    assert "髙橋" in body and "鈴木" not in body and "山﨑" not in body
    assert detail_url(world.students["a1_first"]) in body


def test_guardian_cannot_open_another_child(signed_in: Any, world: World) -> None:
    client = signed_in("guardian_a")
    assert client.get(detail_url(world.students["a1_first"])).status_code == 200
    assert client.get(detail_url(world.students["a1_second"])).status_code == 404
    assert client.get(detail_url(world.students["b1_first"])).status_code == 404


def test_guardian_going_to_the_class_list_is_sent_to_their_children(signed_in: Any, world: World) -> None:
    response = signed_in("guardian_a").get(LIST, {"class": world.class_a1.pk})
    assert response.status_code == 302
    assert response["Location"] == reverse("students:children")


def test_staff_have_no_children_page(signed_in: Any, world: World) -> None:
    assert signed_in("principal_a").get(reverse("students:children")).status_code == 404


def test_analysts_and_operators_have_no_pupil_screens(signed_in: Any, world: World) -> None:
    for name in ("operator", "national_analyst", "pref_analyst"):
        client = signed_in(name)
        assert client.get(LIST).status_code == 404
        assert client.get(detail_url(world.students["a1_first"])).status_code == 404


# --- editing ---------------------------------------------------------------------------------------------------


def _form(**overrides: str) -> dict[str, str]:
    data = {
        "family_name": "髙橋", "given_name": "𠮷乃", "family_name_kana": "タカハシ", "given_name_kana": "ヨシノ",
        "sex": "female", "birth_date": "2017-04-03", "address": "架空県みどり市二丁目2-2",
        "health_note": "卵アレルギー",
    }
    data.update(overrides)
    return data


def test_principal_edits_a_record_and_the_change_is_audited(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    client = signed_in("principal_a")
    assert client.get(edit_url(student)).status_code == 200
    response = client.post(edit_url(student), _form(given_name_kana="よしの", address="架空県みどり市三丁目3-3"))
    assert response.status_code == 302
    assert response["Location"] == detail_url(student)
    student.refresh_from_db()
    assert student.address == "架空県みどり市三丁目3-3"
    assert student.given_name == "𠮷乃"
    [event] = events("students.student.updated")
    assert event.fields == ["address"]  # よしの is stored as ヨシノ, which it already was


def test_wrong_kana_is_refused_with_a_japanese_message(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    response = signed_in("principal_a").post(edit_url(student), _form(family_name_kana="Takahashi"))
    assert response.status_code == 200
    assert "カタカナ" in response.content.decode()
    assert "入力内容にエラーがあります。" in response.content.decode()
    assert events("students.student.updated") == []


def test_empty_name_and_bad_date_are_refused_in_japanese(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    response = signed_in("principal_a").post(edit_url(student), _form(family_name="", birth_date="2017/13/40"))
    body = response.content.decode()
    assert "姓を入力してください。" in body
    assert "生年月日は 2017-04-02 のように" in body


def test_board_officer_edits_without_seeing_or_wiping_the_health_note(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    client = signed_in("board_officer_a")
    page = client.get(edit_url(student))
    assert "health_note" not in page.context["form"].fields
    assert "卵アレルギー" not in page.content.decode()
    data = _form(address="架空県みどり市四丁目4-4")
    del data["health_note"]
    assert client.post(edit_url(student), data).status_code == 302
    student.refresh_from_db()
    assert student.address == "架空県みどり市四丁目4-4"
    assert student.health_note == "卵アレルギー"


def test_homeroom_teacher_and_other_schools_cannot_edit(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    assert signed_in("homeroom_a1").get(edit_url(student)).status_code == 404
    assert signed_in("principal_b").get(edit_url(student)).status_code == 404
    assert signed_in("principal_b").post(edit_url(student), _form(address="x")).status_code == 404
    student.refresh_from_db()
    assert student.address == "架空県みどり市一丁目1-1"
