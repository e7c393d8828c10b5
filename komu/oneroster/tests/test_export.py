"""CSV export: the files and their Japan Profile columns, sourcedIds that never change, delta semantics, audit,
scope and the round trip through an empty database."""

from __future__ import annotations

import csv
import datetime
import io
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone, translation

from komu.access.scope import get_actor
from komu.accounts.models import User
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.directory.models import Board, HomeroomClass, School, SchoolYear, StaffAssignment, Term
from komu.oneroster import bundle, spec
from komu.oneroster.importer import known_sourced_ids, roster_import
from komu.oneroster.models import RosterObject
from komu.oneroster.selectors import export_scope_for
from komu.oneroster.services import ExportResult, roster_export
from komu.students.models import ClassMembership, Guardian, GuardianLink, Student
from komu.testing.world import World

REASON = "学習eポータルへの年度当初の名簿登録"


def rows(result: ExportResult, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(result.files[f"{name}.csv"].decode("utf-8"))))


def export_board_a(world: World, since: datetime.datetime | None = None) -> ExportResult:
    actor = get_actor(world.user("board_officer_a"))
    scope = export_scope_for(actor=actor, board_code=world.board_a.code)
    return roster_export(actor=actor, roster_scope=scope, since=since, reason=REASON)


def test_bulk_export_has_every_rostering_file_with_the_binding_headers(roster_world: World) -> None:
    result = export_board_a(roster_world)
    assert set(result.files) == {"manifest.csv", *(s.filename for s in spec.FILES)}
    for file_spec in spec.FILES:
        text = result.files[file_spec.filename].decode("utf-8")
        assert text.split("\r\n", 1)[0] == ",".join(file_spec.columns)
    manifest = dict(csv.reader(io.StringIO(result.files["manifest.csv"].decode())))
    assert manifest["oneroster.version"] == "1.2"
    assert manifest["file.users"] == "bulk"
    assert manifest["file.results"] == "absent"


def test_orgs_are_the_district_and_its_schools_with_their_codes(roster_world: World) -> None:
    orgs = rows(export_board_a(roster_world), "orgs")
    district = next(o for o in orgs if o["type"] == "district")
    assert district["identifier"] == roster_world.board_a.code
    schools = {o["identifier"]: o for o in orgs if o["type"] == "school"}
    assert set(schools) == {roster_world.school_a.code, roster_world.school_a2.code}
    assert all(s["parentSourcedId"] == district["sourcedId"] for s in schools.values())
    assert roster_world.school_b.code not in schools


def test_users_carry_kana_home_class_and_grade_and_enrollments_the_shusseki_no(roster_world: World) -> None:
    result = export_board_a(roster_world)
    users = {u["sourcedId"]: u for u in rows(result, "users")}
    first = roster_world.students["a1_first"]
    pupil = users[str(first.pk)]
    assert pupil["familyName"] == "髙橋" and pupil["givenName"] == "𠮷乃"
    assert pupil["metadata.jp.kanaFamilyName"] == "タカハシ"
    assert pupil["grades"] == "P1"
    classes = {c["sourcedId"]: c for c in rows(result, "classes")}
    home = classes[pupil["metadata.jp.homeClass"]]
    assert (
        home["title"] == "1組"
        and home["classType"] == "homeroom"
        and home["metadata.jp.specialNeeds"] == "false"
    )
    enrollment = next(e for e in rows(result, "enrollments") if e["userSourcedId"] == str(first.pk))
    assert enrollment["metadata.jp.ShussekiNo"] == "1" and enrollment["role"] == "student"
    teacher = next(u for u in users.values() if u["username"] == "homeroom_a1")
    assert (teacher["familyName"], teacher["givenName"], teacher["metadata.jp.kanaGivenName"]) == (
        "担任",
        "花子",
        "ハナコ",
    )
    teaching = next(e for e in rows(result, "enrollments") if e["userSourcedId"] == teacher["sourcedId"])
    assert teaching["role"] == "teacher" and teaching["primary"] == "true"
    assert teaching["classSourcedId"] == pupil["metadata.jp.homeClass"]
    demographics = {d["sourcedId"]: d for d in rows(result, "demographics")}
    assert demographics[str(first.pk)]["sex"] == "female"
    assert demographics[str(first.pk)]["birthDate"] == first.birth_date.isoformat()
    # Guardians are not disclosed to learning portals; staff without kana are left out and counted.
    assert not any(u["username"] == "guardian_a" for u in users.values())
    assert result.skipped_staff >= 1


