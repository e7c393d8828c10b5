"""The operator's bulk load: every encoding users send, every error reported with file, line and column, and
all-or-nothing application that a second run leaves unchanged."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest
from django.utils import timezone

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.codes import make_school_code
from komu.core.errors import PermissionDeniedError
from komu.core.wareki import fiscal_year_of
from komu.directory.models import Board, HomeroomClass, Role, School, SchoolYear, StaffAssignment
from komu.directory.services import LoadKind, LoadReport, bulk_load
from komu.testing.world import World, make_user

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SCHOOLS_HEADER = "学校コード,学校名,教育委員会コード,所在地,電話番号"


def code(number: str, school_type: str = "B1") -> str:
    return make_school_code(school_type, "13", "2", number)


def load(
    world: World,
    kind: str,
    data: bytes,
    *,
    filename: str = "schools.csv",
    dry_run: bool = False,
    who: str = "operator",
) -> LoadReport:
    return bulk_load(
        actor=get_actor(world.user(who)), kind=kind, data=data, filename=filename, dry_run=dry_run
    )


def csv_bytes(*lines: str, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def schools_csv(encoding: str = "utf-8") -> bytes:
    return csv_bytes(
        SCHOOLS_HEADER,
        f"{code('0000101')},みどり市立髙﨑小学校,139001,架空都みどり市一丁目,03-1111-2222",
        f"{code('0000102')},みどり市立第二小学校,139001,,",
        encoding=encoding,
    )


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- encodings -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "expected"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp932", "cp932")]
)
def test_schools_load_from_each_csv_encoding(world: World, encoding: str, expected: str) -> None:
    report = load(world, LoadKind.SCHOOLS, schools_csv(encoding))
    assert report.ok and report.applied, report.errors
    assert report.encoding == expected and report.created == 2
    school = School.objects.get(code=code("0000101"))
    assert school.name == "みどり市立髙﨑小学校"  # 髙 and 﨑 survive CP932
    assert school.board == world.board_a and school.school_type == "B1" and school.phone == "03-1111-2222"


def test_schools_load_from_xlsx(world: World) -> None:
    data = xlsx_bytes(
        [SCHOOLS_HEADER.split(","), [code("0000101"), "みどり市立第十小学校", "139001", "", ""]]
    )
    report = load(world, LoadKind.SCHOOLS, data, filename="schools.xlsx")
    assert report.ok and report.format == "xlsx" and report.created == 1


def test_an_xlsx_code_stored_as_a_number_is_reported_not_guessed(world: World) -> None:
    data = xlsx_bytes([["教育委員会コード", "名称"], [139005, "ほし村教育委員会"]])
    report = load(world, LoadKind.BOARDS, data, filename="boards.xlsx")
    assert not report.ok
    assert report.errors[0].line == 2 and report.errors[0].column == "教育委員会コード"
    assert "文字列" in report.errors[0].message
    assert not Board.objects.filter(code="139005").exists()


# --- errors ----------------------------------------------------------------------------------------------------


def test_a_bad_check_digit_is_reported_with_file_line_and_column(world: World) -> None:
    good = code("0000102")
    bad = good[:12] + str((int(good[12]) + 3) % 10)
    data = csv_bytes(SCHOOLS_HEADER, f"{code('0000101')},第一,139001,,", f"{bad},第二,139001,,")
    report = load(world, LoadKind.SCHOOLS, data)
    assert not report.ok and not report.applied
    [issue] = report.errors
    assert (issue.file, issue.line, issue.column) == ("schools.csv", 3, "学校コード")
    assert f"「{good[12]}」になるはず" in issue.message
    assert str(issue).startswith("schools.csv 3行目「学校コード」: ")
    assert not School.objects.filter(code=code("0000101")).exists()  # the valid row is not applied either


def test_duplicate_codes_in_the_file_are_reported_after_normalisation(world: World) -> None:
    full_width = code("0000101").translate(str.maketrans("0123456789BＢ", "０１２３４５６７８９ＢＢ"))
    data = csv_bytes(
        SCHOOLS_HEADER, f"{code('0000101')},第一,139001,,", f"{full_width},第一（重複）,139001,,"
    )
    report = load(world, LoadKind.SCHOOLS, data)
    [issue] = report.errors
    assert issue.line == 3 and issue.column == "学校コード" and "2行目と重複" in issue.message
    assert "削除" in issue.message
    assert not School.objects.filter(code=code("0000101")).exists()


def test_a_full_width_code_matches_the_registered_school(world: World) -> None:
    typed = world.school_a.code.translate(str.maketrans("0123456789", "０１２３４５６７８９")).lower()
    data = csv_bytes(SCHOOLS_HEADER, f"{typed},{world.school_a.name},139001,新しい所在地,")
    report = load(world, LoadKind.SCHOOLS, data)
    assert report.ok and report.updated == 1 and report.created == 0
    world.school_a.refresh_from_db()
    assert world.school_a.address == "新しい所在地"


def test_every_error_of_every_row_is_reported_in_one_pass(world: World) -> None:
    data = csv_bytes(
        SCHOOLS_HEADER,
        f"{code('0000101')},第一,999999,,",  # unknown board (and 99 is no prefecture)
        f"{code('0000102')},,139001,,",  # name missing
        f"{code('0000103')},第三,139001,,12345",  # phone
        f"{make_school_code('B1', '01', '2', '0000104')},第四,139001,,",  # prefecture differs from the board's
    )
    report = load(world, LoadKind.SCHOOLS, data)
    places = {(i.line, i.column) for i in report.errors}
    assert {(2, "教育委員会コード"), (3, "学校名"), (4, "電話番号"), (5, "学校コード")} <= places
    assert (report.rows, report.error_rows) == (4, 4)
    assert School.objects.count() == 3


def test_several_errors_in_one_row_are_all_reported(world: World) -> None:
    data = csv_bytes(SCHOOLS_HEADER, f"{code('0000101')},,139001,,12345")
    report = load(world, LoadKind.SCHOOLS, data)
    assert {(i.line, i.column) for i in report.errors} == {(2, "学校名"), (2, "電話番号")}
    assert (report.rows, report.error_rows) == (1, 1)


def test_an_unknown_heading_stops_the_file_and_says_which_headings_exist(world: World) -> None:
    report = load(world, LoadKind.SCHOOLS, csv_bytes("学校コード,学校名,教育委員会コード,校長名", "x,y,z,w"))
    assert not report.ok and "校長名" in report.errors[0].message and "「学校名」" in report.errors[0].message


def test_a_parent_board_may_come_from_the_same_file(world: World) -> None:
    data = csv_bytes(
        "教育委員会コード,名称,種別,上位教育委員会コード",
        "141000,架空県教育委員会,,",
        "149001,うみ市教育委員会,市区町村教育委員会,141000",
    )
    report = load(world, LoadKind.BOARDS, data, filename="boards.csv")
    assert report.ok and report.created == 2, report.errors
    child = Board.objects.get(code="149001")
    assert child.parent is not None and child.parent.code == "141000"
    assert child.parent.kind == Board.Kind.PREFECTURAL  # XX1000 with 種別 left blank


def test_a_parent_board_that_exists_nowhere_is_reported(world: World) -> None:
    data = csv_bytes("教育委員会コード,名称,上位教育委員会コード", "149001,うみ市教育委員会,141000")
    report = load(world, LoadKind.BOARDS, data, filename="boards.csv")
    [issue] = report.errors
    assert issue.column == "上位教育委員会コード" and "141000" in issue.message


# --- dry run, all or nothing, idempotence ----------------------------------------------------------------------


def test_a_dry_run_writes_nothing_but_says_what_would_change(world: World) -> None:
    events = AuditEvent.objects.count()
    report = load(world, LoadKind.SCHOOLS, schools_csv(), dry_run=True)
    assert report.ok and not report.applied
    assert [c.action for c in report.changes] == ["create", "create"]
    assert not School.objects.filter(code=code("0000101")).exists()
    assert AuditEvent.objects.count() == events


def test_a_reload_of_the_same_file_changes_nothing(world: World) -> None:
    data = schools_csv()
    first = load(world, LoadKind.SCHOOLS, data)
    assert first.created == 2
    stamps = dict(
        School.objects.filter(code__in=[code("0000101"), code("0000102")]).values_list("code", "updated_at")
    )
    second = load(world, LoadKind.SCHOOLS, data)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 2)
    assert dict(School.objects.filter(code__in=stamps).values_list("code", "updated_at")) == stamps


def test_one_audit_event_records_each_load_with_its_counts(world: World) -> None:
    load(world, LoadKind.SCHOOLS, schools_csv())
    [event] = AuditEvent.objects.filter(action="directory.bulk_loaded")
    assert event.detail["kind"] == "schools" and event.detail["created"] == 2 and event.detail["rows"] == 2
    assert event.actor_username == "operator"
    assert not AuditEvent.objects.filter(action="directory.school.created").exists()


def test_a_failure_while_writing_rolls_back_the_whole_load(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = csv_bytes(
        "学校コード,年度,学年,学級名",
        f"{world.school_a.code},2030,P1,1組",
        f"{world.school_a.code},2030,P2,1組",
    )
    original = HomeroomClass.objects.bulk_create

    def failing(*args: object, **kwargs: object) -> object:
        raise RuntimeError("disk full")

    monkeypatch.setattr(HomeroomClass.objects, "bulk_create", failing)
    with pytest.raises(RuntimeError):
        load(world, LoadKind.CLASSES, data, filename="classes.csv")
    monkeypatch.setattr(HomeroomClass.objects, "bulk_create", original)
    # The year was written in the first stage; the failure in the second took it back too.
    assert not SchoolYear.objects.filter(year=2030).exists()
    assert not AuditEvent.objects.filter(action="directory.bulk_loaded").exists()


def test_only_operators_bulk_load(world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        load(world, LoadKind.SCHOOLS, schools_csv(), who="board_officer_a")


# --- classes and staff -----------------------------------------------------------------------------------------


def test_classes_create_their_school_year_and_accept_grade_numbers(world: World) -> None:
    year = fiscal_year_of(timezone.localdate()) + 1
    data = csv_bytes(
        "学校コード,年度,学年,学級名,種別,障害種別",
        f"{world.school_a.code},{year},1,１組,通常の学級,",
        f"{world.school_a.code},{year},小2,1組,,",
        f"{world.school_a.code},{year},P1,ひまわり学級,特別支援学級,知的障害者",
    )
    report = load(world, LoadKind.CLASSES, data, filename="classes.csv", dry_run=True)
    assert report.ok, report.errors
    assert [c.target for c in report.changes if c.action == "create"].count("年度") == 1
    load(world, LoadKind.CLASSES, data, filename="classes.csv")
    classes = HomeroomClass.objects.filter(school_year__school=world.school_a, school_year__year=year)
    assert sorted((k.grade_code, k.name) for k in classes) == [
        ("P1", "1組"),
        ("P1", "ひまわり学級"),
        ("P2", "1組"),
    ]
    assert classes.get(name="ひまわり学級").special_needs_category == "intellectual"


def test_a_grade_the_school_type_lacks_is_reported_with_the_allowed_codes(world: World) -> None:
    data = csv_bytes("学校コード,年度,学年,学級名", f"{world.school_a.code},2026,J1,1組")
    [issue] = load(world, LoadKind.CLASSES, data, filename="classes.csv").errors
    assert issue.column == "学年" and "P1、P2" in issue.message


def test_staff_rows_assign_roles_and_homeroom_classes(world: World) -> None:
    make_user("t.suzuki")
    year = world.class_a2.school_year.year
    data = csv_bytes(
        "ログインID,役割,学校コード,教育委員会コード,年度,学年,学級名",
        f"t.suzuki,学級担任,{world.school_a.code},,{year},1,2組",
        f"t.suzuki,teacher,{world.school_a.code},,,,",
    )
    report = load(world, LoadKind.STAFF, data, filename="staff.csv")
    assert report.ok and report.created == 2, report.errors
    homeroom = StaffAssignment.objects.get(user__username="t.suzuki", role=Role.HOMEROOM_TEACHER)
    assert homeroom.homeroom_class == world.class_a2
    again = load(world, LoadKind.STAFF, data, filename="staff.csv")
    assert again.unchanged == 2


def test_staff_rows_report_missing_users_places_and_guardians(world: World) -> None:
    data = csv_bytes(
        "ログインID,役割,学校コード,教育委員会コード",
        f"nobody,教員,{world.school_a.code},",
        f"guardian_a,教員,{world.school_a.code},",
        "teacher_a,教育委員会担当者,,",
        "teacher_a,保護者,,",
    )
    report = load(world, LoadKind.STAFF, data, filename="staff.csv")
    by_line = {i.line: i for i in report.errors}
    assert "nobody" in by_line[2].message and by_line[2].column == "ログインID"
    assert "保護者の利用者" in by_line[3].message
    assert by_line[4].column == "教育委員会コード"
    assert by_line[5].column == "役割"


def test_the_sample_files_load_in_order(world: World) -> None:
    for name in ("sample.board", "sample.principal", "sample.homeroom"):
        make_user(name)
    for kind in ("boards", "schools", "classes", "staff"):
        data = (FIXTURES / f"sample_{kind}.csv").read_bytes()
        report = load(world, kind, data, filename=f"sample_{kind}.csv")
        assert report.ok and report.applied, (kind, [str(i) for i in report.errors])
        again = load(world, kind, data, filename=f"sample_{kind}.csv")
        assert again.created == again.updated == 0, kind
