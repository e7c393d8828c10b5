"""What `komu demo` builds: a complete, valid, fictional municipality (built once for the module)."""

from __future__ import annotations

import datetime
import re
from collections import Counter, defaultdict

import pytest
from django.contrib.auth.hashers import check_password
from django.db import connection
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from komu.accounts.models import User
from komu.audit.models import AuditEvent
from komu.core import codes
from komu.core.wareki import fiscal_year_of
from komu.demo.builder import DEMO_PASSWORD, KEY_PERSONAS, SPECIAL_SURNAMES, DemoSummary, birth_date_window
from komu.demo.models import DemoAccount
from komu.demo.tests.conftest import SEED
from komu.directory.models import Board, HomeroomClass, Role, School, SchoolYear, StaffAssignment
from komu.students.models import ClassMembership, Guardian, GuardianLink, Student

pytestmark = pytest.mark.usefixtures("loaded_demo", "db")


def _grade_number(grade_code: str) -> int:
    return int(grade_code[1:]) + (6 if grade_code.startswith("J") else 0)


def test_demo_builds_three_elementary_and_two_junior_high_schools_with_valid_codes() -> None:
    schools = list(School.objects.select_related("board__parent"))
    types = Counter(s.school_type for s in schools)
    assert types["B1"] >= 3
    assert types["C1"] >= 2
    for school in schools:
        parsed = codes.validate_school_code(school.code)
        assert parsed.school_type == school.school_type
        assert parsed.prefecture_code == school.prefecture_id
        assert school.board.kind == Board.Kind.MUNICIPAL
        assert school.board.parent is not None
        assert school.board.parent.kind == Board.Kind.PREFECTURAL
        school.full_clean()
    for board in Board.objects.all():
        assert codes.validate_board_code(board.code).prefecture_code == board.prefecture_id
    assert codes.is_prefectural_board_code(schools[0].board.parent.code)


def test_every_school_has_this_years_three_terms_and_classes_for_every_grade() -> None:
    this_year = fiscal_year_of(timezone.localdate())
    for school in School.objects.all():
        year = SchoolYear.objects.get(school=school, year=this_year)
        assert year.year == this_year
        assert (year.start_date.month, year.start_date.day, year.end_date.month, year.end_date.day) == (
            4,
            1,
            3,
            31,
        )
        terms = list(year.terms.order_by("number"))
        assert [t.number for t in terms] == [1, 2, 3]
        assert terms[0].start_date == year.start_date
        assert terms[-1].end_date == year.end_date
        classes = list(year.classes.all())
        assert {c.grade_code for c in classes} == set(codes.grades_for_school_type(school.school_type))
        assert any(c.kind == HomeroomClass.Kind.SPECIAL_NEEDS and c.special_needs_category for c in classes)
        # Elementary schools also have next 年度 with empty first-grade classes, for the entrants' placement.
        following = SchoolYear.objects.filter(school=school, year=this_year + 1).first()
        if school.school_type == "B1":
            assert following is not None
            assert {c.grade_code for c in following.classes.all()} == {"P1"}
            assert following.classes.filter(kind=HomeroomClass.Kind.SPECIAL_NEEDS).count() == 1
            assert not following.classes.filter(memberships__isnull=False).exists()
        else:
            assert following is None


def test_about_a_thousand_pupils_each_in_one_class_with_shusseki_no_in_kana_order() -> None:
    assert 900 <= Student.objects.count() <= 1100
    assert ClassMembership.objects.count() == Student.objects.count()
    by_class: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for m in ClassMembership.objects.select_related("student"):
        by_class[m.homeroom_class_id].append((m.shusseki_no, m.student.full_kana))
    for members in by_class.values():
        members.sort()
        assert [no for no, _ in members] == list(range(1, len(members) + 1))
        assert [kana for _, kana in members] == sorted(kana for _, kana in members)
    sizes = Counter(
        m.homeroom_class.school_year.school.school_type
        for m in ClassMembership.objects.select_related("homeroom_class__school_year__school")
    )
    assert sizes["B1"] > 0 and sizes["C1"] > 0


def test_birth_dates_match_each_pupils_grade_in_this_school_year() -> None:
    this_year = fiscal_year_of(timezone.localdate())
    for m in ClassMembership.objects.select_related("student", "homeroom_class"):
        first, last = birth_date_window(_grade_number(m.homeroom_class.grade_code), this_year)
        assert first <= m.student.birth_date <= last


def test_birth_date_window_puts_hayaumare_in_the_year_above() -> None:
    # Born 1 April 2020: enters school in April 2026 (the legal age rises the day before the birthday).
    assert birth_date_window(1, 2026) == (datetime.date(2019, 4, 2), datetime.date(2020, 4, 1))
    assert birth_date_window(9, 2026) == (datetime.date(2011, 4, 2), datetime.date(2012, 4, 1))


def test_names_with_taka_saki_and_yoshi_round_trip_exactly_and_sit_in_demo_homerooms_class() -> None:
    index = Student._meta.get_field("family_kana_index")
    homeroom = StaffAssignment.objects.get(user__username="demo-homeroom").homeroom_class
    for kanji, kana, _romaji in SPECIAL_SURNAMES:
        # Found by reading through the blind index, decrypted, and equal code point for code point.
        pupils = Student.objects.filter(family_kana_index=index.lookup_value(kana))
        assert kanji in {p.family_name for p in pupils}, f"no pupil named {kanji}"
    names = {
        m.student.family_name
        for m in ClassMembership.objects.filter(homeroom_class=homeroom).select_related("student")
    }
    assert {"\u9ad9\u6a4b", "\u5c71\ufa11", "\U00020bb7\u7530"} <= names  # 髙橋 山﨑 𠮷田, never 高 崎 吉
    # The database holds ciphertext, never the name itself.
    with connection.cursor() as cursor:
        cursor.execute("SELECT family_name FROM students_student")
        stored = [row[0] for row in cursor.fetchall()]
    assert not any("髙" in v or "﨑" in v or "𠮷" in v for v in stored)


