"""Directory screens, read as sentences: who sees which school and board, what a school's page shows, that forms
save through the services, that lists cost the same queries however long they are, and the bulk load page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from komu.audit.models import AuditEvent
from komu.core.codes import make_school_code
from komu.directory.models import Board, HomeroomClass, Role, School, SchoolYear, StaffAssignment
from komu.testing.world import World, make_user

pytestmark = pytest.mark.django_db

SCHOOLS = reverse("directory:schools")
BOARDS = reverse("directory:boards")
BULK = reverse("directory:bulk_load")


def detail(school: School) -> str:
    return reverse("directory:school_detail", args=[school.pk])


def add_schools(world: World, count: int) -> None:
    for n in range(count):
        School.objects.create(
            code=make_school_code("B1", "13", "2", f"{500 + n:07d}"),
            name=f"追加小学校{n}",
            school_type="B1",
            board=world.board_a,
            prefecture_id="13",
        )


def query_count(client: Any, url: str) -> int:
    client.get(url)  # warm up: first-request work (session, caches) is not what we measure
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


# --- school list -----------------------------------------------------------------------------------------------


def test_operator_sees_every_school(signed_in: Any, world: World) -> None:
    body = signed_in("operator").get(SCHOOLS).content.decode()
    assert all(s.name in body for s in (world.school_a, world.school_a2, world.school_b))


def test_school_admin_sees_only_their_school(signed_in: Any, world: World) -> None:
    body = signed_in("school_admin_a").get(SCHOOLS).content.decode()
    assert world.school_a.name in body
    assert world.school_a2.name not in body and world.school_b.name not in body


def test_board_officer_sees_their_boards_schools(signed_in: Any, world: World) -> None:
    body = signed_in("board_officer_a").get(SCHOOLS).content.decode()
    assert world.school_a.name in body and world.school_a2.name in body and world.school_b.name not in body


def test_search_finds_a_school_by_full_width_code_or_part_of_its_name(signed_in: Any, world: World) -> None:
    client = signed_in("operator")
    typed = world.school_b.code[:6].translate(str.maketrans("0123456789B", "０１２３４５６７８９ｂ"))
    body = client.get(SCHOOLS, {"q": typed}).content.decode()
    assert world.school_b.name in body and world.school_a2.name not in body
    body = client.get(SCHOOLS, {"q": "第一中"}).content.decode()
    assert world.school_a2.name in body and world.school_a.name not in body


def test_filter_by_school_type(signed_in: Any, world: World) -> None:
    body = signed_in("operator").get(SCHOOLS, {"type": "C1"}).content.decode()
    assert world.school_a2.name in body and world.school_a.name not in body


def test_htmx_search_answers_only_the_results(signed_in: Any, world: World) -> None:
    response = signed_in("operator").get(SCHOOLS, {"q": "あおば"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "<html" not in body and world.school_b.name in body and "1 校" in body


def test_the_school_list_costs_the_same_queries_for_3_or_30_schools(
    signed_in: Any, world: World, django_assert_num_queries: Any
) -> None:
    client = signed_in("operator")
    baseline = query_count(client, SCHOOLS)
    add_schools(world, 27)
    with django_assert_num_queries(baseline):
        response = client.get(SCHOOLS)
    assert "追加小学校26" in response.content.decode()


def test_guardians_have_no_school_list(signed_in: Any, world: World) -> None:
    assert signed_in("guardian_a").get(SCHOOLS).status_code == 404


# --- school detail ---------------------------------------------------------------------------------------------


def test_school_page_shows_code_parts_year_classes_and_pupils(signed_in: Any, world: World) -> None:
    response = signed_in("principal_a").get(detail(world.school_a))
    body = response.content.decode()
    year = world.class_a1.school_year.year
    assert "小学校" in body and "東京都" in body and "公立" in body
    assert f"{year}年度（令和{year - 2018}年度）" in body
    assert "小学1年" in body and "2 学級・在籍 3 名" in body  # class 1: two pupils, class 2: one
    assert "homeroom_a1" in body  # the homeroom teacher, in the staff table and the class row
    assert reverse("directory:school_edit", args=[world.school_a.pk]) in body


def test_teacher_sees_the_school_but_not_its_staff_or_edit_links(signed_in: Any, world: World) -> None:
    body = signed_in("teacher_a").get(detail(world.school_a)).content.decode()
    assert world.school_a.name in body
    assert (
        "教職員の配置" not in body and reverse("directory:school_edit", args=[world.school_a.pk]) not in body
    )


def test_analyst_sees_whether_a_class_has_a_teacher_but_not_who(signed_in: Any, world: World) -> None:
    body = signed_in("national_analyst").get(detail(world.school_a)).content.decode()
    assert "配置済み" in body and "homeroom_a1" not in body


def test_another_schools_page_is_not_found(signed_in: Any, world: World) -> None:
    assert signed_in("principal_a").get(detail(world.school_b)).status_code == 404
    assert signed_in("board_officer_b").get(detail(world.school_a)).status_code == 404


def test_the_school_page_costs_the_same_queries_however_many_classes(
    signed_in: Any, world: World, django_assert_num_queries: Any
) -> None:
    client = signed_in("principal_a")
    baseline = query_count(client, detail(world.school_a))
    school_year = world.class_a1.school_year
    for n in range(3, 13):
        HomeroomClass.objects.create(school_year=school_year, grade_code=f"P{n % 6 + 1}", name=f"{n}組")
    with django_assert_num_queries(baseline):
        client.get(detail(world.school_a))


# --- school forms ----------------------------------------------------------------------------------------------


def test_board_officer_registers_a_school(signed_in: Any, world: World) -> None:
    code = make_school_code("B1", "13", "2", "0000300")
    response = signed_in("board_officer_a").post(
        reverse("directory:school_create"),
        {
            "code": code,
            "name": "みどり市立第三小学校",
            "board": world.board_a.pk,
            "address": "",
            "phone": "",
            "is_active": "on",
        },
    )
    school = School.objects.get(code=code)
    assert response.status_code == 302 and response["Location"] == detail(school)
    assert AuditEvent.objects.filter(action="directory.school.created", object_id=str(school.pk)).exists()


def test_a_wrong_check_digit_is_shown_next_to_the_field(signed_in: Any, world: World) -> None:
    code = make_school_code("B1", "13", "2", "0000300")
    wrong = code[:12] + str((int(code[12]) + 1) % 10)
    response = signed_in("board_officer_a").post(
        reverse("directory:school_create"),
        {
            "code": wrong,
            "name": "みどり市立第三小学校",
            "board": world.board_a.pk,
            "is_active": "on",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200 and "チェックディジット" in body and f"「{code[12]}」" in body
    assert 'aria-invalid="true"' in body


def test_school_admin_has_no_school_registration(signed_in: Any, world: World) -> None:
    assert signed_in("school_admin_a").get(reverse("directory:school_create")).status_code == 404


def test_school_admin_cannot_open_another_schools_edit_page(signed_in: Any, world: World) -> None:
    url = reverse("directory:school_edit", args=[world.school_b.pk])
    assert signed_in("school_admin_a").get(url).status_code == 404


def test_school_admin_edits_the_name_but_the_code_field_is_locked(signed_in: Any, world: World) -> None:
    client = signed_in("school_admin_a")
    url = reverse("directory:school_edit", args=[world.school_a.pk])
    assert "disabled" in client.get(url).content.decode()
    response = client.post(
        url, {"code": "B199999999999", "name": "新しい校名", "board": world.board_b.pk, "is_active": "on"}
    )
    assert response.status_code == 302
    world.school_a.refresh_from_db()
    # Disabled fields keep their registered values whatever is posted.
    assert world.school_a.name == "新しい校名" and world.school_a.board == world.board_a


# --- years, terms, classes -------------------------------------------------------------------------------------


def test_register_a_year_then_its_terms(signed_in: Any, world: World) -> None:
    client = signed_in("school_admin_a")
    year = world.class_a1.school_year.year + 1
    response = client.post(reverse("directory:year_create", args=[world.school_a.pk]), {"year": year})
    assert response.status_code == 302
    school_year = SchoolYear.objects.get(school=world.school_a, year=year)
    response = client.post(
        reverse("directory:terms_edit", args=[school_year.pk]),
        {
            "count": "2",
            "term1_start": f"{year}-04-01",
            "term1_end": f"{year}-10-09",
            "term2_start": f"令和{year - 2018}年10月14日",
            "term2_end": f"{year + 1}/3/24",
        },
    )
    assert response.status_code == 302
    assert [t.name for t in school_year.terms.order_by("number")] == ["前期", "後期"]


def test_terms_outside_the_year_are_shown_on_the_form(signed_in: Any, world: World) -> None:
    school_year = world.class_a1.school_year
    y = school_year.year
    response = signed_in("school_admin_a").post(
        reverse("directory:terms_edit", args=[school_year.pk]),
        {
            "count": "2",
            "term1_start": f"{y}-04-01",
            "term1_end": f"{y}-09-30",
            "term2_start": f"{y}-10-01",
            "term2_end": f"{y + 1}-04-30",
        },
    )
    assert response.status_code == 200 and "年度の期間" in response.content.decode()


def test_adding_a_class_inline_answers_the_class_list_with_the_new_class(
    signed_in: Any, world: World
) -> None:
    school_year = world.class_a1.school_year
    url = reverse("directory:class_create", args=[school_year.pk])
    response = signed_in("school_admin_a").post(
        url, {"grade_code": "P3", "name": "1組", "kind": "regular"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'id="classes-section"' in body and "小学3年 1組 を登録しました" in body
    assert HomeroomClass.objects.filter(school_year=school_year, grade_code="P3").exists()


def test_an_inline_class_error_stays_in_the_class_list(signed_in: Any, world: World) -> None:
    url = reverse("directory:class_create", args=[world.class_a1.school_year_id])
    response = signed_in("school_admin_a").post(
        url, {"grade_code": "P1", "name": "1組", "kind": "regular"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200 and "すでにあります" in body and "<html" not in body


def test_adding_a_class_without_javascript_redirects_to_the_school(signed_in: Any, world: World) -> None:
    school_year = world.class_a1.school_year
    response = signed_in("school_admin_a").post(
        reverse("directory:class_create", args=[school_year.pk]),
        {
            "grade_code": "P2",
            "name": "ひまわり学級",
            "kind": "special_needs",
            "special_needs_category": "autism_emotional",
        },
    )
    assert response.status_code == 302 and response["Location"].endswith(f"?year={school_year.year}")


def test_classes_of_another_school_cannot_be_added(signed_in: Any, world: World) -> None:
    url = reverse("directory:class_create", args=[world.class_b1.school_year_id])
    assert (
        signed_in("school_admin_a")
        .post(url, {"grade_code": "P2", "name": "1組", "kind": "regular"})
        .status_code
        == 404
    )


# --- staff -----------------------------------------------------------------------------------------------------


def test_principal_assigns_and_ends_a_teacher(signed_in: Any, world: World) -> None:
    make_user("new_teacher")
    client = signed_in("principal_a")
    response = client.post(
        reverse("directory:staff_assign", args=[world.school_a.pk]),
        {
            "login_id": "new_teacher",
            "role": Role.HOMEROOM_TEACHER,
            "homeroom_class": world.class_a2.pk,
        },
    )
    assert response.status_code == 302
    assignment = StaffAssignment.objects.get(user__username="new_teacher")
    response = client.post(reverse("directory:staff_end", args=[assignment.pk]), {"end_date": ""})
    assert response.status_code == 200  # the end date is required
    response = client.post(
        reverse("directory:staff_end", args=[assignment.pk]), {"end_date": assignment.start_date.isoformat()}
    )
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.end_date == assignment.start_date


def test_board_officer_assigns_a_colleague_and_an_unknown_login_is_shown_on_the_form(
    signed_in: Any, world: World
) -> None:
    make_user("new_officer")
    client = signed_in("board_officer_a")
    url = reverse("directory:board_staff_assign", args=[world.board_a.pk])
    response = client.post(url, {"login_id": "nobody_here", "role": Role.BOARD_OFFICER})
    assert response.status_code == 200
    assert "ログインID「nobody_here」の教職員が見つかりません。" in response.content.decode()
    assert not StaffAssignment.objects.filter(board=world.board_a, user__username="nobody_here").exists()
    response = client.post(url, {"login_id": "new_officer", "role": Role.BOARD_OFFICER})
    assert response.status_code == 302
    assert response["Location"] == reverse("directory:board_detail", args=[world.board_a.pk])
    assert StaffAssignment.objects.filter(
        user__username="new_officer", role=Role.BOARD_OFFICER, board=world.board_a
    ).exists()


def test_school_admin_is_not_offered_the_principal_role(signed_in: Any, world: World) -> None:
    body = (
        signed_in("school_admin_a")
        .get(reverse("directory:staff_assign", args=[world.school_a.pk]))
        .content.decode()
    )
    assert 'value="teacher"' in body and 'value="principal"' not in body


def test_an_assignment_at_another_school_cannot_be_ended(signed_in: Any, world: World) -> None:
    teacher_b = StaffAssignment.objects.get(user=world.user("teacher_b"))
    assert (
        signed_in("principal_a").get(reverse("directory:staff_end", args=[teacher_b.pk])).status_code == 404
    )


# --- boards ----------------------------------------------------------------------------------------------------


def test_prefectural_analyst_sees_the_boards_of_their_prefecture(signed_in: Any, world: World) -> None:
    Board.objects.create(
        code="011000", name="北海道教育委員会", kind=Board.Kind.PREFECTURAL, prefecture_id="01"
    )
    body = signed_in("pref_analyst").get(BOARDS).content.decode()
    assert world.board_a.name in body and world.board_b.name in body and "北海道教育委員会" not in body


def test_board_officer_cannot_open_another_board(signed_in: Any, world: World) -> None:
    url = reverse("directory:board_detail", args=[world.board_b.pk])
    assert signed_in("board_officer_a").get(url).status_code == 404
    assert (
        signed_in("board_officer_a")
        .get(reverse("directory:board_detail", args=[world.board_a.pk]))
        .status_code
        == 200
    )


def test_the_board_list_costs_the_same_queries_however_many_boards(
    signed_in: Any, world: World, django_assert_num_queries: Any
) -> None:
    client = signed_in("operator")
    baseline = query_count(client, BOARDS)
    for n in range(20):
        Board.objects.create(
            code=f"13{9100 + n}",
            name=f"追加教育委員会{n}",
            kind=Board.Kind.MUNICIPAL,
            prefecture_id="13",
            parent=world.pref_board,
        )
    with django_assert_num_queries(baseline):
        client.get(BOARDS)


def test_operator_registers_a_board(signed_in: Any, world: World) -> None:
    response = signed_in("operator").post(
        reverse("directory:board_create"),
        {
            "code": "139010",
            "name": "ほし村教育委員会",
            "kind": "",
            "parent": world.pref_board.pk,
        },
    )
    assert response.status_code == 302 and Board.objects.get(code="139010").parent == world.pref_board


def test_board_officer_cannot_register_boards(signed_in: Any, world: World) -> None:
    assert signed_in("board_officer_a").get(reverse("directory:board_create")).status_code == 404


# --- bulk load -------------------------------------------------------------------------------------------------


def upload(client: Any, kind: str, name: str, data: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(BULK, {"kind": kind, "file": SimpleUploadedFile(name, data, content_type="text/csv")})


def test_only_operators_reach_the_bulk_load_page(signed_in: Any, world: World) -> None:
    assert signed_in("board_officer_a").get(BULK).status_code == 404


def test_bulk_load_preview_lists_errors_by_line_and_column_and_writes_nothing(
    signed_in: Any, world: World
) -> None:
    code = make_school_code("B1", "13", "2", "0000400")
    bad = code[:12] + str((int(code[12]) + 1) % 10)
    data = f"学校コード,学校名,教育委員会コード\r\n{code},第四,139001\r\n{bad},第五,139001\r\n".encode(
        "cp932"
    )
    body = upload(signed_in("operator"), "schools", "schools.csv", data).content.decode()
    assert "1 件のエラーがあります" in body and "3行目" in body and "チェックディジット" in body
    assert 'name="token"' not in body
    assert not School.objects.filter(code=code).exists()


def test_bulk_load_preview_then_apply(signed_in: Any, world: World) -> None:
    client = signed_in("operator")
    code = make_school_code("B1", "13", "2", "0000400")
    data = f"\ufeff学校コード,学校名,教育委員会コード\r\n{code},第四,139001\r\n".encode()
    body = upload(client, "schools", "schools.csv", data).content.decode()
    assert "新規 1 件" in body and not School.objects.filter(code=code).exists()
    token = re.search(r'name="token" value="([^"]+)"', body)
    assert token is not None
    response = client.post(reverse("directory:bulk_load_apply"), {"token": token.group(1)}, follow=True)
    assert School.objects.filter(code=code).exists()
    assert "schools.csv を登録しました" in response.content.decode()
    # The stash is used once: applying again finds nothing.
    again = client.post(reverse("directory:bulk_load_apply"), {"token": token.group(1)}, follow=True)
    assert "確認したファイルが見つかりません" in again.content.decode()


def test_bulk_load_apply_needs_the_token_of_this_session(signed_in: Any, world: World) -> None:
    response = signed_in("operator").post(
        reverse("directory:bulk_load_apply"), {"token": "guess"}, follow=True
    )
    assert "確認したファイルが見つかりません" in response.content.decode()


def test_sample_files_download(signed_in: Any, world: World) -> None:
    response = signed_in("operator").get(reverse("directory:bulk_load_sample", args=["schools"]))
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    assert response.content.startswith("\ufeff学校コード".encode())
