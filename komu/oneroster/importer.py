"""Importing a OneRoster 1.2 CSV bundle (Japan Profile) through the directory's and registry's own services.

All or nothing: the bundle is validated first (komu.oneroster.bundle); then every object is applied inside one
transaction through board_create / school_create / school_year_create / terms_set / homeroom_class_create /
student_create / student_update / membership_assign / user_create / staff_assignment_create, each of which checks
the actor's capability and scope and writes its own audit event. Any refusal rolls everything back and is
reported at the file and line it came from. A dry run applies and then rolls back, so it finds exactly what
the real run would.

Objects are matched by sourcedId (RosterObject), else by their natural key (教育委員会コード, 学校コード, year,
class grade + name, staff login ID); the sourcedId is then recorded so a later export gives it back unchanged.
Not applied (reported as notes, not errors): guardians and other non-staff users, scheduled classes. Refused:
rows with status tobedeleted (a pupil leaves through 学籍の異動, which records the date and reason).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from komu.access import roles, scope
from komu.access.scope import Actor, Grant
from komu.audit.services import Scope as AuditScope
from komu.audit.services import audit_record
from komu.core.errors import KomuError, NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.directory import services as directory
from komu.directory.models import Board, HomeroomClass, Role, School, SchoolYear, StaffAssignment
from komu.oneroster import bundle as bundle_mod
from komu.oneroster.bundle import Bundle, BundleError, Row
from komu.oneroster.models import RosterObject
from komu.oneroster.services import console_actor
from komu.students import services as students
from komu.students.models import ClassMembership, Student

Kind = RosterObject.Kind
_FILE_KINDS: dict[str, tuple[str, ...]] = {
    "orgs": (Kind.DISTRICT, Kind.SCHOOL), "academicSessions": (Kind.SCHOOL_YEAR, Kind.TERM),
    "courses": (Kind.COURSE,), "classes": (Kind.CLASS,), "users": (Kind.STUDENT, Kind.STAFF),
    "roles": (Kind.STUDENT_ROLE, Kind.STAFF_ROLE),
    "enrollments": (Kind.STUDENT_ENROLLMENT, Kind.TEACHER_ENROLLMENT),
}
IMPORT_ROLES = {"principal": Role.PRINCIPAL, "siteAdministrator": Role.SCHOOL_ADMIN, "teacher": Role.TEACHER}


@dataclass
class ImportReport:
    errors: list[BundleError] = field(default_factory=list)
    created: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def created_list(self) -> list[tuple[str, int]]:
        """For templates (a Counter's `.items` would be read as the key "items"); the keys stay Japanese (they
        are also the audit detail), the labels are translated."""
        return [(_(label), count) for label, count in self.created.items()]


class _Abort(Exception):
    """Stops the apply and rolls the transaction back; the report holds the reason."""


def known_sourced_ids(wanted: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Which of the wanted sourcedIds (per file) this database already knows — looked up in batches, never by
    loading every sourcedId."""
    found: dict[str, set[str]] = defaultdict(set)
    for file, sids in wanted.items():
        target = "users" if file == "demographics" else file
        kinds = _FILE_KINDS.get(target, ())
        values = sorted(sids)
        for start in range(0, len(values), 2000):
            found[file].update(RosterObject.objects.filter(kind__in=kinds, sourced_id__in=values[start:start + 2000])
                               .values_list("sourced_id", flat=True))
    return found


def _message(exc: KomuError) -> str:
    if isinstance(exc, ValidationFailed) and exc.errors:
        return " ".join(m for messages in exc.errors.values() for m in messages)
    if isinstance(exc, NotFoundOrNoAccess):
        return _("担当範囲の外か、見つかりません。取り込む権限のある教育委員会・学校か確認してください。")
    return str(exc)


