"""The demo municipality: one invented city's board, schools, classes, staff, pupils and guardians.

Nothing here is real (domain.md §6: no real data in development or demo environments). The prefecture is
real so that every code validates; the city こもれび市, its towns, schools and every person are generated from
a seed, so `komu demo --seed N` builds the same municipality each time (names, dates, IDs, TOTP secrets).

Pupils and guardians are personal data. They are written with bulk_create rather than one service call each:
the demo is fixture data created by the system, not a user's action, and ~3,000 audited service calls would
take many seconds and fill the audit log the demo is meant to show with thousands of "created" events
attributed to demo staff. Every value still passes the validation a form applies (check_name, normalize_kana,
normalize_phone, full_clean), and the load is recorded as one "demo.loaded" audit event with the counts, in
the same transaction.
"""

from __future__ import annotations

import datetime
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from faker import Faker

from komu.accounts.models import User
from komu.audit.services import Scope, audit_record
from komu.core.codes import grades_for_school_type, make_school_code, prefecture_name
from komu.core.text import check_name, normalize_kana, normalize_phone
from komu.core.wareki import fiscal_year_bounds, fiscal_year_of
from komu.demo.models import DemoAccount
from komu.directory.models import (
    Board,
    HomeroomClass,
    Prefecture,
    Role,
    School,
    SchoolYear,
    StaffAssignment,
    Term,
)
from komu.students.models import ClassMembership, Guardian, GuardianLink, Sex, Student

M = TypeVar("M", bound=models.Model)

DEFAULT_SEED: Final = 20260401
# The same for every demo account and printed by `komu demo logins`: the demo is for trying Komu out.
DEMO_PASSWORD: Final = "komu-demo-pass"
USERNAME_PREFIX: Final = "demo-"
TOTP_DEVICE_NAME: Final = "デモ用認証アプリ"

# 埼玉県: a real prefecture, so 教育委員会コード and 学校コード validate; the city inside it is invented.
PREFECTURE_CODE: Final = "11"
CITY: Final = "こもれび市"
# XX1000 is the prefectural board by convention (codes.PREFECTURAL_BOARD_NUMBER); 99xx numbers are picked for
# the invented city and schools so they are unlikely to coincide with a real board's or school's code.
PREFECTURAL_BOARD_CODE: Final = f"{PREFECTURE_CODE}1000"
MUNICIPAL_BOARD_CODE: Final = f"{PREFECTURE_CODE}9901"

# The people a visitor signs in as first, in the order `komu demo logins` lists them.
KEY_PERSONAS: Final = (
    "demo-operator",
    "demo-national",
    "demo-pref",
    "demo-board",
    "demo-principal",
    "demo-vice-principal",
    "demo-admin",
    "demo-homeroom",
    "demo-teacher",
    "demo-nurse",
    "demo-guardian",
)


_NamePart = tuple[str, str, str]  # (kanji, katakana, romaji), as Faker's ja_JP name-pair providers return
_Name = tuple[_NamePart, _NamePart]  # (family, given)


@dataclass(frozen=True)
class SpecialClassSpec:
    """特別支援学級. Real ones mix grades; the directory keeps one grade per class, so each demo class is
    registered under the grade of all its pupils."""

    name: str
    grade_number: int  # 1–6 elementary, 7–9 junior high
    category: str
    size: int


@dataclass(frozen=True)
class SchoolSpec:
    key: str  # short and stable: used in generated usernames
    school_type: str
    number: str  # the 7-digit school number inside the 学校コード
    name: str
    address: str
    phone: str
    classes_per_grade: int
    class_size: int
    district: str  # siblings live in one 学区: an elementary school and the junior high it feeds
    special_classes: tuple[SpecialClassSpec, ...]


_PREFECTURE_NAME: Final = prefecture_name(PREFECTURE_CODE)
_CITY_PREFIX: Final = f"{_PREFECTURE_NAME}{CITY}"

