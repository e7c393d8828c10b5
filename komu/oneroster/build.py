"""From Komu's directory and registry to OneRoster 1.2 records (Japan Profile), for the CSV export and REST.

Mapping (docs in komu/oneroster/README.md):
  Board → org district (identifier 教育委員会コード); School → org school (identifier 学校コード, parent district);
  SchoolYear → academicSession schoolYear titled "YYYY年度", Term → term; (SchoolYear, grade) → course;
  HomeroomClass → class homeroom (grades, metadata.jp.specialNeeds); Student → user + role student +
  demographics, ClassMembership → enrollment with metadata.jp.ShussekiNo; StaffAssignment at a school → user +
  role (principal / siteAdministrator / teacher), a homeroom teacher's also an enrollment (teacher, primary).

Guardians are not exported: learning portals roster pupils and teachers, and a roster is a disclosure (data
minimisation, domain.md §6). Staff whose name cannot be split into family and given name or who have no kana
reading (both required by the Japan Profile) are left out and counted in `skipped_staff`.

sourcedIds come from RosterObject (komu.oneroster.models): pupils and staff keep their UUID key unless an import
brought another; every other object gets a UUID4 the first time it is seen, and keeps it.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from komu.core import codes
from komu.core.text import to_katakana
from komu.core.wareki import fiscal_year_of
from komu.directory.models import Board, HomeroomClass, Role, School, SchoolYear, StaffAssignment, Term
from komu.oneroster import spec
from komu.oneroster.models import RosterObject, new_sourced_id

Kind = RosterObject.Kind

STAFF_ROLES: dict[str, str] = {
    Role.PRINCIPAL: "principal",
    Role.VICE_PRINCIPAL: "siteAdministrator",
    Role.SCHOOL_ADMIN: "siteAdministrator",
    Role.HOMEROOM_TEACHER: "teacher",
    Role.TEACHER: "teacher",
    Role.SCHOOL_NURSE: "teacher",
}
# Unconfirmed meaning (domain.md leaves it open): Komu marks a homeroom teacher's enrollment public.
PUBLIC_FLG_TEACHER = "true"
PUBLIC_FLG_STUDENT = ""
_SPACE = re.compile(r"[ \u3000]+")


@dataclass(frozen=True)
class Scope:
    """What one export or one API client covers: some schools of some boards, for one 年度."""

    board_ids: tuple[int, ...]
    school_ids: tuple[int, ...]
    year: int

    @property
    def is_current_year(self) -> bool:
        return self.year == fiscal_year_of(timezone.localdate())


@dataclass(slots=True)
class Record:
    """One OneRoster object: its file, values (CSV column → text), last modification, Komu person id if any."""

    file: str
    values: dict[str, str]
    modified: datetime.datetime
    person_id: str = ""
    # REST: which schools/classes this object belongs to, for relation endpoints and scope.
    school_sid: str = ""
    class_sid: str = ""
    role: str = ""

    @property
    def sourced_id(self) -> str:
        return self.values["sourcedId"]


@dataclass
class Roster:
    records: dict[str, list[Record]] = field(default_factory=lambda: defaultdict(list))
    tombstones: dict[str, list[tuple[str, datetime.datetime]]] = field(default_factory=lambda: defaultdict(list))
    skipped_staff: int = 0
    # Komu key → sourcedId of the scope's schools and classes, the classes' grades and the 年度 ids: what the
    # streamed pupils' files (komu.oneroster.export) refer to.
    school_sid: dict[int, str] = field(default_factory=dict)
    class_sid: dict[int, str] = field(default_factory=dict)
    class_grade: dict[int, str] = field(default_factory=dict)
    year_ids: tuple[int, ...] = ()


def iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def split_name(value: str) -> tuple[str, str]:
    """「山田 太郎」→ (山田, 太郎); ('', '') when the name has no space to split at."""
    parts = _SPACE.split(value.strip(), maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else ("", "")


@dataclass
class _Known:
    pk: int
    sourced_id: str
    first_seen_at: datetime.datetime
    gone_at: datetime.datetime | None
    school_id: int | None


_KNOWN_COLUMNS = ("kind", "local_key", "pk", "sourced_id", "first_seen_at", "gone_at", "school_id")
# The objects there is one of per pupil: the streamed export handles them chunk by chunk (komu.oneroster.export).
PUPIL_KINDS = (Kind.STUDENT, Kind.STUDENT_ROLE, Kind.STUDENT_ENROLLMENT)
_INSERT_ROWS = 500  # rows per INSERT statement (6 parameters each)


def insert_objects(rows: Sequence[tuple[str, str, str, int | None, int | None, datetime.datetime]]) -> None:
    """Store new RosterObjects (kind, local_key, sourced_id, school_id, board_id, first_seen_at) with multi-row
    INSERTs: one statement per 500 rows rather than one round trip per row. A row whose kind and key (or
    sourcedId) is already stored is left as it is."""
    if not rows:
        return
    table = connection.ops.quote_name(RosterObject._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_ROWS):
            part = rows[start:start + _INSERT_ROWS]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(part))
            params = [connection.ops.adapt_datetimefield_value(v) if isinstance(v, datetime.datetime) else v
                      for row in part for v in row]
            cursor.execute(f"INSERT INTO {table} (kind, local_key, sourced_id, school_id, board_id, "  # noqa: S608
                           f"first_seen_at) VALUES {values} ON CONFLICT DO NOTHING", params)


class SourcedIds:
    """Look up and assign sourcedIds in bulk: one read per export, one insert for what is new. Rows are read
    as tuples and written with one executemany (model instances would triple the cost of a large export)."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self._known: dict[tuple[str, str], _Known] = {}
        self._new: dict[tuple[str, str], tuple[str, int | None, int | None]] = {}
        self.seen: set[tuple[str, str]] = set()
        q = Q(school_id__in=scope.school_ids) | Q(board_id__in=scope.board_ids, school__isnull=True)
        # The pupils' objects are kept by komu.oneroster.export (set-based SQL): not read here, nor taken for gone.
        self._load(RosterObject.objects.filter(q).exclude(kind__in=PUPIL_KINDS))

    def _load(self, qs: Any) -> None:
        for kind, key, pk, sid, first, gone, school in qs.values_list(*_KNOWN_COLUMNS).iterator(chunk_size=5000):
            self._known.setdefault((kind, key), _Known(pk, sid, first, gone, school))

    def get(self, kind: str, key: Any, *, school_id: int | None = None, board_id: int | None = None,
            default: str = "") -> str:
        pair = (kind, str(key))
        self.seen.add(pair)
        known = self._known.get(pair)
        if known is not None:
            return known.sourced_id
        new = self._new.get(pair)
        if new is None:
            new = (default or new_sourced_id(), school_id, board_id)
            self._new[pair] = new
        return new[0]

    def preload(self, kind: str, keys: Iterable[Any]) -> None:
        """Persons move between schools: find their sourcedId wherever it was first recorded (one query per
        chunk, not one per person)."""
        missing = [str(k) for k in keys if (kind, str(k)) not in self._known]
        for start in range(0, len(missing), 2000):
            self._load(RosterObject.objects.filter(kind=kind, local_key__in=missing[start:start + 2000]))

    def first_seen(self, kind: str, key: Any) -> datetime.datetime | None:
        known = self._known.get((kind, str(key)))
        return known.first_seen_at if known is not None else None

    def _insert_new(self) -> None:
        now = timezone.now()
        insert_objects([(kind, key, sid, school, board, now)
                        for (kind, key), (sid, school, board) in self._new.items()])

    def save(self, *, detect_gone: bool) -> dict[str, list[tuple[str, datetime.datetime]]]:
        """Store new sourcedIds; with `detect_gone`, stamp what is no longer found and return every tombstone."""
        if self._new:
            self._insert_new()
        now = timezone.now()
        tombstones: dict[str, list[tuple[str, datetime.datetime]]] = defaultdict(list)
        gone_ids, back_ids = [], []
        for pair, known in self._known.items():
            if pair in self.seen:
                if known.gone_at is not None:
                    back_ids.append(known.pk)
                continue
            if not detect_gone:
                continue
            if known.gone_at is None:
                gone_ids.append(known.pk)
                known.gone_at = now
            for file in _FILES_OF_KIND[pair[0]]:
                tombstones[file].append((known.sourced_id, known.gone_at))
        for start in range(0, len(gone_ids), 2000):
            RosterObject.objects.filter(pk__in=gone_ids[start:start + 2000]).update(gone_at=now)
        for start in range(0, len(back_ids), 2000):
            RosterObject.objects.filter(pk__in=back_ids[start:start + 2000]).update(gone_at=None)
        return tombstones


