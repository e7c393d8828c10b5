"""Directory writes, read as sentences: the messages a wrong value gets, who may change which school, and that
every change leaves an audit event."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.codes import make_school_code
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.core.wareki import fiscal_year_of
from komu.directory import services
from komu.directory.models import Board, HomeroomClass, Role, School, SchoolYear, StaffAssignment, Term
from komu.testing.world import World, make_user

pytestmark = pytest.mark.django_db


def actor(world: World, name: str):  # type: ignore[no-untyped-def]
    return get_actor(world.user(name))


def school_input(
    world: World, *, code: str = "", number: str = "0000050", **overrides: object
) -> services.SchoolInput:
    values: dict[str, object] = {
        "code": code or make_school_code("B1", "13", "2", number),
        "name": "みどり市立第五小学校",
        "board_id": world.board_a.pk,
        "address": "架空都みどり市五丁目5番5号",
        "phone": "０３－１２３４－５６７８",
    }
    values.update(overrides)
    return services.SchoolInput(**values)  # type: ignore[arg-type]


def last_event(action: str) -> AuditEvent:
    event = AuditEvent.objects.filter(action=action).order_by("-id").first()
    assert event is not None, f"no audit event {action}"
    return event


# --- schools ---------------------------------------------------------------------------------------------------


def test_board_officer_creates_a_school_under_their_board_and_it_is_audited(world: World) -> None:
    school = services.school_create(actor=actor(world, "board_officer_a"), data=school_input(world))
    assert school.school_type == "B1" and school.prefecture_id == "13"
    assert school.phone == "03-1234-5678"  # full-width digits and hyphens folded
    event = last_event("directory.school.created")
    assert event.school_id == school.pk and event.board_id == world.board_a.pk
    assert event.actor_username == "board_officer_a"


def test_a_wrong_check_digit_names_the_expected_digit(world: World) -> None:
    good = make_school_code("B1", "13", "2", "0000050")
    wrong = good[:12] + str((int(good[12]) + 1) % 10)
    with pytest.raises(ValidationFailed) as caught:
        services.school_create(actor=actor(world, "board_officer_a"), data=school_input(world, code=wrong))
    message = " ".join(caught.value.errors["code"])
    assert "チェックディジット" in message and f"「{good[12]}」" in message
    assert not School.objects.filter(name="みどり市立第五小学校").exists()


@pytest.mark.parametrize(
    ("code", "part"),
    [
        ("Z113200000015", "学校種別「Z1」"),
        ("B199200000015", "都道府県コード「99」"),
        ("B113700000015", "設置区分「7」"),
        ("B11320000001", "13桁"),
    ],
)
def test_a_malformed_school_code_says_which_part_is_wrong(world: World, code: str, part: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.school_create(actor=actor(world, "board_officer_a"), data=school_input(world, code=code))
    assert part in " ".join(caught.value.errors["code"])


def test_a_school_code_of_another_prefecture_than_its_board_is_refused(world: World) -> None:
    code = make_school_code("B1", "01", "2", "0000050")
    with pytest.raises(ValidationFailed) as caught:
        services.school_create(actor=actor(world, "board_officer_a"), data=school_input(world, code=code))
    assert "北海道" in " ".join(caught.value.errors["code"])


def test_a_registered_school_code_cannot_be_registered_twice(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.school_create(
            actor=actor(world, "board_officer_a"), data=school_input(world, code=world.school_a.code.lower())
        )
    assert "すでに登録されています" in " ".join(caught.value.errors["code"])


def test_board_officer_cannot_found_a_school_under_another_board(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        services.school_create(
            actor=actor(world, "board_officer_a"), data=school_input(world, board_id=world.board_b.pk)
        )


def test_school_admin_cannot_found_a_school(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        services.school_create(actor=actor(world, "school_admin_a"), data=school_input(world))


def test_school_admin_of_school_a_cannot_edit_school_b(world: World) -> None:
    data = school_input(world, code=world.school_b.code, name="書き換え", board_id=world.board_b.pk)
    with pytest.raises(NotFoundOrNoAccess):
        services.school_update(actor=actor(world, "school_admin_a"), school_id=world.school_b.pk, data=data)
    world.school_b.refresh_from_db()
    assert world.school_b.name == "あおば町立あおば小学校"


def test_school_admin_changes_their_schools_name_and_the_change_is_audited(world: World) -> None:
    data = school_input(world, code=world.school_a.code, name="みどり市立みどり第一小学校", phone="")
    school = services.school_update(
        actor=actor(world, "school_admin_a"), school_id=world.school_a.pk, data=data
    )
    assert school.name == "みどり市立みどり第一小学校"
    event = last_event("directory.school.updated")
    assert "name" in event.fields and "code" not in event.fields


def test_school_admin_cannot_change_their_schools_code(world: World) -> None:
    data = school_input(world, code=make_school_code("B1", "13", "2", "0000099"), name=world.school_a.name)
    with pytest.raises(PermissionDeniedError):
        services.school_update(actor=actor(world, "school_admin_a"), school_id=world.school_a.pk, data=data)


def test_school_admin_cannot_close_their_school(world: World) -> None:
    data = school_input(world, code=world.school_a.code, name=world.school_a.name, is_active=False)
    with pytest.raises(PermissionDeniedError):
        services.school_update(actor=actor(world, "school_admin_a"), school_id=world.school_a.pk, data=data)
    world.school_a.refresh_from_db()
    assert world.school_a.is_active


def test_board_officer_edits_only_their_boards_schools(world: World) -> None:
    officer = actor(world, "board_officer_a")
    data = school_input(world, code=world.school_a2.code, name="みどり市立みどり中学校")
    services.school_update(actor=officer, school_id=world.school_a2.pk, data=data)
    other = school_input(world, code=world.school_b.code, name="x", board_id=world.board_b.pk)
    with pytest.raises(NotFoundOrNoAccess):
        services.school_update(actor=officer, school_id=world.school_b.pk, data=other)


def test_the_school_type_of_a_school_with_classes_cannot_change(world: World) -> None:
    data = school_input(world, code=make_school_code("C1", "13", "2", "0000001"), name=world.school_a.name)
    with pytest.raises(ValidationFailed) as caught:
        services.school_update(actor=actor(world, "board_officer_a"), school_id=world.school_a.pk, data=data)
    assert "学校種" in " ".join(caught.value.errors["code"])


# --- boards ----------------------------------------------------------------------------------------------------


def test_operator_creates_a_municipal_board_under_the_prefectural_board(world: World) -> None:
    board = services.board_create(
        actor=actor(world, "operator"),
        data=services.BoardInput(
            code="１３９００３", name="ひかり村教育委員会", parent_id=world.pref_board.pk
        ),
    )
    assert board.code == "139003" and board.kind == Board.Kind.MUNICIPAL
    assert last_event("directory.board.created").board_id == board.pk


def test_a_board_cannot_hang_under_a_municipal_board(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.board_create(
            actor=actor(world, "operator"),
            data=services.BoardInput(code="139003", name="ひかり村教育委員会", parent_id=world.board_a.pk),
        )
    assert "都道府県教育委員会ではありません" in " ".join(caught.value.errors["parent"])


def test_board_officer_cannot_create_boards(world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        services.board_create(
            actor=actor(world, "board_officer_a"), data=services.BoardInput(code="139003", name="x")
        )


# --- years, terms, classes -------------------------------------------------------------------------------------


def test_a_new_school_year_runs_from_april_to_march_and_is_titled_in_both_calendars(world: World) -> None:
    year = fiscal_year_of(timezone.localdate()) + 1
    school_year = services.school_year_create(
        actor=actor(world, "school_admin_a"), school_id=world.school_a.pk, year=year
    )
    assert (school_year.start_date, school_year.end_date) == (
        datetime.date(year, 4, 1),
        datetime.date(year + 1, 3, 31),
    )
    assert school_year.title == f"{year}年度（令和{year - 2018}年度）"
    assert last_event("directory.school_year.created").school_id == world.school_a.pk


def test_a_school_year_cannot_run_past_march(world: World) -> None:
    year = fiscal_year_of(timezone.localdate()) + 1
    with pytest.raises(ValidationFailed) as caught:
        services.school_year_create(
            actor=actor(world, "school_admin_a"),
            school_id=world.school_a.pk,
            year=year,
            end_date=datetime.date(year + 1, 4, 30),
        )
    assert "3月31日" in " ".join(caught.value.errors["end_date"])


def test_the_same_school_year_cannot_be_registered_twice(world: World) -> None:
    year = fiscal_year_of(timezone.localdate())
    with pytest.raises(ValidationFailed) as caught:
        services.school_year_create(
            actor=actor(world, "school_admin_a"), school_id=world.school_a.pk, year=year
        )
    assert "すでに登録されています" in " ".join(caught.value.errors["year"])


def _year_a(world: World) -> SchoolYear:
    return world.class_a1.school_year


def test_three_terms_inside_the_year_are_saved_with_default_names(world: World) -> None:
    sy = _year_a(world)
    y = sy.year
    terms = services.terms_set(
        actor=actor(world, "school_admin_a"),
        school_year_id=sy.pk,
        terms=[
            services.TermInput(datetime.date(y, 4, 6), datetime.date(y, 7, 20)),
            services.TermInput(datetime.date(y, 9, 1), datetime.date(y, 12, 24)),
            services.TermInput(datetime.date(y + 1, 1, 8), datetime.date(y + 1, 3, 24)),
        ],
    )
    assert [t.name for t in terms] == ["1学期", "2学期", "3学期"]
    assert Term.objects.filter(school_year=sy).count() == 3
    assert last_event("directory.terms.set").detail["terms"] == 3


def test_terms_that_overlap_or_leave_the_year_are_refused(world: World) -> None:
    sy = _year_a(world)
    y = sy.year
    with pytest.raises(ValidationFailed) as caught:
        services.terms_set(
            actor=actor(world, "school_admin_a"),
            school_year_id=sy.pk,
            terms=[
                services.TermInput(datetime.date(y, 4, 1), datetime.date(y, 10, 10)),
                services.TermInput(datetime.date(y, 10, 1), datetime.date(y + 1, 4, 5)),
            ],
        )
    assert "前の学期の終了日" in " ".join(caught.value.errors["term2_start"])
    assert "年度の期間" in " ".join(caught.value.errors["term2_end"])


def test_one_term_is_not_a_term_structure(world: World) -> None:
    sy = _year_a(world)
    with pytest.raises(ValidationFailed) as caught:
        services.terms_set(
            actor=actor(world, "school_admin_a"),
            school_year_id=sy.pk,
            terms=[services.TermInput(sy.start_date, sy.end_date)],
        )
    assert "2つ" in " ".join(caught.value.errors["__all__"])


def test_a_special_needs_class_needs_its_category(world: World) -> None:
    sy = _year_a(world)
    data = services.ClassInput(grade_code="P2", name="ひまわり学級", kind=HomeroomClass.Kind.SPECIAL_NEEDS)
    with pytest.raises(ValidationFailed) as caught:
        services.homeroom_class_create(actor=actor(world, "school_admin_a"), school_year_id=sy.pk, data=data)
    assert "障害種別" in " ".join(caught.value.errors["special_needs_category"])
    klass = services.homeroom_class_create(
        actor=actor(world, "school_admin_a"),
        school_year_id=sy.pk,
        data=services.ClassInput(
            grade_code="P2",
            name="ひまわり学級",
            kind=HomeroomClass.Kind.SPECIAL_NEEDS,
            special_needs_category=HomeroomClass.SpecialNeedsCategory.INTELLECTUAL,
        ),
    )
    assert klass.get_special_needs_category_display() == "知的障害"
    assert last_event("directory.class.created").school_id == world.school_a.pk


def test_a_grade_must_exist_at_the_school_type(world: World) -> None:
    data = services.ClassInput(grade_code="J1", name="1組")
    with pytest.raises(ValidationFailed) as caught:
        services.homeroom_class_create(
            actor=actor(world, "school_admin_a"), school_year_id=_year_a(world).pk, data=data
        )
    assert "小学校では使えません" in " ".join(caught.value.errors["grade_code"])


def test_a_full_width_class_name_is_the_same_class(world: World) -> None:
    data = services.ClassInput(grade_code="P1", name="１組")
    with pytest.raises(ValidationFailed) as caught:
        services.homeroom_class_create(
            actor=actor(world, "school_admin_a"), school_year_id=_year_a(world).pk, data=data
        )
    assert "すでにあります" in " ".join(caught.value.errors["name"])


def test_school_admin_cannot_add_a_class_at_another_school(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        services.homeroom_class_create(
            actor=actor(world, "school_admin_a"),
            school_year_id=world.class_b1.school_year_id,
            data=services.ClassInput(grade_code="P2", name="1組"),
        )


def test_teacher_cannot_add_classes(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        services.homeroom_class_create(
            actor=actor(world, "teacher_a"),
            school_year_id=_year_a(world).pk,
            data=services.ClassInput(grade_code="P2", name="1組"),
        )


# --- staff assignments -----------------------------------------------------------------------------------------


def test_principal_assigns_a_homeroom_teacher_with_a_class_and_it_is_audited(world: World) -> None:
    make_user("new_teacher")
    assignment = services.staff_assignment_create(
        actor=actor(world, "principal_a"),
        data=services.StaffInput(
            login_id="ｎｅｗ_ｔｅａｃｈｅｒ",
            role=Role.HOMEROOM_TEACHER,
            school_id=world.school_a.pk,
            homeroom_class_id=world.class_a2.pk,
        ),
    )
    assert assignment.user.username == "new_teacher" and assignment.start_date == timezone.localdate()
    event = last_event("directory.staff.assigned")
    assert event.school_id == world.school_a.pk and event.detail["role"] == Role.HOMEROOM_TEACHER


def test_a_homeroom_teacher_needs_a_class(world: World) -> None:
    make_user("new_teacher")
    with pytest.raises(ValidationFailed) as caught:
        services.staff_assignment_create(
            actor=actor(world, "principal_a"),
            data=services.StaffInput(
                login_id="new_teacher", role=Role.HOMEROOM_TEACHER, school_id=world.school_a.pk
            ),
        )
    assert "担当学級" in " ".join(caught.value.errors["homeroom_class"])


def test_an_unknown_login_id_is_reported(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.staff_assignment_create(
            actor=actor(world, "principal_a"),
            data=services.StaffInput(login_id="nobody", role=Role.TEACHER, school_id=world.school_a.pk),
        )
    assert "nobody" in " ".join(caught.value.errors["login_id"])


def test_school_admin_cannot_make_anyone_principal(world: World) -> None:
    make_user("new_teacher")
    with pytest.raises(PermissionDeniedError):
        services.staff_assignment_create(
            actor=actor(world, "school_admin_a"),
            data=services.StaffInput(
                login_id="new_teacher", role=Role.PRINCIPAL, school_id=world.school_a.pk
            ),
        )


def test_nobody_changes_their_own_assignments(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.staff_assignment_create(
            actor=actor(world, "principal_a"),
            data=services.StaffInput(login_id="principal_a", role=Role.TEACHER, school_id=world.school_a.pk),
        )
    assert "自分自身" in " ".join(caught.value.errors["login_id"])
    own = StaffAssignment.objects.get(user=world.user("principal_a"))
    with pytest.raises(NotFoundOrNoAccess):
        services.staff_assignment_end(actor=actor(world, "principal_a"), assignment_id=own.pk)


def test_principal_cannot_assign_staff_at_another_school(world: World) -> None:
    make_user("new_teacher")
    with pytest.raises(NotFoundOrNoAccess):
        services.staff_assignment_create(
            actor=actor(world, "principal_a"),
            data=services.StaffInput(login_id="new_teacher", role=Role.TEACHER, school_id=world.school_b.pk),
        )


def test_board_officer_assigns_a_colleague_to_their_board(world: World) -> None:
    make_user("new_officer")
    assignment = services.staff_assignment_create(
        actor=actor(world, "board_officer_a"),
        data=services.StaffInput(login_id="new_officer", role=Role.BOARD_OFFICER, board_id=world.board_a.pk),
    )
    assert last_event("directory.staff.assigned").board_id == world.board_a.pk
    assert assignment.board == world.board_a


def test_ending_an_assignment_removes_the_role_from_the_next_day(world: World) -> None:
    teacher = StaffAssignment.objects.get(user=world.user("teacher_a"))
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    teacher.start_date = yesterday - datetime.timedelta(days=30)
    teacher.save()
    services.staff_assignment_end(
        actor=actor(world, "principal_a"), assignment_id=teacher.pk, end_date=yesterday
    )
    user = world.user("teacher_a")
    assert not get_actor(type(user).objects.get(pk=user.pk)).grants
    event = last_event("directory.staff.ended")
    assert event.detail["end_date"] == yesterday.isoformat() and event.school_id == world.school_a.pk


def test_an_ended_assignment_is_reopened_not_duplicated(world: World) -> None:
    teacher = StaffAssignment.objects.get(user=world.user("teacher_a"))
    teacher.start_date = timezone.localdate() - datetime.timedelta(days=60)
    teacher.end_date = timezone.localdate() - datetime.timedelta(days=2)
    teacher.save()
    again = services.staff_assignment_create(
        actor=actor(world, "principal_a"),
        data=services.StaffInput(login_id="teacher_a", role=Role.TEACHER, school_id=world.school_a.pk),
    )
    assert again.pk == teacher.pk and again.end_date is None
    assert StaffAssignment.objects.filter(user=world.user("teacher_a")).count() == 1


def test_a_current_assignment_cannot_be_given_twice(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.staff_assignment_create(
            actor=actor(world, "principal_a"),
            data=services.StaffInput(login_id="teacher_a", role=Role.TEACHER, school_id=world.school_a.pk),
        )
    assert "すでに" in " ".join(caught.value.errors["login_id"])


def test_board_officer_b_cannot_end_an_assignment_at_school_a(world: World) -> None:
    teacher = StaffAssignment.objects.get(user=world.user("teacher_a"))
    with pytest.raises(NotFoundOrNoAccess):
        services.staff_assignment_end(actor=actor(world, "board_officer_b"), assignment_id=teacher.pk)