_SN = HomeroomClass.SpecialNeedsCategory

# 市内局番 never begin with 0 (it is the trunk prefix), so 048-0XX-XXXX cannot ring a real school.
SCHOOLS: Final = (
    SchoolSpec(
        key="e1",
        school_type="B1",
        number="9900011",
        name="こもれび市立第一小学校",
        address=f"{_CITY_PREFIX}本町一丁目1番1号",
        phone="048-021-0011",
        classes_per_grade=2,
        class_size=24,
        district="north",
        special_classes=(
            SpecialClassSpec("ひまわり学級", 2, _SN.INTELLECTUAL, 5),
            SpecialClassSpec("わかば学級", 4, _SN.AUTISM_EMOTIONAL, 4),
        ),
    ),
    SchoolSpec(
        key="e2",
        school_type="B1",
        number="9900012",
        name="こもれび市立第二小学校",
        address=f"{_CITY_PREFIX}緑が丘三丁目5番1号",
        phone="048-021-0012",
        classes_per_grade=1,
        class_size=30,
        district="south",
        special_classes=(SpecialClassSpec("あおぞら学級", 3, _SN.INTELLECTUAL, 5),),
    ),
    SchoolSpec(
        key="e3",
        school_type="B1",
        number="9900013",
        name="こもれび市立若葉台小学校",
        address=f"{_CITY_PREFIX}若葉台二丁目8番1号",
        phone="048-021-0013",
        classes_per_grade=1,
        class_size=19,
        district="south",
        special_classes=(SpecialClassSpec("つくし学級", 5, _SN.PHYSICAL, 3),),
    ),
    SchoolSpec(
        key="j1",
        school_type="C1",
        number="9900021",
        name="こもれび市立第一中学校",
        address=f"{_CITY_PREFIX}本町四丁目2番1号",
        phone="048-021-0021",
        classes_per_grade=3,
        class_size=30,
        district="north",
        special_classes=(SpecialClassSpec("なかよし学級", 7, _SN.INTELLECTUAL, 6),),
    ),
    SchoolSpec(
        key="j2",
        school_type="C1",
        number="9900022",
        name="こもれび市立第二中学校",
        address=f"{_CITY_PREFIX}緑が丘一丁目10番1号",
        phone="048-021-0022",
        classes_per_grade=2,
        class_size=22,
        district="south",
        special_classes=(SpecialClassSpec("けやき学級", 8, _SN.AUTISM_EMOTIONAL, 4),),
    ),
)
_MAX_CLASS_SIZE: Final = {"B1": 35, "C1": 40}  # 35人学級 in elementary; 40 in junior high

# The names every import must survive (domain.md §2): 髙 and 﨑 are outside JIS X 0208, 𠮷 is outside the BMP.
# The first three are placed in demo-homeroom's class so they are on the first screen a visitor opens.
SPECIAL_SURNAMES: Final = (
    ("髙橋", "タカハシ", "Takahashi"),
    ("山﨑", "ヤマザキ", "Yamazaki"),
    ("𠮷田", "ヨシダ", "Yoshida"),
    ("髙木", "タカギ", "Takagi"),
    ("宮﨑", "ミヤザキ", "Miyazaki"),
    ("𠮷川", "ヨシカワ", "Yoshikawa"),
)
TOWNS: Final = (
    "本町",
    "緑が丘",
    "若葉台",
    "桜台",
    "旭町",
    "栄町",
    "東町",
    "西原",
    "南台",
    "北山",
    "日の出町",
    "けやき台",
)
HEALTH_NOTES: Final = (
    "卵アレルギー：給食は除去食で対応。エピペンを保健室で預かっている。",
    "小麦アレルギー：パン・麺の日は主食を家庭から持参。",
    "そばアレルギー：調理実習と宿泊行事の前に保護者と献立を確認する。",
    "乳アレルギー：牛乳は提供せず、代わりに麦茶を持参。",
    "ピーナッツ・ナッツ類アレルギー：アナフィラキシーの既往あり。エピペン所持。",
    "甲殻類（えび・かに）アレルギー：給食は除去食で対応。",
    "気管支ぜん息：発作時は本人持参の吸入薬を使用し、保護者に連絡する。",
    "食物依存性運動誘発アナフィラキシー（小麦）：給食後2時間は激しい運動を避ける。",
)
HEALTH_NOTE_RATE: Final = 0.04
SIBLING_RATE: Final = 0.12
# (続柄 in contact order, probability). Contact order puts whoever the school usually reaches first at 1.
GUARDIAN_SETS: Final[tuple[tuple[tuple[str, ...], float], ...]] = (
    (("母", "父"), 0.55),
    (("母",), 0.30),
    (("父",), 0.10),
    (("祖母",), 0.05),
)
GUARDIAN_ACCOUNTS_PER_SCHOOL: Final = 2
EMAIL_RATE: Final = 0.8