_FILES_OF_KIND: dict[str, tuple[str, ...]] = {
    Kind.DISTRICT: ("orgs",), Kind.SCHOOL: ("orgs",), Kind.SCHOOL_YEAR: ("academicSessions",),
    Kind.TERM: ("academicSessions",), Kind.COURSE: ("courses",), Kind.CLASS: ("classes",),
    Kind.STUDENT: ("users", "demographics"), Kind.STAFF: ("users",), Kind.STUDENT_ROLE: ("roles",),
    Kind.STAFF_ROLE: ("roles",), Kind.STUDENT_ENROLLMENT: ("enrollments",),
    Kind.TEACHER_ENROLLMENT: ("enrollments",),
}


class Values(dict[str, str]):
    """A record's columns, stored sparsely (most OneRoster columns are empty, and a large export holds hundreds of
    thousands of rows): a missing column reads as ""."""

    __slots__ = ()

    def __missing__(self, key: str) -> str:
        return ""


def _row(file_spec: spec.FileSpec, **values: str) -> Values:
    return Values((k, v) for k, v in values.items() if v)


def _latest(*moments: datetime.datetime | None) -> datetime.datetime:
    return max(m for m in moments if m is not None)


def _current_assignments(school_ids: Sequence[int]) -> list[StaffAssignment]:
    today = timezone.localdate()
    return list(
        StaffAssignment.objects.filter(school_id__in=school_ids, role__in=list(STAFF_ROLES))
        .filter(Q(start_date__isnull=True) | Q(start_date__lte=today))
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        .select_related("user", "homeroom_class")
        .order_by("user_id", "role", "pk")
    )


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Building a roster allocates millions of small objects, none of them cyclic garbage; the cyclic collector's
    full passes over the growing heap made a 100,000-pupil export superlinear. Paused, then restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_roster(scope: Scope, *, detect_gone: bool = False, pupils: bool = True) -> Roster:
    """Every OneRoster record of the scope, with sourcedIds assigned (and stored) where new. Without `pupils`,
    everything but the pupils' users, roles, demographics and enrollments (which the export streams)."""
    # One transaction: the sourcedIds stored and the rows read from one consistent state.
    with transaction.atomic(), gc_paused():
        return _build_roster(scope, detect_gone=detect_gone, pupils=pupils)