class _Applier:
    def __init__(self, actor: Actor | None, parsed: Bundle, report: ImportReport) -> None:
        self.console = actor is None
        self.actor = actor or console_actor()
        self.b = parsed
        self.report = report
        self.ids: dict[str, RosterObject] = {}
        for obj in RosterObject.objects.filter(sourced_id__in=self._all_sids()):
            self.ids[obj.sourced_id] = obj
        self.boards: dict[str, Board] = {}
        self.schools: dict[str, School] = {}
        self.years: dict[tuple[str, int], SchoolYear] = {}  # (school sid, year) → SchoolYear
        self.classes: dict[str, HomeroomClass] = {}
        self.students: dict[str, Student] = {}
        self.staff: dict[str, Any] = {}

    def _all_sids(self) -> list[str]:
        return [row["sourcedId"] for rows in self.b.rows.values() for row in rows]

    def fail(self, file: str, row: Row | None, column: str, message: str) -> None:
        self.report.errors.append(BundleError(f"{file}.csv", row.line if row else 0, column, message))
        raise _Abort

    def call(self, file: str, row: Row, fn: Any, **kwargs: Any) -> Any:
        try:
            with transaction.atomic():
                return fn(actor=self.actor, **kwargs)
        except KomuError as exc:
            self.fail(file, row, "", _message(exc))

    def local(self, kind: str, sid: str) -> str | None:
        obj = self.ids.get(sid)
        if obj is not None and obj.kind != kind:
            return None
        return obj.local_key if obj else None

    def remember(self, kind: str, key: Any, sid: str, *, file: str, row: Row, school_id: int | None = None,
                 board_id: int | None = None) -> None:
        existing = RosterObject.objects.filter(kind=kind, local_key=str(key)).first()
        if existing is not None and existing.sourced_id != sid:
            self.fail(file, row, "sourcedId", _("この対象はすでに別の sourcedId「%(sid)s」で登録されています。同じ sourcedId を使ってください。")
                      % {"sid": existing.sourced_id})
        if existing is not None:
            return
        previous = self.ids.get(sid)
        if previous is not None and previous.kind == kind:
            # The sourcedId named an object that no longer exists here (so a new one was created): re-point it.
            previous.local_key, previous.gone_at = str(key), None
            previous.school_id, previous.board_id = school_id, board_id
            previous.save(update_fields=["local_key", "gone_at", "school", "board"])
            return
        if previous is not None:
            self.fail(file, row, "sourcedId", _("sourcedId「%(sid)s」は別の種類の対象（%(kind)s）に使われています。")
                      % {"sid": sid, "kind": previous.get_kind_display()})
        self.ids[sid] = RosterObject.objects.create(kind=kind, local_key=str(key), sourced_id=sid,
                                                    school_id=school_id, board_id=board_id)

    def grant_board(self, board: Board) -> None:
        if self.console:
            grants = (*self.actor.grants, Grant(role=Role.BOARD_OFFICER, board_id=board.pk, org_label="komu oneroster"))
            self.actor = dataclasses.replace(self.actor, grants=grants)

    # --- the files, in dependency order ---

    def apply(self) -> None:
        for file, rows in self.b.rows.items():
            for row in rows:
                if row["status"] == "tobedeleted":
                    self.fail(file, row, "status", _("tobedeleted（削除）の取り込みには対応していません。退学・転学・卒業は"
                                "学籍の異動の画面で日付と事由とともに記録してください。"))
        self.orgs()
        self.sessions()
        self.classes_()
        self.users()
        self.staff_roles()
        self.enrollments()

    def orgs(self) -> None:
        rows = self.b.rows.get("orgs", [])
        for row in (r for r in rows if r["type"] == "district"):
            sid, code = row["sourcedId"], row["identifier"]
            key = self.local(Kind.DISTRICT, sid)
            board = Board.objects.filter(pk=key).first() if key else Board.objects.filter(code=code).first()
            if board is None:
                board = self.call("orgs", row, directory.board_create, data=directory.BoardInput(code=code, name=row["name"]))
                self.report.created[gettext_noop("教育委員会")] += 1
            elif board.code != code:
                self.fail("orgs", row, "identifier", _("この sourcedId の教育委員会コードは「%(code)s」です。") % {"code": board.code})
            self.remember(Kind.DISTRICT, board.pk, sid, file="orgs", row=row, board_id=board.pk)
            self.boards[sid] = board
            self.grant_board(board)
        for row in (r for r in rows if r["type"] == "school"):
            sid, code = row["sourcedId"], row["identifier"].strip().upper()
            parent = self.boards.get(row["parentSourcedId"])
            if parent is None:
                key = self.local(Kind.DISTRICT, row["parentSourcedId"])
                parent = Board.objects.filter(pk=key).first() if key else None
            if parent is None:
                self.fail("orgs", row, "parentSourcedId", _("設置者の教育委員会が見つかりません。"))
                return
            key = self.local(Kind.SCHOOL, sid)
            school = School.objects.filter(pk=key).first() if key else School.objects.filter(code=code).first()
            if school is None:
                school = self.call("orgs", row, directory.school_create,
                                   data=directory.SchoolInput(code=code, name=row["name"], board_id=parent.pk))
                self.report.created[gettext_noop("学校")] += 1
            elif school.board_id != parent.pk:
                self.fail("orgs", row, "parentSourcedId", _("学校「%(name)s」の設置者が違います。") % {"name": school.name})
            self.remember(Kind.SCHOOL, school.pk, sid, file="orgs", row=row, school_id=school.pk)
            self.schools[sid] = school

    def school_of(self, sid: str, file: str, row: Row, column: str) -> School:
        school = self.schools.get(sid)
        if school is None:
            key = self.local(Kind.SCHOOL, sid)
            school = School.objects.filter(pk=key).first() if key else None
            if school is None:
                self.fail(file, row, column, _("学校が見つかりません。orgs.csv に含めてください。"))
            assert school is not None
            self.schools[sid] = school
        return school

    def sessions(self) -> None:
        sessions = self.b.by_id("academicSessions")
        # A year belongs to the schools whose courses name it (OneRoster sessions carry no org).
        year_schools: dict[str, list[tuple[str, Row]]] = defaultdict(list)
        for course in self.b.rows.get("courses", []):
            if course["schoolYearSourcedId"]:
                year_schools[course["schoolYearSourcedId"]].append((course["orgSourcedId"], course))
        for sid, session in sessions.items():
            if session["type"] != "schoolYear":
                continue
            year = int(session["schoolYear"])
            start = datetime.date.fromisoformat(session["startDate"])
            end = datetime.date.fromisoformat(session["endDate"])
            seen: set[str] = set()
            for school_sid, course in year_schools.get(sid, []):
                if school_sid in seen:
                    continue
                seen.add(school_sid)
                school = self.school_of(school_sid, "courses", course, "orgSourcedId")
                sy = SchoolYear.objects.filter(school=school, year=year).first()
                if sy is None:
                    sy = self.call("academicSessions", session, directory.school_year_create, school_id=school.pk,
                                   year=year, start_date=start, end_date=end)
                    self.report.created[gettext_noop("年度")] += 1
                self.years[(school_sid, year)] = sy
                if len(seen) == 1:
                    self.remember(Kind.SCHOOL_YEAR, sy.pk, sid, file="academicSessions", row=session,
                                  school_id=school.pk)
                self.terms(sid, sy)

    def terms(self, year_sid: str, sy: SchoolYear) -> None:
        rows = sorted((r for r in self.b.rows.get("academicSessions", [])
                       if r["parentSourcedId"] == year_sid and r["type"] != "schoolYear"),
                      key=lambda r: r["startDate"])
        if not rows:
            return
        existing = list(sy.terms.order_by("number"))
        if not existing:
            if len(rows) not in (2, 3):
                self.fail("academicSessions", rows[0], "parentSourcedId", _("学期は1つの年度に2つか3つにしてください。"))
            inputs = [directory.TermInput(start_date=datetime.date.fromisoformat(r["startDate"]),
                                          end_date=datetime.date.fromisoformat(r["endDate"]), name=r["title"])
                      for r in rows]
            existing = list(self.call("academicSessions", rows[0], directory.terms_set, school_year_id=sy.pk,
                                      terms=inputs))
            self.report.created[gettext_noop("学期")] += len(existing)
        if len(existing) != len(rows):
            self.fail("academicSessions", rows[0], "parentSourcedId", _("%(year)sの学期の数が登録済みのもの（%(n)d）と違います。") % {"year": sy, "n": len(existing)})
        if self.local(Kind.SCHOOL_YEAR, year_sid) == str(sy.pk):
            for term, row in zip(existing, rows, strict=True):
                self.remember(Kind.TERM, term.pk, row["sourcedId"], file="academicSessions", row=row,
                              school_id=sy.school_id)

    def classes_(self) -> None:
        courses = self.b.by_id("courses")
        sessions = self.b.by_id("academicSessions")
        for row in self.b.rows.get("classes", []):
            sid = row["sourcedId"]
            if row["classType"] != "homeroom":
                self.report.notes.append(_("classes.csv %(line)d行目: 授業クラス（scheduled）は取り込みません。") % {"line": row.line})
                continue
            school_sid = row["schoolSourcedId"]
            school = self.school_of(school_sid, "classes", row, "schoolSourcedId")
            grade = row["grades"].strip()
            course = courses.get(row["courseSourcedId"])
            year_sid = course["schoolYearSourcedId"] if course is not None else ""
            session = sessions.get(year_sid)
            if session is None:
                self.fail("classes", row, "courseSourcedId", _("学級の年度が分かりません。courses.csv の schoolYearSourcedId を確認してください。"))
            assert session is not None
            sy = self.years.get((school_sid, int(session["schoolYear"])))
            if sy is None:
                self.fail("classes", row, "schoolSourcedId", _("この学校の年度がありません。courses.csv の orgSourcedId を確認してください。"))
            assert sy is not None
            key = self.local(Kind.CLASS, sid)
            klass = HomeroomClass.objects.filter(pk=key).first() if key else \
                HomeroomClass.objects.filter(school_year=sy, grade_code=grade, name=row["title"]).first()
            if klass is None:
                special = row["metadata.jp.specialNeeds"] == "true"
                category = row["metadata.komu.specialNeedsCategory"]
                if special and not category:
                    self.fail("classes", row, "metadata.komu.specialNeedsCategory",
                              _("特別支援学級の障害種別がありません。Komu で学級を作ってから取り込むか、障害種別を入れてください。"))
                data = directory.ClassInput(
                    grade_code=grade, name=row["title"],
                    kind=HomeroomClass.Kind.SPECIAL_NEEDS if special else HomeroomClass.Kind.REGULAR,
                    special_needs_category=category if special else "")
                klass = self.call("classes", row, directory.homeroom_class_create, school_year_id=sy.pk, data=data)
                self.report.created[gettext_noop("学級")] += 1
            assert klass is not None
            self.remember(Kind.CLASS, klass.pk, sid, file="classes", row=row, school_id=school.pk)
            if course is not None:
                self.remember(Kind.COURSE, f"{sy.pk}:{grade}", course["sourcedId"], file="courses", row=course,
                              school_id=school.pk)
            self.classes[sid] = klass

    def users(self) -> None:
        roles_by_user: dict[str, list[Row]] = defaultdict(list)
        for role in self.b.rows.get("roles", []):
            roles_by_user[role["userSourcedId"]].append(role)
        demographics = self.b.by_id("demographics")
        skipped = 0
        for row in self.b.rows.get("users", []):
            sid = row["sourcedId"]
            kinds = {r["role"] for r in roles_by_user.get(sid, [])}
            if "student" in kinds:
                self.student(row, roles_by_user[sid], demographics.get(sid))
            elif kinds & set(IMPORT_ROLES):
                self.staff_user(row)
            else:
                skipped += 1
        if skipped:
            self.report.notes.append(_("users.csv: 児童生徒・教職員以外（保護者など）の %(n)d 名は取り込みません。") % {"n": skipped})
        if self.b.modes.get("users") == "bulk" and self.schools:
            # A bulk file is the whole roster, but a pupil missing from it is not removed: leaving is recorded
            # through 学籍の異動 with its date and reason. Say how many there are.
            imported = {s.pk for s in self.students.values()}
            missing = (Student.objects.filter(school__in=list(self.schools.values()), is_active=True)
                       .exclude(pk__in=imported).count())
            if missing:
                self.report.notes.append(
                    _("在籍中の児童生徒 %(n)d 名がファイルにありません。変更していません（退学・転学は学籍の異動の画面で"
                      "記録してください）。") % {"n": missing})

    def student(self, row: Row, role_rows: list[Row], demo: Row | None) -> None:
        sid = row["sourcedId"]
        role = next(r for r in role_rows if r["role"] == "student")
        school = self.school_of(role["orgSourcedId"], "roles", role, "orgSourcedId")
        birth = datetime.date.fromisoformat(demo["birthDate"]) if demo is not None and demo["birthDate"] else None
        sex = demo["sex"] if demo is not None and demo["sex"] in ("male", "female") else "unspecified"
        data = students.StudentInput(
            family_name=row["familyName"], given_name=row["givenName"],
            family_name_kana=row["metadata.jp.kanaFamilyName"], given_name_kana=row["metadata.jp.kanaGivenName"],
            sex=sex, birth_date=birth)
        key = self.local(Kind.STUDENT, sid)
        student = Student.objects.filter(pk=key).first() if key else None
        if student is None:
            student = self.call("users", row, students.student_create, school=school, data=data)
            self.report.created[gettext_noop("児童生徒")] += 1
            self.remember(Kind.STUDENT, student.pk, sid, file="users", row=row, school_id=school.pk)
        else:
            fields = ["family_name", "given_name", "family_name_kana", "given_name_kana", "sex", "birth_date"]
            self.call("users", row, students.student_update, student_id=student.pk, data=data, only=fields)
        self.remember(Kind.STUDENT_ROLE, f"{student.pk}:{school.pk}", role["sourcedId"], file="roles", row=role,
                      school_id=school.pk)
        self.students[sid] = student

    def staff_user(self, row: Row) -> None:
        sid = row["sourcedId"]
        user_model = get_user_model()
        key = self.local(Kind.STAFF, sid)
        user = user_model.objects.filter(pk=key).first() if key else \
            user_model.objects.filter(username=row["username"]).first()
        if user is None:
            from komu.accounts.services import user_create

            user = self.call("users", row, user_create, username=row["username"], kind="staff",
                             display_name=f"{row['familyName']} {row['givenName']}", email=row["email"])
            kana = f"{row['metadata.jp.kanaFamilyName']} {row['metadata.jp.kanaGivenName']}"
            user.display_name_kana = kana
            user.is_active = row["enabledUser"] == "true"
            user.save(update_fields=["display_name_kana", "is_active"])
            audit_record(actor=self.actor.user, action="oneroster.import.staff_reading", obj=user,
                         fields=["display_name_kana", "is_active"], detail={"sourced_id": sid})
            self.report.created[gettext_noop("教職員")] += 1
        elif user.kind != "staff":
            self.fail("users", row, "username", _("このログインIDは教職員のものではありません。"))
        self.remember(Kind.STAFF, user.pk, sid, file="users", row=row)
        self.staff[sid] = user

    def staff_roles(self) -> None:
        homerooms: dict[tuple[str, str], list[Row]] = defaultdict(list)  # (user sid, school sid) → enrollments
        for e in self.b.rows.get("enrollments", []):
            if e["role"] == "teacher" and e["primary"] == "true" and e["classSourcedId"] in self.classes:
                homerooms[(e["userSourcedId"], e["schoolSourcedId"])].append(e)
        for row in self.b.rows.get("roles", []):
            user = self.staff.get(row["userSourcedId"])
            if user is None or row["role"] not in IMPORT_ROLES:
                continue
            school = self.school_of(row["orgSourcedId"], "roles", row, "orgSourcedId")
            role = IMPORT_ROLES[row["role"]]
            klass = None
            enrollment = None
            pending = homerooms.get((row["userSourcedId"], row["orgSourcedId"]))
            if role == Role.TEACHER and pending:
                enrollment = pending.pop(0)
                klass = self.classes[enrollment["classSourcedId"]]
                role = Role.HOMEROOM_TEACHER
            key = self.local(Kind.STAFF_ROLE, row["sourcedId"])
            assignment = StaffAssignment.objects.filter(pk=key).first() if key else \
                StaffAssignment.objects.filter(user=user, role=role, school=school,
                                               homeroom_class=klass).first()
            if assignment is None:
                data = directory.StaffInput(
                    login_id=user.username, role=role, school_id=school.pk,
                    homeroom_class_id=klass.pk if klass else None,
                    start_date=datetime.date.fromisoformat(row["beginDate"]) if row["beginDate"] else None,
                    end_date=datetime.date.fromisoformat(row["endDate"]) if row["endDate"] else None)
                assignment = self.call("roles", row, directory.staff_assignment_create, data=data)
                self.report.created[gettext_noop("教職員の配置")] += 1
            self.remember(Kind.STAFF_ROLE, assignment.pk, row["sourcedId"], file="roles", row=row,
                          school_id=school.pk)
            if enrollment is not None:
                self.remember(Kind.TEACHER_ENROLLMENT, assignment.pk, enrollment["sourcedId"], file="enrollments",
                              row=enrollment, school_id=school.pk)

    def enrollments(self) -> None:
        for row in self.b.rows.get("enrollments", []):
            if row["role"] != "student":
                continue
            student = self.students.get(row["userSourcedId"])
            klass = self.classes.get(row["classSourcedId"])
            if student is None or klass is None:
                continue
            number = int(row["metadata.jp.ShussekiNo"])
            membership = ClassMembership.objects.filter(student=student, homeroom_class=klass).first()
            if membership is None:
                other = ClassMembership.objects.filter(student=student,
                                                       homeroom_class__school_year=klass.school_year).first()
                if other is not None:
                    self.fail("enrollments", row, "classSourcedId", _("この児童生徒は同じ年度の別の学級に在籍しています。学級の変更は学級編制の画面で行ってください。"))
                membership = self.call("enrollments", row, students.membership_assign, student=student,
                                       homeroom_class=klass, shusseki_no=number)
                self.report.created[gettext_noop("学級在籍")] += 1
            elif membership.shusseki_no != number:
                self.fail("enrollments", row, "metadata.jp.ShussekiNo",
                          _("登録済みの出席番号（%(n)d）と違います。出席番号の変更は Komu の画面で行ってください。") % {"n": membership.shusseki_no})
            self.remember(Kind.STUDENT_ENROLLMENT, membership.pk, row["sourcedId"], file="enrollments", row=row,
                          school_id=student.school_id)


def roster_import(*, actor: Actor | None, files: Mapping[str, bytes], dry_run: bool) -> ImportReport:
    """Validate and apply a bundle, all or nothing. `actor` None: the server console (see console_actor)."""
    report = ImportReport(dry_run=dry_run)
    if actor is not None:
        scope.require(actor, roles.ONEROSTER_IMPORT)
    parsed = bundle_mod.validate_bundle(files, known=known_sourced_ids)
    if not parsed.ok:
        report.errors = parsed.errors
        return report
    applier = _Applier(actor, parsed, report)
    try:
        with transaction.atomic():
            applier.apply()
            audit_record(actor=applier.actor.user, action="oneroster.import.applied", object_type="oneroster.import",
                         detail={"created": dict(report.created), "modes": parsed.modes, "dry_run": dry_run},
                         scope=AuditScope())
            if dry_run:
                raise _Abort
    except _Abort:
        pass
    except PermissionDeniedError as exc:
        report.errors.append(BundleError("", 0, "", str(exc)))
    return report