class DemoDataExists(Exception):
    """The database already holds directory or pupil data: the demo only loads into an empty one."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        listed = "、".join(f"{label} {n} 件" for label, n in counts.items())
        super().__init__(
            f"データベースに既にデータがあります（{listed}）。デモデータは空のデータベースにだけ作成します。"
            "新しい KOMU_VAR_DIR（または空のデータベース）で実行してください。"
            "既存のデータを残したまま起動するときは `komu demo --if-empty` を使ってください。"
        )


@dataclass(frozen=True)
class DemoSummary:
    seed: int
    fiscal_year: int
    boards: int
    schools: int
    classes: int
    students: int
    guardians: int
    guardian_accounts: int
    staff_accounts: int


@dataclass(eq=False)
class _Family:
    surname: _NamePart
    district: str
    address: str = ""
    pupils: list[_Pupil] = field(default_factory=list)


@dataclass(eq=False)
class _Pupil:
    id: uuid.UUID
    school: School
    homeroom_class: HomeroomClass
    grade_number: int
    sex: str
    given: _NamePart
    birth_date: datetime.date
    family: _Family
    health_note: str = ""


def existing_data() -> dict[str, int]:
    """What would make a demo load collide with data already there (only the non-zero counts)."""
    counts = {
        "教育委員会": Board.objects.count(),
        "学校": School.objects.count(),
        "児童生徒": Student.objects.count(),
        "保護者": Guardian.objects.count(),
        "デモ利用者": DemoAccount.objects.count(),
        "demo- で始まる利用者": User.objects.filter(username__startswith=USERNAME_PREFIX).count(),
    }
    return {label: n for label, n in counts.items() if n}


def birth_date_window(grade_number: int, fiscal_year: int) -> tuple[datetime.date, datetime.date]:
    """Birth dates of a pupil in grade 1–9 (小1…中3) in 年度 ``fiscal_year``.

    A child enters grade 1 in the April after turning six, and the legal age rises the day before a
    birthday, so a grade-1 pupil of 2026年度 was born 2019-04-02 … 2020-04-01 (早生まれ up to 1 April).
    """
    first = datetime.date(fiscal_year - 6 - grade_number, 4, 2)
    last = datetime.date(fiscal_year - 5 - grade_number, 4, 1)
    return first, last


def _grade_number(grade_code: str) -> int:
    return int(grade_code[1:]) + (6 if grade_code.startswith("J") else 0)


def _validated(obj: M) -> M:
    """full_clean without the checks that query the database: uniqueness holds by construction (and the
    database enforces it), and foreign keys point at objects built in this run. Both cost a query per row."""
    relations = [f.name for f in obj._meta.concrete_fields if f.is_relation]
    obj.full_clean(exclude=relations, validate_unique=False, validate_constraints=False)
    return obj


class _Builder:
    def __init__(self, *, seed: int, today: datetime.date) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.fake = Faker("ja_JP")
        self.fake.seed_instance(seed)
        self.fiscal_year = fiscal_year_of(today)
        self.password_hash = make_password(DEMO_PASSWORD)  # argon2 once, not once per account
        self.users: list[User] = []
        self.saved_user_count = 0
        self.devices: list[TOTPDevice] = []
        self.accounts: list[DemoAccount] = []
        self.assignments: list[StaffAssignment] = []
        self.pupils: list[_Pupil] = []
        self.used_addresses: set[str] = {spec.address for spec in SCHOOLS}
        self.used_phones: set[str] = set()
        self.used_emails: set[str] = set()

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    # --- directory ------------------------------------------------

    def directory(self) -> tuple[Board, list[tuple[SchoolSpec, School, list[tuple[HomeroomClass, int]]]]]:
        prefecture = Prefecture.objects.get(code=PREFECTURE_CODE)
        pref_board = Board(
            code=PREFECTURAL_BOARD_CODE,
            name=f"{prefecture.name}教育委員会",
            kind=Board.Kind.PREFECTURAL,
            prefecture=prefecture,
        )
        _validated(pref_board).save()
        board = Board(
            code=MUNICIPAL_BOARD_CODE,
            name=f"{CITY}教育委員会",
            kind=Board.Kind.MUNICIPAL,
            prefecture=prefecture,
            parent=pref_board,
        )
        _validated(board).save()
        start, end = fiscal_year_bounds(self.fiscal_year)
        # Three 学期 as most 学校管理規則 define them: administrative periods that include the holidays.
        terms = (
            (1, "1学期", start, datetime.date(self.fiscal_year, 8, 31)),
            (2, "2学期", datetime.date(self.fiscal_year, 9, 1), datetime.date(self.fiscal_year, 12, 31)),
            (3, "3学期", datetime.date(self.fiscal_year + 1, 1, 1), end),
        )
        schools = []
        for spec in SCHOOLS:
            school = School(
                code=make_school_code(spec.school_type, PREFECTURE_CODE, "2", spec.number),
                name=spec.name,
                school_type=spec.school_type,
                board=board,
                prefecture=prefecture,
                address=spec.address,
                phone=spec.phone,
            )
            _validated(school).save()
            year = SchoolYear(school=school, year=self.fiscal_year, start_date=start, end_date=end)
            _validated(year).save()
            for number, name, first, last in terms:
                _validated(
                    Term(school_year=year, number=number, name=name, start_date=first, end_date=last)
                ).save()
            classes = []
            order = 0
            for grade_code in grades_for_school_type(spec.school_type):
                for n in range(1, spec.classes_per_grade + 1):
                    order += 1
                    klass = HomeroomClass(
                        school_year=year, grade_code=grade_code, name=f"{n}組", sort_order=order
                    )
                    _validated(klass).save()
                    size = min(spec.class_size + self.rng.randint(-3, 3), _MAX_CLASS_SIZE[spec.school_type])
                    classes.append((klass, size))
            for special in spec.special_classes:
                order += 1
                grade_code = next(
                    g
                    for g in grades_for_school_type(spec.school_type)
                    if _grade_number(g) == special.grade_number
                )
                klass = HomeroomClass(
                    school_year=year,
                    grade_code=grade_code,
                    name=special.name,
                    kind=HomeroomClass.Kind.SPECIAL_NEEDS,
                    special_needs_category=special.category,
                    sort_order=order,
                )
                _validated(klass).save()
                classes.append((klass, special.size))
            if spec.school_type == "B1":
                self.next_year_first_grade(school, spec)
            schools.append((spec, school, classes))
        self.prefecture, self.pref_board, self.board = prefecture, pref_board, board
        return board, schools

    def next_year_first_grade(self, school: School, spec: SchoolSpec) -> None:
        """Next 年度 with its first-grade classes: where the entrants of the board's roster are placed (学級編制).
        The other grades are made by the year roll-over (年次更新) in March."""
        start, end = fiscal_year_bounds(self.fiscal_year + 1)
        year = SchoolYear(school=school, year=self.fiscal_year + 1, start_date=start, end_date=end)
        _validated(year).save()
        for n in range(1, spec.classes_per_grade + 1):
            _validated(HomeroomClass(school_year=year, grade_code="P1", name=f"{n}組", sort_order=n)).save()
        # The school's first special-needs class takes next year's first-graders of its kind.
        for special in spec.special_classes[:1]:
            _validated(HomeroomClass(
                school_year=year, grade_code="P1", name=special.name, kind=HomeroomClass.Kind.SPECIAL_NEEDS,
                special_needs_category=special.category, sort_order=spec.classes_per_grade + 1,
            )).save()

    # --- people ---------------------------------------------------

    def person_name(self, sex: str) -> _Name:
        family = self.fake.last_name_pair()
        given = self.fake.first_name_male_pair() if sex == Sex.MALE else self.fake.first_name_female_pair()
        return family, given

    def pupils_for(self, spec: SchoolSpec, school: School, classes: list[tuple[HomeroomClass, int]]) -> None:
        for klass, size in classes:
            grade_number = _grade_number(klass.grade_code)
            first, last = birth_date_window(grade_number, self.fiscal_year)
            for _ in range(size):
                sex = self.rng.choice((Sex.MALE, Sex.FEMALE))
                family, given = self.person_name(sex)
                pupil = _Pupil(
                    id=self.uuid(),
                    school=school,
                    homeroom_class=klass,
                    grade_number=grade_number,
                    sex=sex,
                    given=given,
                    birth_date=first + datetime.timedelta(days=self.rng.randrange((last - first).days + 1)),
                    family=_Family(surname=family, district=spec.district),
                )
                pupil.family.pupils.append(pupil)
                if self.rng.random() < HEALTH_NOTE_RATE:
                    pupil.health_note = self.rng.choice(HEALTH_NOTES)
                self.pupils.append(pupil)

    @staticmethod
    def join(pupil: _Pupil, family: _Family) -> None:
        """Make ``pupil`` (alone in its family so far) a sibling in ``family``."""
        pupil.family.pupils.remove(pupil)
        pupil.family = family
        family.pupils.append(pupil)

    def families(self, demo_class: HomeroomClass, demo_sibling_class: HomeroomClass) -> _Family:
        """Group pupils into families (siblings: one 学区, other grades); return demo-guardian's family."""
        in_class = [p for p in self.pupils if p.homeroom_class == demo_class]
        elder = next(p for p in self.pupils if p.homeroom_class == demo_sibling_class)
        demo_family = in_class[0].family
        self.join(elder, demo_family)
        reserved = {id(p) for p in (in_class[0], in_class[1], in_class[2], elder)}
        for pupil in self.rng.sample(self.pupils, len(self.pupils)):
            if id(pupil) in reserved or len(pupil.family.pupils) != 1 or self.rng.random() >= SIBLING_RATE:
                continue
            candidates = [
                p.family
                for p in self.pupils
                if p.family is not pupil.family
                and p.family.district == pupil.family.district
                and len(p.family.pupils) < 3
                and all(s.grade_number != pupil.grade_number for s in p.family.pupils)
            ]
            if candidates:
                self.join(pupil, self.rng.choice(candidates))
        # The demanding names: 𠮷田 for demo-guardian's family, 髙橋 and 山﨑 beside them in demo-homeroom's
        # class, the rest on a few families elsewhere.
        demo_family.surname = SPECIAL_SURNAMES[2]
        in_class[1].family.surname = SPECIAL_SURNAMES[0]
        in_class[2].family.surname = SPECIAL_SURNAMES[1]
        taken = {id(demo_family), id(in_class[1].family), id(in_class[2].family)}
        others = [p.family for p in self.pupils if id(p.family) not in taken]
        for surname in SPECIAL_SURNAMES[3:]:
            family = self.rng.choice(others)
            taken.add(id(family))
            family.surname = surname
            others = [f for f in others if id(f) not in taken]
        return demo_family

    def address(self) -> str:
        while True:
            town = self.rng.choice(TOWNS)
            chome, ban, go = self.rng.randint(1, 5), self.rng.randint(1, 30), self.rng.randint(1, 20)
            value = f"{_CITY_PREFIX}{town}{chome}丁目{ban}-{go}"
            if self.rng.random() < 0.2:
                value += f" こもれびハイツ{self.rng.randint(1, 5)}0{self.rng.randint(1, 8)}号室"
            if value not in self.used_addresses:
                self.used_addresses.add(value)
                return value

    def phone(self) -> str:
        # 0X0-0XXX-XXXX: the digit after 070/080/090 is never 0 in numbers allotted to carriers (unconfirmed;
        # widely relied on as unassigned), so no demo number can reach a real phone.
        while True:
            prefix = self.rng.choice(("090", "080", "070"))
            value = normalize_phone(
                f"{prefix}-0{self.rng.randrange(1000):03d}-{self.rng.randrange(10000):04d}"
            )
            if value not in self.used_phones:
                self.used_phones.add(value)
                return value

    def email(self, given_romaji: str, family_romaji: str) -> str:
        while True:
            value = f"{given_romaji.lower()}.{family_romaji.lower()}{self.rng.randint(10, 999)}@example.jp"
            if value not in self.used_emails:
                self.used_emails.add(value)
                return value

    # --- accounts -------------------------------------------------

    def account(
        self,
        username: str,
        *,
        kind: str = User.Kind.STAFF,
        name: _Name | None = None,
        email: str | None = None,
    ) -> User:
        if name is None:
            name = self.person_name(self.rng.choice((Sex.MALE, Sex.FEMALE)))
        family, given = name
        user = User(
            id=self.uuid(),
            username=username,
            kind=kind,
            password=self.password_hash,
            display_name=f"{family[0]} {given[0]}",
            display_name_kana=f"{family[1]} {given[1]}",
            email=self.email(given[2], family[2]) if email is None else email,
        )
        _validated(user)
        self.users.append(user)
        if kind == User.Kind.STAFF:
            # Pre-enrolled and confirmed, so a visitor signs in with the printed secret instead of enrolling.
            # Seeded like everything else: the secret is no more private than the printed demo password.
            self.devices.append(
                TOTPDevice(user=user, name=TOTP_DEVICE_NAME, confirmed=True, key=self.rng.randbytes(20).hex())
            )
        is_key = username in KEY_PERSONAS
        position = KEY_PERSONAS.index(username) if is_key else len(KEY_PERSONAS) + len(self.accounts)
        self.accounts.append(DemoAccount(user=user, is_key_persona=is_key, position=position))
        return user

    def staff(self, username: str, role: str, **scope: Any) -> None:
        user = self.account(username)
        self.assignments.append(StaffAssignment(user=user, role=role, **scope))

    def staff_for(self, spec: SchoolSpec, school: School, classes: list[tuple[HomeroomClass, int]]) -> None:
        key = spec is SCHOOLS[0]

        def name(role: str) -> str:
            return f"demo-{role}" if key else f"demo-{spec.key}-{role}"

        self.staff(name("principal"), Role.PRINCIPAL, school=school)
        self.staff(name("vice-principal"), Role.VICE_PRINCIPAL, school=school)
        self.staff(name("admin"), Role.SCHOOL_ADMIN, school=school)
        self.staff(name("nurse"), Role.SCHOOL_NURSE, school=school)
        self.staff(name("teacher"), Role.TEACHER, school=school)
        special = 0
        for klass, _size in classes:
            if klass.kind == HomeroomClass.Kind.SPECIAL_NEEDS:
                special += 1
                suffix = f"sn{special}"
            else:
                suffix = f"{klass.grade_code.lower()}-{klass.name.removesuffix('組')}"
            username = "demo-homeroom" if key and suffix == "p1-1" else f"demo-{spec.key}-hr-{suffix}"
            self.staff(username, Role.HOMEROOM_TEACHER, school=school, homeroom_class=klass)

    # --- writing --------------------------------------------------

    def guardian_account_families(self, families: list[_Family], demo_family: _Family) -> set[int]:
        """demo-guardian's family (siblings in two schools, one login) and a few more families per school."""
        chosen = {id(demo_family)}
        by_school: dict[int, list[_Family]] = defaultdict(list)
        for family in families:
            if family is not demo_family:
                by_school[family.pupils[0].school.pk].append(family)
        for school_families in by_school.values():
            chosen.update(id(f) for f in self.rng.sample(school_families, GUARDIAN_ACCOUNTS_PER_SCHOOL))
        return chosen

    def students_and_guardians(self, demo_family: _Family) -> tuple[list[Student], list[Guardian]]:
        families = list(dict.fromkeys(p.family for p in self.pupils))
        for family in families:
            family.address = self.address()
        students = [
            _validated(
                Student(
                    id=pupil.id,
                    school=pupil.school,
                    family_name=check_name(pupil.family.surname[0], field="姓").value,
                    given_name=check_name(pupil.given[0], field="名").value,
                    family_name_kana=normalize_kana(pupil.family.surname[1]),
                    given_name_kana=normalize_kana(pupil.given[1]),
                    sex=pupil.sex,
                    birth_date=pupil.birth_date,
                    address=pupil.family.address,
                    health_note=pupil.health_note,
                )
            )
            for pupil in self.pupils
        ]
        memberships: list[ClassMembership] = []
        by_class: dict[int, list[_Pupil]] = defaultdict(list)
        for pupil in self.pupils:
            by_class[pupil.homeroom_class.pk].append(pupil)
        for members in by_class.values():
            # 出席番号 by kana reading, boys and girls mixed: the default order (domain.md §2).
            members.sort(key=lambda p: (p.family.surname[1], p.given[1], p.birth_date))
            memberships.extend(
                ClassMembership(student_id=pupil.id, homeroom_class=pupil.homeroom_class, shusseki_no=number)
                for number, pupil in enumerate(members, start=1)
            )
        with_account = self.guardian_account_families(families, demo_family)
        guardians: list[Guardian] = []
        links: list[GuardianLink] = []
        sets, weights = zip(*GUARDIAN_SETS, strict=True)
        for family in families:
            for priority, relationship in enumerate(self.rng.choices(sets, weights=weights)[0], start=1):
                _, given = self.person_name(Sex.MALE if relationship == "父" else Sex.FEMALE)
                email = self.email(given[2], family.surname[2]) if self.rng.random() < EMAIL_RATE else ""
                user = None
                if priority == 1 and id(family) in with_account:
                    number = sum(u.kind == User.Kind.GUARDIAN for u in self.users) + 1
                    username = "demo-guardian" if family is demo_family else f"demo-guardian-{number:02d}"
                    user = self.account(
                        username, kind=User.Kind.GUARDIAN, name=(family.surname, given), email=email
                    )
                guardian = Guardian(
                    id=self.uuid(),
                    user=user,
                    family_name=check_name(family.surname[0], field="姓").value,
                    given_name=check_name(given[0], field="名").value,
                    family_name_kana=normalize_kana(family.surname[1]),
                    given_name_kana=normalize_kana(given[1]),
                    phone=self.phone(),
                    email=email,
                    address=family.address,
                )
                guardians.append(_validated(guardian))
                links.extend(
                    GuardianLink(
                        guardian=guardian, student_id=pupil.id, relationship=relationship, priority=priority
                    )
                    for pupil in family.pupils
                )
        self.save_pending_users()
        Student.objects.bulk_create(students)
        ClassMembership.objects.bulk_create(memberships)
        Guardian.objects.bulk_create(guardians)
        GuardianLink.objects.bulk_create(links)
        return students, guardians

    def save_pending_users(self) -> None:
        User.objects.bulk_create(self.users[self.saved_user_count :])
        self.saved_user_count = len(self.users)

    def build(self) -> DemoSummary:
        board, schools = self.directory()
        self.staff("demo-operator", Role.OPERATOR)
        self.staff("demo-national", Role.NATIONAL_ANALYST)
        self.staff("demo-pref", Role.PREFECTURAL_ANALYST, prefecture=self.prefecture)
        self.staff("demo-board", Role.BOARD_OFFICER, board=board)
        for spec, school, classes in schools:
            self.staff_for(spec, school, classes)
            self.pupils_for(spec, school, classes)
        classes_of = {spec.key: classes for spec, _school, classes in schools}
        demo_class = classes_of["e1"][0][0]  # 1年1組 of the first elementary school: demo-homeroom's class
        sibling_class = next(k for k, _ in classes_of["j1"] if k.grade_code == "J2")
        demo_family = self.families(demo_class, sibling_class)
        # Staff accounts first (their assignments refer to them); guardians' accounts are added while writing.
        self.save_pending_users()
        for assignment in self.assignments:
            _validated(assignment)
        StaffAssignment.objects.bulk_create(self.assignments)
        students, guardians = self.students_and_guardians(demo_family)
        TOTPDevice.objects.bulk_create(self.devices)
        DemoAccount.objects.bulk_create(self.accounts)
        from komu.demo.surveys import build as build_surveys  # 照会・回答: outbreak figures, a late survey

        build_surveys(board=board, schools=[s for _p, s, _c in schools], seed=self.seed)
        from komu.demo.progress import build as build_progress  # 校務DXの進捗: history and a reference nation

        build_progress(board=board, schools=[s for _p, s, _c in schools], seed=self.seed)
        from komu.demo.trips import build as build_trips  # 校外活動: emergency contacts

        build_trips(klass=demo_class, seed=self.seed)
        summary = DemoSummary(
            seed=self.seed,
            fiscal_year=self.fiscal_year,
            boards=2,
            schools=len(schools),
            classes=sum(len(classes) for _s, _sc, classes in schools),
            students=len(students),
            guardians=len(guardians),
            guardian_accounts=sum(u.kind == User.Kind.GUARDIAN for u in self.users),
            staff_accounts=sum(u.kind == User.Kind.STAFF for u in self.users),
        )
        audit_record(
            actor=None,
            action="demo.loaded",
            object_type="demo.municipality",
            object_id=board.code,
            fields=[
                "family_name",
                "given_name",
                "family_name_kana",
                "given_name_kana",
                "sex",
                "birth_date",
                "address",
                "health_note",
                "phone",
                "email",
            ],
            detail={
                "seed": summary.seed,
                "fiscal_year": summary.fiscal_year,
                "schools": summary.schools,
                "classes": summary.classes,
                "students": summary.students,
                "guardians": summary.guardians,
                "guardian_accounts": summary.guardian_accounts,
                "staff_accounts": summary.staff_accounts,
            },
            scope=Scope(board_id=board.pk),
        )
        return summary


def build_demo(*, seed: int = DEFAULT_SEED, today: datetime.date | None = None) -> DemoSummary:
    """Create the demo municipality in one transaction; DemoDataExists if the database is not empty."""
    with transaction.atomic():
        counts = existing_data()
        if counts:
            raise DemoDataExists(counts)
        try:
            return _Builder(seed=seed, today=today or timezone.localdate()).build()
        except ValidationError as exc:
            # Generated data failing validation is a bug in this module, not the user's input: say so plainly.
            raise RuntimeError(f"デモデータの生成に誤りがあります: {exc}") from exc