def test_school_year_is_titled_nendo_and_courses_are_per_grade(roster_world: World) -> None:
    result = export_board_a(roster_world)
    year = timezone.localdate().year if timezone.localdate().month >= 4 else timezone.localdate().year - 1
    sessions = rows(result, "academicSessions")
    assert {s["title"] for s in sessions} == {f"{year}年度"}
    assert all(s["startDate"] == f"{year}-04-01" and s["type"] == "schoolYear" for s in sessions)
    courses = rows(result, "courses")
    assert sorted(c["grades"] for c in courses) == ["J1", "P1"]
    assert all(c["courseCode"] == "" for c in courses)


def test_bulk_files_leave_status_and_date_empty_and_quote_per_rfc4180(roster_world: World) -> None:
    student = roster_world.students["a2_first"]
    student.family_name = '佐藤,"さとう"'
    student.save()
    result = export_board_a(roster_world)
    assert '"佐藤,""さとう"""' in result.files["users.csv"].decode()
    assert all(r["status"] == "" and r["dateLastModified"] == "" for r in rows(result, "users"))


def test_sourced_ids_never_change_between_exports(roster_world: World) -> None:
    first = export_board_a(roster_world)
    second = export_board_a(roster_world)
    for file_spec in spec.FILES:
        assert first.files[file_spec.filename] == second.files[file_spec.filename]


def test_delta_lists_changes_since_and_tombstones_for_removed_memberships(roster_world: World) -> None:
    export_board_a(roster_world)
    since = timezone.now()
    student = roster_world.students["a1_second"]
    student.given_name_kana = "カツヒロ"
    student.save()
    membership = ClassMembership.objects.get(student=roster_world.students["a2_first"])
    enrollment_sid = RosterObject.objects.get(
        kind="studentEnrollment", local_key=str(membership.pk)
    ).sourced_id
    membership.delete()
    result = export_board_a(roster_world, since=since)
    manifest = dict(csv.reader(io.StringIO(result.files["manifest.csv"].decode())))
    assert manifest["file.users"] == "delta"
    users = rows(result, "users")
    changed = {u["sourcedId"]: u for u in users}
    assert str(student.pk) in changed and changed[str(student.pk)]["status"] == "active"
    assert changed[str(student.pk)]["dateLastModified"].endswith("Z")
    assert str(roster_world.students["a1_first"].pk) not in changed
    gone = [e for e in rows(result, "enrollments") if e["sourcedId"] == enrollment_sid]
    assert gone and gone[0]["status"] == "tobedeleted"
    parsed = bundle.validate_bundle(result.files, known=known_sourced_ids)
    assert parsed.ok, parsed.errors


def test_a_pupil_who_left_becomes_tobedeleted_in_users_roles_and_demographics(roster_world: World) -> None:
    export_board_a(roster_world)
    since = timezone.now()
    student = roster_world.students["a1_first"]
    student.is_active = False
    student.save()
    result = export_board_a(roster_world, since=since)
    for name in ("users", "demographics"):
        assert {"sourcedId": str(student.pk), "status": "tobedeleted"}.items() <= next(
            r for r in rows(result, name) if r["sourcedId"] == str(student.pk)
        ).items()
    assert any(r["status"] == "tobedeleted" for r in rows(result, "roles"))


def test_export_is_audited_with_reason_and_persons(roster_world: World) -> None:
    result = export_board_a(roster_world)
    event = AuditEvent.objects.get(action="oneroster.export.created")
    assert event.detail["reason"] == REASON
    assert str(roster_world.students["a1_first"].pk) in event.detail["person_ids"]
    assert str(roster_world.students["b1_first"].pk) not in event.detail["person_ids"]
    assert result.persons == len(event.detail["person_ids"])


def test_export_needs_a_reason(roster_world: World) -> None:
    actor = get_actor(roster_world.user("board_officer_a"))
    scope = export_scope_for(actor=actor, board_code=roster_world.board_a.code)
    with pytest.raises(ValidationFailed):
        roster_export(actor=actor, roster_scope=scope, since=None, reason="  ")
    assert not AuditEvent.objects.filter(action="oneroster.export.created").exists()


def test_another_boards_roster_is_not_found(roster_world: World) -> None:
    actor = get_actor(roster_world.user("board_officer_a"))
    with pytest.raises(NotFoundOrNoAccess):
        export_scope_for(actor=actor, board_code=roster_world.board_b.code)
    with pytest.raises(NotFoundOrNoAccess):
        export_scope_for(actor=actor, school_code=roster_world.school_b.code)
    principal = get_actor(roster_world.user("principal_a"))
    with pytest.raises(NotFoundOrNoAccess):
        export_scope_for(actor=principal, board_code=roster_world.board_a.code)
    scope = export_scope_for(actor=principal, school_code=roster_world.school_a.code)
    assert scope.school_ids == (roster_world.school_a.pk,)