def _build_roster(scope: Scope, *, detect_gone: bool, pupils: bool) -> Roster:
    ids = SourcedIds(scope)
    roster = Roster()
    recs = roster.records
    boards = {b.pk: b for b in Board.objects.filter(pk__in=scope.board_ids)}
    schools = list(School.objects.filter(pk__in=scope.school_ids).order_by("code"))
    school_sid: dict[int, str] = {}
    board_sid: dict[int, str] = {}
    for board in boards.values():
        sid = ids.get(Kind.DISTRICT, board.pk, board_id=board.pk)
        board_sid[board.pk] = sid
        recs["orgs"].append(Record("orgs", _row(spec.ORGS, sourcedId=sid, name=board.name, type="district",
                                                identifier=board.code),
                                   _latest(board.updated_at, ids.first_seen(Kind.DISTRICT, board.pk))))
    for school in schools:
        sid = ids.get(Kind.SCHOOL, school.pk, school_id=school.pk)
        school_sid[school.pk] = sid
        recs["orgs"].append(Record(
            "orgs", _row(spec.ORGS, sourcedId=sid, name=school.name, type="school", identifier=school.code,
                         parentSourcedId=board_sid.get(school.board_id, "")),
            _latest(school.updated_at, ids.first_seen(Kind.SCHOOL, school.pk)), school_sid=sid))
    years = list(SchoolYear.objects.filter(school_id__in=scope.school_ids, year=scope.year))
    year_sid: dict[int, str] = {}
    year_school: dict[int, int] = {}
    for sy in years:
        sid = ids.get(Kind.SCHOOL_YEAR, sy.pk, school_id=sy.school_id)
        year_sid[sy.pk] = sid
        year_school[sy.pk] = sy.school_id
        recs["academicSessions"].append(Record(
            "academicSessions",
            _row(spec.ACADEMIC_SESSIONS, sourcedId=sid, title=f"{sy.year}年度", type="schoolYear",
                 startDate=sy.start_date.isoformat(), endDate=sy.end_date.isoformat(), schoolYear=str(sy.year)),
            _latest(sy.updated_at, ids.first_seen(Kind.SCHOOL_YEAR, sy.pk)), school_sid=school_sid[sy.school_id]))
    for term in Term.objects.filter(school_year__in=years).select_related("school_year"):
        sy = term.school_year
        sid = ids.get(Kind.TERM, term.pk, school_id=sy.school_id)
        recs["academicSessions"].append(Record(
            "academicSessions",
            _row(spec.ACADEMIC_SESSIONS, sourcedId=sid, title=term.name, type="term",
                 startDate=term.start_date.isoformat(), endDate=term.end_date.isoformat(),
                 parentSourcedId=year_sid[sy.pk], schoolYear=str(sy.year)),
            _latest(sy.updated_at, ids.first_seen(Kind.TERM, term.pk)), school_sid=school_sid[sy.school_id]))
    classes = list(HomeroomClass.objects.filter(school_year__in=years))
    class_sid: dict[int, str] = {}
    class_grade: dict[int, str] = {}
    course_modified: dict[tuple[int, str], datetime.datetime] = {}
    for klass in classes:
        key = (klass.school_year_id, klass.grade_code)
        course_modified[key] = max(course_modified.get(key, klass.updated_at), klass.updated_at)
    course_sid: dict[tuple[int, str], str] = {}
    for (sy_id, grade), modified in sorted(course_modified.items()):
        school_id = year_school[sy_id]
        local = f"{sy_id}:{grade}"
        sid = ids.get(Kind.COURSE, local, school_id=school_id)
        course_sid[(sy_id, grade)] = sid
        year = next(y.year for y in years if y.pk == sy_id)
        recs["courses"].append(Record(
            "courses",
            _row(spec.COURSES, sourcedId=sid, schoolYearSourcedId=year_sid[sy_id],
                 title=f"{year}年度 {codes.grade_label(grade)}", grades=grade, orgSourcedId=school_sid[school_id]),
            _latest(modified, ids.first_seen(Kind.COURSE, local)), school_sid=school_sid[school_id]))
    for klass in classes:
        school_id = year_school[klass.school_year_id]
        sid = ids.get(Kind.CLASS, klass.pk, school_id=school_id)
        class_sid[klass.pk] = sid
        class_grade[klass.pk] = klass.grade_code
        special = klass.kind == HomeroomClass.Kind.SPECIAL_NEEDS
        recs["classes"].append(Record(
            "classes",
            _row(spec.CLASSES, sourcedId=sid, title=klass.name, grades=klass.grade_code,
                 courseSourcedId=course_sid[(klass.school_year_id, klass.grade_code)], classType="homeroom",
                 schoolSourcedId=school_sid[school_id], termSourcedIds=year_sid[klass.school_year_id],
                 **{"metadata.jp.specialNeeds": "true" if special else "false",
                    "metadata.komu.specialNeedsCategory": klass.special_needs_category if special else ""}),
            _latest(klass.updated_at, ids.first_seen(Kind.CLASS, klass.pk)),
            school_sid=school_sid[school_id], class_sid=sid))
    roster.school_sid, roster.class_sid, roster.class_grade = school_sid, class_sid, class_grade
    roster.year_ids = tuple(sy.pk for sy in years)
    _add_staff(scope, ids, roster, school_sid, class_sid, class_grade)
    roster.tombstones = ids.save(detect_gone=detect_gone and scope.is_current_year)
    if pupils:
        from komu.oneroster.export import add_pupils  # the pupils' rows come from the export's SQL

        add_pupils(scope, roster, detect_gone=detect_gone and scope.is_current_year)
    for file in recs:
        recs[file].sort(key=lambda r: r.sourced_id)
    return roster


