"""CSV import: each rule of the 1.2 binding and the Japan Profile refuses a bad bundle with the file, line and
column in Japanese; a good bundle is applied all or nothing, a dry run writes nothing."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import PermissionDeniedError
from komu.oneroster import bundle, spec
from komu.oneroster.importer import roster_import
from komu.oneroster.selectors import export_scope_for
from komu.oneroster.services import roster_export, zip_files
from komu.students.models import Student
from komu.testing.world import World

Files = dict[str, bytes]


@pytest.fixture
def files(roster_world: World) -> Files:
    actor = get_actor(roster_world.user("board_officer_a"))
    scope = export_scope_for(actor=actor, board_code=roster_world.board_a.code)
    return roster_export(actor=actor, roster_scope=scope, since=None, reason="テスト").files


def edit(files: Files, name: str, change: Callable[[list[list[str]]], None]) -> Files:
    table = list(csv.reader(io.StringIO(files[name].decode("utf-8"))))
    change(table)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    return {**files, name: out.getvalue().encode("utf-8")}


def set_cell(files: Files, name: str, line: int, column: str, value: str) -> Files:
    def change(table: list[list[str]]) -> None:
        table[line - 1][table[0].index(column)] = value
    return edit(files, name, change)


def errors_of(files: Files) -> list[bundle.BundleError]:
    return bundle.validate_bundle(files).errors


def only_error(files: Files) -> bundle.BundleError:
    errors = errors_of(files)
    assert len(errors) >= 1, "expected the bundle to be refused"
    return errors[0]


def test_a_clean_bundle_has_no_errors(files: Files) -> None:
    assert errors_of(files) == []


def test_missing_manifest_is_refused(files: Files) -> None:
    rest = {k: v for k, v in files.items() if k != "manifest.csv"}
    assert only_error(rest).file == "manifest.csv"


def test_manifest_must_announce_present_files(files: Files) -> None:
    rest = {k: v for k, v in files.items() if k != "users.csv"}
    error = only_error(rest)
    assert (error.file, "bulk なのに") == ("users.csv", "bulk なのに") and "ありません" in error.message


def test_wrong_oneroster_version_is_refused(files: Files) -> None:
    changed = set_cell(files, "manifest.csv", 3, "value", "1.1")
    error = only_error(changed)
    assert error.column == "oneroster.version"


def test_renamed_header_is_reported_with_its_column(files: Files) -> None:
    changed = set_cell(files, "users.csv", 1, "givenName", "givenname")
    error = only_error(changed)
    assert (error.file, error.line, error.column) == ("users.csv", 1, "givenName")
    assert "5列目" not in error.message and "givenname" in error.message


def test_unknown_extra_column_must_be_metadata(files: Files) -> None:
    changed = edit(files, "orgs.csv", lambda t: [row.append("x") for row in t])
    assert "metadata." in only_error(changed).message


def test_ragged_row_is_reported_by_line(files: Files) -> None:
    changed = edit(files, "classes.csv", lambda t: t[2].pop())
    error = only_error(changed)
    assert (error.file, error.line) == ("classes.csv", 3) and "列の数" in error.message


def test_required_field_missing(files: Files) -> None:
    error = only_error(set_cell(files, "users.csv", 2, "familyName", ""))
    assert (error.file, error.line, error.column) == ("users.csv", 2, "familyName")
    assert "必須" in error.message


def test_japan_profile_requires_kana(files: Files) -> None:
    error = only_error(set_cell(files, "users.csv", 3, "metadata.jp.kanaGivenName", ""))
    assert (error.line, error.column) == (3, "metadata.jp.kanaGivenName")


def test_kana_must_be_kana(files: Files) -> None:
    error = only_error(set_cell(files, "users.csv", 2, "metadata.jp.kanaFamilyName", "山田"))
    assert error.column == "metadata.jp.kanaFamilyName" and "カタカナ" in error.message


@pytest.mark.parametrize(("name", "column", "value"), [
    ("orgs.csv", "type", "department"),
    ("classes.csv", "classType", "lecture"),
    ("roles.csv", "role", "administrator"),
    ("enrollments.csv", "primary", "yes"),
    ("demographics.csv", "sex", "M"),
    ("users.csv", "enabledUser", "1"),
])
def test_enumerations(files: Files, name: str, column: str, value: str) -> None:
    error = only_error(set_cell(files, name, 2, column, value))
    assert (error.file, error.line, error.column) == (name, 2, column)
    assert value in error.message


def test_grades_must_be_mext_codes(files: Files) -> None:
    error = only_error(set_cell(files, "classes.csv", 2, "grades", "01"))
    assert error.column == "grades" and "P1〜P6" in error.message


def test_dates_are_strict(files: Files) -> None:
    error = only_error(set_cell(files, "demographics.csv", 2, "birthDate", "2017/04/03"))
    assert error.column == "birthDate" and "YYYY-MM-DD" in error.message
    error = only_error(set_cell(files, "demographics.csv", 2, "birthDate", "2017-02-30"))
    assert error.column == "birthDate"


def test_school_year_title_is_nendo(files: Files) -> None:
    error = only_error(set_cell(files, "academicSessions.csv", 2, "title", "FY2026"))
    assert error.column == "title" and "年度" in error.message


def test_school_identifier_is_a_valid_school_code(files: Files) -> None:
    table = list(csv.reader(io.StringIO(files["orgs.csv"].decode())))
    line = next(i for i, row in enumerate(table, start=1) if row[table[0].index("type")] == "school")
    code = table[line - 1][table[0].index("identifier")]
    wrong_check = code[:-1] + str((int(code[-1]) + 1) % 10)
    error = only_error(set_cell(files, "orgs.csv", line, "identifier", wrong_check))
    assert (error.line, error.column) == (line, "identifier") and "学校コード" in error.message


def test_course_code_stays_empty(files: Files) -> None:
    error = only_error(set_cell(files, "courses.csv", 2, "courseCode", "X1"))
    assert error.column == "courseCode"


def test_references_between_files(files: Files) -> None:
    error = only_error(set_cell(files, "enrollments.csv", 2, "classSourcedId", "no-such-class"))
    assert (error.file, error.line, error.column) == ("enrollments.csv", 2, "classSourcedId")
    assert "classes.csv にありません" in error.message


def test_duplicate_sourced_id(files: Files) -> None:
    table = list(csv.reader(io.StringIO(files["users.csv"].decode())))
    first = table[1][0]
    error = only_error(set_cell(files, "users.csv", 3, "sourcedId", first))
    assert error.line == 3 and "2行目と重複" in error.message


def test_shusseki_no_is_a_positive_number(files: Files) -> None:
    table = list(csv.reader(io.StringIO(files["enrollments.csv"].decode())))
    line = next(i for i, row in enumerate(table, start=1) if row[table[0].index("role")] == "student")
    error = only_error(set_cell(files, "enrollments.csv", line, "metadata.jp.ShussekiNo", "１"))
    assert error.column == "metadata.jp.ShussekiNo" and "半角" in error.message


def test_bulk_rows_cannot_be_tobedeleted(files: Files) -> None:
    error = only_error(set_cell(files, "orgs.csv", 2, "status", "tobedeleted"))
    assert error.column == "status"


def test_not_utf8_is_refused_with_its_line(files: Files) -> None:
    broken = files["users.csv"].replace("髙橋".encode(), "髙橋".encode()[:2])
    error = only_error({**files, "users.csv": broken})
    assert error.file == "users.csv" and error.line >= 2 and "UTF-8" in error.message


def test_control_characters_are_refused(files: Files) -> None:
    error = only_error(set_cell(files, "users.csv", 2, "givenName", "太\u202e郎"))
    assert error.column == "givenName"


def test_error_reads_as_file_line_column(files: Files) -> None:
    error = only_error(set_cell(files, "users.csv", 2, "familyName", ""))
    assert str(error).startswith("users.csv 2行目「familyName」列: ")


def test_zip_bomb_and_non_zip_are_refused() -> None:
    with pytest.raises(bundle.BundleReadError):
        bundle.read_zip(b"not a zip")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("users.csv", b"0" * 5_000_000)
    with pytest.raises(bundle.BundleReadError):
        bundle.read_zip(out.getvalue())


def test_import_applies_nothing_when_one_row_fails_in_the_registry(roster_world: World, files: Files) -> None:
    Student.objects.all().delete()
    # Valid for OneRoster, refused by the registry's own rule (a pupil born in 1890).
    table = list(csv.reader(io.StringIO(files["demographics.csv"].decode())))
    changed = set_cell(files, "demographics.csv", len(table), "birthDate", "1890-01-01")
    report = roster_import(actor=None, files=changed, dry_run=False)
    assert report.errors and report.errors[0].file in ("users.csv", "demographics.csv")
    assert report.errors[0].line >= 2
    assert Student.objects.count() == 0
    assert not AuditEvent.objects.filter(action="students.student.created").exists()


def test_dry_run_checks_everything_and_writes_nothing(roster_world: World, files: Files) -> None:
    Student.objects.all().delete()
    report = roster_import(actor=None, files=files, dry_run=True)
    assert report.ok and report.created["児童生徒"] == 3
    assert Student.objects.count() == 0


def test_import_is_idempotent(roster_world: World, files: Files) -> None:
    before = Student.objects.count()
    report = roster_import(actor=None, files=files, dry_run=False)
    assert report.ok, report.errors
    assert report.created["児童生徒"] == 0 and Student.objects.count() == before


def test_board_officer_cannot_import_into_another_board(roster_world: World, files: Files) -> None:
    Student.objects.filter(school__board=roster_world.board_a).delete()
    report = roster_import(actor=get_actor(roster_world.user("board_officer_b")), files=files, dry_run=False)
    assert report.errors
    assert not Student.objects.filter(school__board=roster_world.board_a).exists()


def test_a_principal_may_not_import(roster_world: World, files: Files) -> None:
    with pytest.raises(PermissionDeniedError):
        roster_import(actor=get_actor(roster_world.user("principal_a")), files=files, dry_run=False)


def test_tobedeleted_in_a_delta_is_refused_with_a_hint(roster_world: World, files: Files) -> None:
    delta = dict(files)
    for file_spec in spec.FILES:
        delta = set_cell(delta, "manifest.csv", 3 + spec.MANIFEST_FILES.index(file_spec.name) + 1, "value", "delta")
    table = list(csv.reader(io.StringIO(files["users.csv"].decode())))
    header = table[0]
    row = [""] * len(header)
    row[0], row[1], row[2] = table[1][0], "tobedeleted", "2026-11-01T00:00:00.000Z"
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, row])
    only_users = {"manifest.csv": delta["manifest.csv"], "users.csv": out.getvalue().encode()}
    for file_spec in spec.FILES:
        if file_spec.name != "users":
            only_users = set_cell(only_users, "manifest.csv",
                                  3 + spec.MANIFEST_FILES.index(file_spec.name) + 1, "value", "absent")
    report = roster_import(actor=None, files=only_users, dry_run=False)
    assert report.errors and "学籍の異動" in report.errors[0].message


def test_command_reports_errors_and_refuses(roster_world: World, files: Files, tmp_path: Path) -> None:
    bad = set_cell(files, "users.csv", 2, "familyName", "")
    (tmp_path / "bad.zip").write_bytes(zip_files(bad))
    with pytest.raises(CommandError, match="何も登録していません"):
        call_command("oneroster", "import", str(tmp_path / "bad.zip"))
    good = tmp_path / "good"
    good.mkdir()
    for name, data in files.items():
        (good / name).write_bytes(data)
    call_command("oneroster", "import", str(good), "--dry-run")


def _line_where(files: Files, name: str, column: str, value: str) -> int:
    table = list(csv.reader(io.StringIO(files[name].decode())))
    return next(i for i, row in enumerate(table, start=1) if i > 1 and row[table[0].index(column)] == value)


@pytest.mark.parametrize(("name", "select", "column", "value", "expected"), [
    # a school's parent must be a district
    ("orgs.csv", ("type", "school"), "parentSourcedId", "", "district"),
    # a district's identifier is a 教育委員会コード
    ("orgs.csv", ("type", "district"), "identifier", "13900", "6桁"),
    # schoolYear must be a 4-digit 年度
    ("academicSessions.csv", ("type", "schoolYear"), "schoolYear", "R8", "西暦4桁"),
    # dates inside the 年度
    ("academicSessions.csv", ("type", "schoolYear"), "endDate", "2099-03-31", "年度"),
    # a homeroom has exactly one grade
    ("classes.csv", ("classType", "homeroom"), "grades", "P1,P2", "1つだけ"),
    # the Komu category only with specialNeeds true
    ("classes.csv", ("classType", "homeroom"), "metadata.komu.specialNeedsCategory", "intellectual", "true"),
    # PublicFlg is a boolean
    ("enrollments.csv", ("role", "teacher"), "metadata.jp.PublicFlg", "1", "true・false"),
    # a pupil in a homeroom needs an 出席番号
    ("enrollments.csv", ("role", "student"), "metadata.jp.ShussekiNo", "", "出席番号"),
    # demographics name a user
    ("demographics.csv", ("sex", "female"), "sourcedId", "nobody", "users.csv"),
])
def test_japan_profile_rule_refuses_the_invalid_case(files: Files, name: str, select: tuple[str, str], column: str,
                                                     value: str, expected: str) -> None:
    line = _line_where(files, name, *select)
    errors = errors_of(set_cell(files, name, line, column, value))
    assert any(e.file == name and e.line == line and e.column == column and expected in e.message
               for e in errors), errors


def test_delta_rows_need_status_and_date(files: Files) -> None:
    position = 3 + spec.MANIFEST_FILES.index("orgs") + 1
    delta = set_cell(files, "manifest.csv", position, "value", "delta")
    errors = errors_of(delta)
    columns = {(e.file, e.column) for e in errors}
    assert ("orgs.csv", "status") in columns and ("orgs.csv", "dateLastModified") in columns
    fixed = set_cell(delta, "orgs.csv", 2, "status", "active")
    fixed = set_cell(fixed, "orgs.csv", 2, "dateLastModified", "2026-04-01 09:00")
    on_line_2 = {e.column for e in errors_of(fixed) if e.file == "orgs.csv" and e.line == 2}
    assert on_line_2 == {"dateLastModified"}


def test_a_file_listed_but_not_rostering_is_refused(files: Files) -> None:
    position = 3 + spec.MANIFEST_FILES.index("results") + 1
    changed = set_cell(files, "manifest.csv", position, "value", "bulk")
    changed["results.csv"] = b"sourcedId\r\n"
    assert any("rostering" in e.message for e in errors_of(changed))


def test_ragged_manifest_and_wrong_header_order(files: Files) -> None:
    def swap(table: list[list[str]]) -> None:
        for row in table:
            row[3], row[4] = row[4], row[3]
    error = only_error(edit(files, "orgs.csv", swap))
    assert error.line == 1 and "4列目" in error.message


def test_a_bulk_file_without_a_pupil_says_so_and_changes_nothing(roster_world: World, files: Files) -> None:
    gone = roster_world.students["a2_first"]
    def drop(table: list[list[str]]) -> None:
        table[:] = [row for row in table if row[0] != str(gone.pk)]
    without = edit(files, "users.csv", drop)
    without = edit(without, "demographics.csv", drop)
    without = edit(without, "roles.csv", lambda t: t.__setitem__(slice(None), [r for r in t if str(gone.pk) not in r]))
    without = edit(without, "enrollments.csv",
                   lambda t: t.__setitem__(slice(None), [r for r in t if str(gone.pk) not in r]))
    report = roster_import(actor=None, files=without, dry_run=False)
    assert report.ok, report.errors
    assert any("1 名がファイルにありません" in note for note in report.notes)
    gone.refresh_from_db()
    assert gone.is_active