def test_teachers_cannot_export(roster_world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        export_scope_for(actor=get_actor(roster_world.user("teacher_a")))


def test_the_export_passes_the_imports_own_validation(roster_world: World) -> None:
    result = export_board_a(roster_world)
    parsed = bundle.validate_bundle(result.files)
    assert parsed.ok, parsed.errors


def _empty_the_database(world: World) -> None:
    """Remove everything the export described (fixture surgery: the test stands for a second, empty server)."""
    staff_users = list(User.objects.filter(assignments__school__board=world.board_a).distinct())
    StaffAssignment.objects.all().delete()
    GuardianLink.objects.all().delete()
    Guardian.objects.all().delete()
    ClassMembership.objects.all().delete()
    Student.objects.all().delete()
    Term.objects.all().delete()
    HomeroomClass.objects.all().delete()
    SchoolYear.objects.all().delete()
    School.objects.all().delete()
    Board.objects.filter(parent__isnull=False).delete()
    Board.objects.all().delete()
    RosterObject.objects.all().delete()
    for user in staff_users:
        user.delete()


def test_round_trip_through_an_empty_database_gives_the_same_files(
    roster_world: World, tmp_path: Path
) -> None:
    first = export_board_a(roster_world)
    code = roster_world.board_a.code
    _empty_the_database(roster_world)
    report = roster_import(actor=None, files=first.files, dry_run=False)
    assert report.ok, report.errors
    assert report.created["児童生徒"] == 3
    call_command("oneroster", "export", "--out", str(tmp_path), "--board", code, "--reason", REASON)
    for name, data in first.files.items():
        again = (tmp_path / name).read_bytes()
        assert again.decode().splitlines() == data.decode().splitlines(), name
        assert again == data


def test_command_writes_a_zip(roster_world: World, tmp_path: Path) -> None:
    call_command(
        "oneroster",
        "export",
        "--out",
        str(tmp_path),
        "--school",
        roster_world.school_a.code,
        "--reason",
        REASON,
        "--zip",
    )
    with zipfile.ZipFile(tmp_path / "oneroster.zip") as archive:
        assert "manifest.csv" in archive.namelist() and "users.csv" in archive.namelist()


def test_a_pupil_who_comes_back_loses_the_tombstone_and_keeps_every_sourced_id(roster_world: World) -> None:
    student = roster_world.students["a1_first"]
    role_key = f"{student.pk}:{student.school_id}"
    gone = RosterObject.objects.filter(local_key__startswith=str(student.pk), gone_at__isnull=False)
    first = export_board_a(roster_world)
    role_sid = RosterObject.objects.get(kind="studentRole", local_key=role_key).sourced_id
    student.is_active = False
    student.save()
    export_board_a(roster_world)
    assert gone.count() == 2
    since = timezone.now()
    student.is_active = True
    student.save()
    result = export_board_a(roster_world, since=since)
    assert not gone.exists()
    assert RosterObject.objects.get(kind="studentRole", local_key=role_key).sourced_id == role_sid
    back = next(r for r in rows(result, "users") if r["sourcedId"] == str(student.pk))
    assert back["status"] == "active"
    assert export_board_a(roster_world).files == first.files


def test_a_pupil_who_moved_school_keeps_the_sourced_id_and_is_no_longer_the_old_schools(
    roster_world: World,
) -> None:
    from komu.oneroster.build import Scope, build_roster

    student = roster_world.students["a2_first"]
    old = Scope(
        board_ids=(roster_world.board_a.pk,),
        school_ids=(roster_world.school_a.pk,),
        year=export_scope_for(
            actor=get_actor(roster_world.user("board_officer_a")), board_code=roster_world.board_a.code
        ).year,
    )
    build_roster(old, detect_gone=True)
    ClassMembership.objects.filter(student=student).delete()
    student.school = roster_world.school_a2
    student.save()
    new = Scope(board_ids=old.board_ids, school_ids=(roster_world.school_a2.pk,), year=old.year)
    roster = build_roster(new, detect_gone=True)
    assert str(student.pk) in {r.sourced_id for r in roster.records["users"]}
    assert (
        RosterObject.objects.get(kind="student", local_key=str(student.pk)).school_id
        == roster_world.school_a2.pk
    )
    new_role = next(
        r.sourced_id for r in roster.records["roles"] if r.values["userSourcedId"] == str(student.pk)
    )
    assert build_roster(new, detect_gone=True).records["roles"][0].sourced_id in {
        r.sourced_id for r in roster.records["roles"]
    }
    build_roster(old, detect_gone=True)
    # The pupils' tombstones are stamped in the database (delta exports list them from there).
    assert RosterObject.objects.get(kind="student", local_key=str(student.pk)).gone_at is None
    old_role = RosterObject.objects.get(
        kind="studentRole", local_key=f"{student.pk}:{roster_world.school_a.pk}"
    )
    assert old_role.sourced_id != new_role
    assert old_role.gone_at is not None


def test_the_streamed_export_has_the_rows_of_the_roster_built_in_memory(roster_world: World) -> None:
    """The export streams the pupils' rows from SQL (komu.oneroster.export); the REST roster builds them in
    Python (komu.oneroster.build). Both must give the same files, byte for byte."""
    from komu.oneroster.build import build_roster

    actor = get_actor(roster_world.user("board_officer_a"))
    scope = export_scope_for(actor=actor, board_code=roster_world.board_a.code)
    mover = roster_world.students["a2_first"]
    Student.objects.filter(pk=mover.pk).update(school=roster_world.school_a)  # moved, its membership kept
    result = roster_export(actor=actor, roster_scope=scope, since=None, reason=REASON)
    roster = build_roster(scope)
    assert sum(len(roster.records[s.name]) for s in spec.FILES) > 10
    for file_spec in spec.FILES:
        expected = bundle.write_csv(file_spec.columns, [r.values for r in roster.records[file_spec.name]])
        assert result.files[file_spec.filename] == expected, file_spec.name


def test_the_export_is_japanese_whatever_the_screen_language(
    roster_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Course titles (「2026年度 小学1年」) and every other label are data: an export made from English screens
    is byte for byte the one made from Japanese screens, even once the catalogue translates the grades."""
    from komu.core import codes
    from komu.oneroster.build import build_roster

    with translation.override("ja"):
        japanese = export_board_a(roster_world)
    monkeypatch.setattr(codes, "gettext", lambda message: f"English for {message}")
    with translation.override("en"):
        assert codes.grade_display("P1") == "English for 小学1年"  # the stand-in catalogue is in force
        english = export_board_a(roster_world)
        actor = get_actor(roster_world.user("board_officer_a"))
        roster = build_roster(export_scope_for(actor=actor, board_code=roster_world.board_a.code))
    assert english.files == japanese.files
    titles = {r.values["title"] for r in roster.records[spec.COURSES.name]}
    assert any(title.endswith("年度 小学1年") for title in titles), titles


@pytest.mark.django_db(transaction=True)
def test_sourced_ids_stored_alongside_the_first_files_give_the_files_of_an_export_in_one_transaction(
    roster_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a bulk export outside any transaction stores the pupils' sourcedIds on a second connection
    while it writes users.csv and demographics.csv (komu.oneroster.export.PupilSync), reading a pupil not stored
    yet with the sourcedId the sync gives it. The files and the stored rows must be those of an export that
    stores them first, in its own transaction; a pupil stored with a sourcedId of its own (imported) keeps it."""
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the sync runs apart on PostgreSQL only")
    from komu.oneroster import export

    apart_runs: list[int] = []
    sync_apart = export._sync_apart

    def counted(*args: object) -> None:
        apart_runs.append(1)
        sync_apart(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(export, "_sync_apart", counted)
    assert not connection.in_atomic_block
    first = export_board_a(roster_world)  # every row new: stored apart
    stored = set(RosterObject.objects.values_list("kind", "local_key", "sourced_id"))
    pupil = roster_world.students["a1_first"]
    imported = "b1e7d6a4-9c1f-4e55-8f3a-0d2c7e6b5a49"
    RosterObject.objects.filter(kind=RosterObject.Kind.STUDENT, local_key=str(pupil.pk)).update(
        sourced_id=imported
    )
    RosterObject.objects.exclude(kind=RosterObject.Kind.STUDENT, local_key=str(pupil.pk)).filter(
        kind__in=[
            RosterObject.Kind.STUDENT,
            RosterObject.Kind.STUDENT_ROLE,
            RosterObject.Kind.STUDENT_ENROLLMENT,
        ]
    ).delete()
    apart = export_board_a(roster_world)  # one pupil known (another sourcedId), the others new: stored apart
    assert any(u["sourcedId"] == imported for u in rows(apart, "users"))
    assert any(d["sourcedId"] == imported for d in rows(apart, "demographics"))
    assert not any(u["sourcedId"] == str(pupil.pk) for u in rows(apart, "users"))
    assert len(apart_runs) == 2
    with transaction.atomic():
        in_one = export_board_a(roster_world)  # everything known, stored in the export's transaction
    assert len(apart_runs) == 2
    for file_spec in spec.FILES:
        assert apart.files[file_spec.filename] == in_one.files[file_spec.filename], file_spec.name
    pupils_users = {u["sourcedId"] for u in rows(first, "users")} - {imported}
    assert {u["sourcedId"] for u in rows(apart, "users")} - {imported} == pupils_users - {str(pupil.pk)}
    assert len(stored) == RosterObject.objects.count()