def _add_staff(scope: Scope, ids: SourcedIds, roster: Roster, school_sid: dict[int, str],
               class_sid: dict[int, str], class_grade: dict[int, str]) -> None:
    recs = roster.records
    by_user: dict[Any, list[StaffAssignment]] = defaultdict(list)
    # beginDate/endDate stay empty: only current assignments are exported, and an importing Komu starts the
    # assignment on the day of the import (so the dates could not survive a round trip anyway).
    for a in _current_assignments(scope.school_ids):
        by_user[a.user_id].append(a)
    ids.preload(Kind.STAFF, by_user)
    for assignments in by_user.values():
        user = assignments[0].user
        family, given = split_name(user.display_name)
        kana_family, kana_given = split_name(user.display_name_kana)
        if not (family and given and kana_family and kana_given) or not user.is_active:
            roster.skipped_staff += 1
            continue
        first_school = assignments[0].school_id
        sid = ids.get(Kind.STAFF, user.pk, school_id=first_school, default=str(user.pk))
        homes = [a.homeroom_class_id for a in assignments
                 if a.homeroom_class_id is not None and a.homeroom_class_id in class_sid]
        assert first_school is not None
        org = school_sid[first_school]
        recs["users"].append(Record(
            "users",
            _row(spec.USERS, sourcedId=sid, enabledUser="true", username=user.username, givenName=given,
                 familyName=family, grades=",".join(sorted({class_grade[h] for h in homes})),
                 primaryOrgSourcedId=org,
                 **{"metadata.jp.kanaGivenName": to_katakana(kana_given),
                    "metadata.jp.kanaFamilyName": to_katakana(kana_family),
                    "metadata.jp.homeClass": class_sid[homes[0]] if homes else ""}),
            _latest(*(a.updated_at for a in assignments), ids.first_seen(Kind.STAFF, user.pk)),
            person_id=str(user.pk), school_sid=org, role="teacher"))
        for index, a in enumerate(assignments):
            assert a.school_id is not None
            a_org = school_sid[a.school_id]
            role_sid = ids.get(Kind.STAFF_ROLE, a.pk, school_id=a.school_id)
            recs["roles"].append(Record(
                "roles",
                _row(spec.ROLES_FILE, sourcedId=role_sid, userSourcedId=sid,
                     roleType="primary" if index == 0 else "secondary", role=STAFF_ROLES[a.role],
                     orgSourcedId=a_org),
                _latest(a.updated_at, ids.first_seen(Kind.STAFF_ROLE, a.pk)), school_sid=a_org,
                role=STAFF_ROLES[a.role]))
            if a.homeroom_class_id in class_sid:
                enrol_sid = ids.get(Kind.TEACHER_ENROLLMENT, a.pk, school_id=a.school_id)
                klass = class_sid[a.homeroom_class_id]
                recs["enrollments"].append(Record(
                    "enrollments",
                    _row(spec.ENROLLMENTS, sourcedId=enrol_sid, classSourcedId=klass, schoolSourcedId=a_org,
                         userSourcedId=sid, role="teacher", primary="true",
                         **{"metadata.jp.PublicFlg": PUBLIC_FLG_TEACHER}),
                    _latest(a.updated_at, ids.first_seen(Kind.TEACHER_ENROLLMENT, a.pk)), school_sid=a_org,
                    class_sid=klass, role="teacher"))