def test_every_pupil_has_one_or_two_guardians_with_fictional_contacts() -> None:
    links = Counter(GuardianLink.objects.values_list("student_id", flat=True))
    assert set(links) == set(Student.objects.values_list("id", flat=True))
    assert set(links.values()) <= {1, 2}
    phone = re.compile(r"0[789]0-0\d{3}-\d{4}")
    guardians = list(Guardian.objects.all())
    assert all(phone.fullmatch(g.phone) for g in guardians)
    emails = [g.email for g in guardians if g.email]
    assert emails and all(e.endswith("@example.jp") for e in emails)
    assert all(g.address.startswith("埼玉県こもれび市") for g in guardians)
    relationships = set(GuardianLink.objects.values_list("relationship", flat=True))
    assert {"母", "父"} <= relationships
    per_student = Counter(GuardianLink.objects.values_list("student_id", "relationship"))
    assert max(per_student.values()) == 1  # no pupil has two mothers by accident


def _siblings_share_guardians() -> bool:
    return GuardianLink.objects.values("guardian_id").distinct().count() < GuardianLink.objects.count()


def test_some_pupils_are_siblings_sharing_guardians_and_demo_guardian_has_children_in_two_schools() -> None:
    assert _siblings_share_guardians()
    guardian = Guardian.objects.get(user__username="demo-guardian")
    children = [link.student for link in guardian.links.select_related("student__school")]
    assert len(children) == 2
    assert {c.school.school_type for c in children} == {"B1", "C1"}
    assert {c.family_name for c in children} == {"𠮷田"}
    assert guardian.family_name == "𠮷田"


def test_some_pupils_have_health_notes() -> None:
    notes = [s.health_note for s in Student.objects.all() if s.health_note]
    assert 10 <= len(notes) <= 100
    assert any("アレルギー" in n for n in notes)


def test_every_role_is_staffed_and_every_class_has_a_homeroom_teacher() -> None:
    roles = set(StaffAssignment.objects.values_list("role", flat=True))
    assert roles == {r.value for r in Role if r != Role.GUARDIAN}
    for school in School.objects.all():
        school_roles = Counter(StaffAssignment.objects.filter(school=school).values_list("role", flat=True))
        for role in (Role.PRINCIPAL, Role.VICE_PRINCIPAL, Role.SCHOOL_ADMIN, Role.SCHOOL_NURSE, Role.TEACHER):
            assert school_roles[role] == 1, (school, role)
    this_year = fiscal_year_of(timezone.localdate())
    for klass in HomeroomClass.objects.filter(school_year__year=this_year):
        assert StaffAssignment.objects.filter(role=Role.HOMEROOM_TEACHER, homeroom_class=klass).count() == 1
    for assignment in StaffAssignment.objects.select_related("homeroom_class__school_year"):
        assignment.full_clean()
    assert User.objects.filter(kind=User.Kind.GUARDIAN, guardian__isnull=False).count() >= 5


def test_key_personas_exist_with_the_roles_their_names_promise() -> None:
    expected = {
        "demo-operator": Role.OPERATOR,
        "demo-national": Role.NATIONAL_ANALYST,
        "demo-pref": Role.PREFECTURAL_ANALYST,
        "demo-board": Role.BOARD_OFFICER,
        "demo-principal": Role.PRINCIPAL,
        "demo-vice-principal": Role.VICE_PRINCIPAL,
        "demo-admin": Role.SCHOOL_ADMIN,
        "demo-homeroom": Role.HOMEROOM_TEACHER,
        "demo-teacher": Role.TEACHER,
        "demo-nurse": Role.SCHOOL_NURSE,
    }
    first_elementary = School.objects.filter(school_type="B1").order_by("code").first()
    for username, role in expected.items():
        assignment = StaffAssignment.objects.get(user__username=username)
        assert assignment.role == role
        if assignment.school_id:
            assert assignment.school == first_elementary
    assert set(expected) | {"demo-guardian"} == set(KEY_PERSONAS)
    keys = list(DemoAccount.objects.filter(is_key_persona=True).values_list("user__username", flat=True))
    assert keys == list(KEY_PERSONAS)


def test_staff_share_one_password_hash_and_have_a_confirmed_totp_device_but_no_recovery_codes() -> None:
    staff = list(User.objects.filter(kind=User.Kind.STAFF))
    assert len({u.password for u in staff}) == 1
    assert check_password(DEMO_PASSWORD, staff[0].password)
    devices = Counter(TOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True))
    assert all(devices[u.pk] == 1 for u in staff)
    assert not StaticDevice.objects.exists()
    guardians = User.objects.filter(kind=User.Kind.GUARDIAN)
    assert not TOTPDevice.objects.filter(user__in=guardians).exists()
    assert DemoAccount.objects.count() == User.objects.count()
    assert all(u.username.startswith("demo-") for u in User.objects.all())


def test_the_load_is_one_audit_event_with_counts_and_no_personal_data(loaded_demo: DemoSummary) -> None:
    event = AuditEvent.objects.get(action="demo.loaded")
    assert event.detail["students"] == loaded_demo.students == Student.objects.count()
    assert event.detail["guardians"] == loaded_demo.guardians == Guardian.objects.count()
    assert event.detail["seed"] == SEED
    assert all(isinstance(v, int) for v in event.detail.values())
