"""A small fictional world with one person in every role, for tests that read as sentences.

Two municipal boards in one prefecture under a prefectural board; board A runs an elementary school (school_a)
and a junior high (school_a2); board B runs school_b. Each school has this year's 年度 and classes, pupils with
guardians; users exist for every role. Built through the ORM directly: this is fixture data, not a user action.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.hashers import make_password
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from komu.accounts.models import User
from komu.core.codes import make_school_code
from komu.core.wareki import fiscal_year_bounds, fiscal_year_of
from komu.directory.models import Board, HomeroomClass, Prefecture, Role, School, SchoolYear, StaffAssignment
from komu.students.models import ClassMembership, Guardian, GuardianLink, Student

PASSWORD = "test-Pass-2026!"


@dataclass
class World:
    prefecture: Prefecture
    pref_board: Board
    board_a: Board
    board_b: Board
    school_a: School
    school_a2: School
    school_b: School
    class_a1: HomeroomClass
    class_a2: HomeroomClass
    class_b1: HomeroomClass
    users: dict[str, User] = field(default_factory=dict)
    students: dict[str, Student] = field(default_factory=dict)
    guardians: dict[str, Guardian] = field(default_factory=dict)

    def user(self, name: str) -> User:
        return self.users[name]


@functools.cache
def _password_hash() -> str:
    # Argon2 is slow on purpose; hash the shared test password once and give every persona the same hash.
    return make_password(PASSWORD)


def make_user(username: str, *, kind: str = User.Kind.STAFF, display_name: str = "", totp: bool = True) -> User:
    user = User(username=username, kind=kind, display_name=display_name or username, email=f"{username}@example.jp")
    user.password = _password_hash()
    user.save()
    if totp and kind == User.Kind.STAFF:
        TOTPDevice.objects.create(user=user, name="テスト端末", confirmed=True)
    return user


def _school(board: Board, school_type: str, number: str, name: str) -> School:
    code = make_school_code(school_type, board.prefecture_id, "2", number)
    return School.objects.create(code=code, name=name, school_type=school_type, board=board,
                                 prefecture_id=board.prefecture_id)


def _year(school: School) -> SchoolYear:
    year = fiscal_year_of(timezone.localdate())
    start, end = fiscal_year_bounds(year)
    return SchoolYear.objects.create(school=school, year=year, start_date=start, end_date=end)


def _student(school: School, klass: HomeroomClass, no: int, family: str, given: str, fk: str, gk: str) -> Student:
    student = Student(
        school=school, family_name=family, given_name=given, family_name_kana=fk, given_name_kana=gk,
        sex="female" if no % 2 else "male", birth_date=datetime.date(2017, 4, 2) + datetime.timedelta(days=no),
        address="架空県みどり市一丁目1-1", health_note="卵アレルギー" if no == 1 else "",
    )
    student.save()
    ClassMembership.objects.create(student=student, homeroom_class=klass, shusseki_no=no)
    return student


def _reference_data() -> None:
    """The prefectures are loaded by a data migration; a transactional test empties every table when it ends,
    so the tests after it load them again here."""
    from komu.core.codes import PREFECTURES

    if not Prefecture.objects.filter(code="13").exists():
        Prefecture.objects.bulk_create([Prefecture(code=c, name=n) for c, n in PREFECTURES], ignore_conflicts=True)


def build_world() -> World:
    _reference_data()
    prefecture = Prefecture.objects.get(code="13")
    pref_board = Board.objects.create(code="131000", name="架空都教育委員会", kind=Board.Kind.PREFECTURAL,
                                      prefecture=prefecture)
    board_a = Board.objects.create(code="139001", name="みどり市教育委員会", kind=Board.Kind.MUNICIPAL,
                                   prefecture=prefecture, parent=pref_board)
    board_b = Board.objects.create(code="139002", name="あおば町教育委員会", kind=Board.Kind.MUNICIPAL,
                                   prefecture=prefecture, parent=pref_board)
    school_a = _school(board_a, "B1", "0000001", "みどり市立第一小学校")
    school_a2 = _school(board_a, "C1", "0000002", "みどり市立第一中学校")
    school_b = _school(board_b, "B1", "0000003", "あおば町立あおば小学校")
    year_a, year_a2, year_b = _year(school_a), _year(school_a2), _year(school_b)
    class_a1 = HomeroomClass.objects.create(school_year=year_a, grade_code="P1", name="1組")
    class_a2 = HomeroomClass.objects.create(school_year=year_a, grade_code="P1", name="2組")
    HomeroomClass.objects.create(school_year=year_a2, grade_code="J1", name="1組")
    class_b1 = HomeroomClass.objects.create(school_year=year_b, grade_code="P1", name="1組")
    world = World(prefecture, pref_board, board_a, board_b, school_a, school_a2, school_b, class_a1, class_a2,
                  class_b1)

    def staff(name: str, role: str, **scope: Any) -> None:
        user = make_user(name)
        StaffAssignment.objects.create(user=user, role=role, **scope)
        world.users[name] = user

    staff("operator", Role.OPERATOR)
    staff("national_analyst", Role.NATIONAL_ANALYST)
    staff("pref_analyst", Role.PREFECTURAL_ANALYST, prefecture=prefecture)
    staff("board_officer_a", Role.BOARD_OFFICER, board=board_a)
    staff("board_officer_b", Role.BOARD_OFFICER, board=board_b)
    staff("school_admin_a", Role.SCHOOL_ADMIN, school=school_a)
    staff("principal_a", Role.PRINCIPAL, school=school_a)
    staff("principal_b", Role.PRINCIPAL, school=school_b)
    staff("vice_principal_a", Role.VICE_PRINCIPAL, school=school_a)
    staff("homeroom_a1", Role.HOMEROOM_TEACHER, school=school_a, homeroom_class=class_a1)
    staff("teacher_a", Role.TEACHER, school=school_a)
    staff("teacher_b", Role.TEACHER, school=school_b)
    staff("nurse_a", Role.SCHOOL_NURSE, school=school_a)

    world.students["a1_first"] = _student(school_a, class_a1, 1, "髙橋", "𠮷乃", "タカハシ", "ヨシノ")
    world.students["a1_second"] = _student(school_a, class_a1, 2, "山﨑", "葛󠄀太", "ヤマザキ", "カツタ")
    world.students["a2_first"] = _student(school_a, class_a2, 1, "佐藤", "花子", "サトウ", "ハナコ")
    world.students["b1_first"] = _student(school_b, class_b1, 1, "鈴木", "一郎", "スズキ", "イチロウ")

    for key, student_key, family, given in [
        ("guardian_a", "a1_first", "髙橋", "陽子"),
        ("guardian_b", "b1_first", "鈴木", "健"),
    ]:
        user = make_user(key, kind=User.Kind.GUARDIAN)
        guardian = Guardian(user=user, family_name=family, given_name=given, phone="090-1234-5678",
                            email=f"{key}@example.jp")
        guardian.save()
        GuardianLink.objects.create(guardian=guardian, student=world.students[student_key], relationship="母")
        world.users[key] = user
        world.guardians[key] = guardian
    return world


def login_verified(client: Any, user: User) -> None:
    """Sign a test client in as if password and second factor had both been given."""
    from django_otp import DEVICE_ID_SESSION_KEY

    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user).first()
    if device is not None:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
