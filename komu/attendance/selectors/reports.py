"""Reads of guardian absence reports (保護者からの欠席・遅刻・早退の連絡), for both sides.

Guardian side: which children and days may be reported now (the school's daily cut-off, its 授業日), the history of
reports with their read receipts, the receipt after sending. Teacher side: a class's reports for a day with the
health content decrypted (an audited read), one report with its proof of intent, the change token the list polls,
and the home page's tasks.

The cut-off and the canonical content hash are pure functions here because both the services (which enforce
and seal) and the screens (which explain) need exactly the same rule.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.attendance import calendar
from komu.attendance.models import AttendanceRules, GuardianReport, Mark
from komu.attendance.selectors.calendar import WEEKDAY_LABELS as _WEEKDAYS
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess
from komu.directory.models import HomeroomClass, Role, School, SchoolYear
from komu.students.models import ClassMembership, Student
from komu.web.selectors import Task

# Every school Komu serves keeps Japan time; the cut-off is the school's wall-clock time whatever the server's or
# the user's active time zone.
SCHOOL_TZ = ZoneInfo("Asia/Tokyo")
# A guardian reports for today or a coming school day: a week ahead covers a planned hospital visit or a family
# event without turning the form into a calendar.
DAYS_AHEAD = 7
# How far back the guardian's history reaches.
HISTORY_DAYS = 60
HISTORY_LIMIT = 100
# Version of the canonical content below. Changing the content is a format change: stored hashes would no
# longer verify, so a new format gets a new version and the old one stays readable.
CONTENT_VERSION = 1


# --- time -------------------------------------------------------------------------------------------------------


def school_now() -> datetime.datetime:
    return timezone.now().astimezone(SCHOOL_TZ)


def school_today() -> datetime.date:
    return school_now().date()


def cutoff_at(rules: AttendanceRules, day: datetime.date) -> datetime.datetime:
    """The moment reports for `day` close: the school's cut-off time on that day, Japan time."""
    return datetime.datetime.combine(day, rules.report_cutoff, tzinfo=SCHOOL_TZ)


def is_open(rules: AttendanceRules, day: datetime.date, now: datetime.datetime | None = None) -> bool:
    """Whether a report for `day` may still be sent or withdrawn. After the cut-off the teacher is already taking
    the morning register, so a late message could go unseen: the guardian must phone instead."""
    return (now or timezone.now()) < cutoff_at(rules, day)


def day_label(day: datetime.date, today: datetime.date) -> str:
    """「今日 5月12日（火）」: short and plain for a phone; the year is obvious within a week."""
    weekday = str(_WEEKDAYS[day.weekday()])
    text = _("%(month)d月%(day)d日（%(weekday)s）") % {"month": day.month, "day": day.day, "weekday": weekday}
    if day == today:
        return _("今日 %(date)s") % {"date": text}
    if day == today + datetime.timedelta(days=1):
        return _("明日 %(date)s") % {"date": text}
    return text


def receipt_number(report_id: uuid.UUID) -> str:
    """受付番号: the first 8 hex digits of the report's id in two groups, enough to name it on the phone."""
    head = report_id.hex[:8].upper()
    return f"{head[:4]}-{head[4:]}"


# --- the proof of intent ----------------------------------------------------------------------------------------


def parse_symptoms(stored: str) -> list[dict[str, str]]:
    """Symptoms are stored (encrypted) as a JSON list of {code, label}: the label is kept because it is what the
    guardian saw and confirmed, even if the school renames the choice later."""
    if not stored:
        return []
    try:
        items = json.loads(stored)
    except ValueError:
        return [{"code": "", "label": stored}]
    return [{"code": str(i.get("code", "")), "label": str(i.get("label", ""))} for i in items if isinstance(i, dict)]


def dump_symptoms(items: Iterable[dict[str, str]]) -> str:
    listed = [{"code": i["code"], "label": i["label"]} for i in items]
    return json.dumps(listed, ensure_ascii=False, separators=(",", ":")) if listed else ""


def canonical_content(report: GuardianReport) -> bytes:
    """The exact bytes the content hash covers: what was sent, by which login, when, about whom. Changing this is
    a format change (see CONTENT_VERSION)."""
    payload = {
        "v": CONTENT_VERSION,
        "report": str(report.pk),
        "student": str(report.student_id),
        "date": report.date.isoformat(),
        "kind": report.kind,
        "reason_code": report.reason_code,
        "reason_category": report.reason_category,
        "symptoms": parse_symptoms(report.symptoms),
        "note": report.note,
        "expected_time": report.expected_time.strftime("%H:%M") if report.expected_time else "",
        "login_id": report.login_id,
        "submitted_at": report.submitted_at.astimezone(datetime.UTC).isoformat(timespec="microseconds"),
    }
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def content_hash(report: GuardianReport) -> str:
    return hashlib.sha256(canonical_content(report)).hexdigest()


# --- guardian side ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildChoice:
    id: uuid.UUID
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    class_label: str


@dataclass(frozen=True)
class DayChoice:
    date: datetime.date
    label: str


@dataclass
class SchoolReportOptions:
    """What the report form offers for the children at one school: its reasons, symptoms and days."""

    school: School
    rules: AttendanceRules
    children: list[ChildChoice]
    days: list[DayChoice]
    today: datetime.date
    # Today is a school day but its cut-off has passed: the page says to phone, and why.
    today_closed: bool

    @property
    def reasons(self) -> list[dict[str, str]]:
        return list(self.rules.report_reasons)

    @property
    def symptoms(self) -> list[dict[str, str]]:
        return list(self.rules.report_symptoms)

    def reason(self, code: str) -> dict[str, str] | None:
        return next((r for r in self.rules.report_reasons if r.get("code") == code), None)


def reportable_children(actor: Actor) -> QuerySet[Student]:
    """The actor's own children who are enrolled: the only pupils a guardian may report for."""
    return scope.students_for(actor, roles.ATTENDANCE_REPORT).filter(is_active=True)


def _membership_on(student: Student, day: datetime.date) -> ClassMembership | None:
    memberships: list[ClassMembership] = getattr(student, "report_memberships", [])
    for m in memberships:
        year = m.homeroom_class.school_year
        if year.start_date <= day <= year.end_date:
            return m
    return None


def _children_with_classes(actor: Actor) -> list[Student]:
    memberships = ClassMembership.objects.select_related("homeroom_class__school_year").order_by(
        "-homeroom_class__school_year__year"
    )
    return list(
        reportable_children(actor)
        .select_related("school")
        .prefetch_related(Prefetch("memberships", queryset=memberships, to_attr="report_memberships"))
    )


def _report_days(school: School, rules: AttendanceRules, today: datetime.date,
                 now: datetime.datetime) -> tuple[list[datetime.date], bool]:
    last = today + datetime.timedelta(days=DAYS_AHEAD)
    years = SchoolYear.objects.filter(school=school, start_date__lte=last, end_date__gte=today)
    days: list[datetime.date] = []
    for year in years:
        days.extend(calendar.school_days(year, today, last, rules))
    days.sort()
    today_closed = bool(days) and days[0] == today and not is_open(rules, today, now)
    return [d for d in days if is_open(rules, d, now)], today_closed


def guardian_report_options(*, actor: Actor) -> list[SchoolReportOptions]:
    """The report form's choices, one group per school: siblings at one school are reported together; a family
    with children at two schools (小学校 and 中学校) sends one report per school, because each school has its own
    reasons, cut-off and calendar."""
    now = timezone.now()
    today = school_today()
    by_school: dict[int, SchoolReportOptions] = {}
    for child in sorted(_children_with_classes(actor), key=lambda s: (s.school.code, s.family_name_kana,
                                                                      s.given_name_kana)):
        membership = _membership_on(child, today)
        options = by_school.get(child.school_id)
        if options is None:
            rules = calendar.rules_for(child.school)
            days, today_closed = _report_days(child.school, rules, today, now)
            options = SchoolReportOptions(
                school=child.school, rules=rules, children=[], today=today, today_closed=today_closed,
                days=[DayChoice(d, day_label(d, today)) for d in days],
            )
            by_school[child.school_id] = options
        options.children.append(ChildChoice(
            id=child.pk, family_name=child.family_name, given_name=child.given_name,
            family_name_kana=child.family_name_kana, given_name_kana=child.given_name_kana,
            class_label=membership.homeroom_class.display_label if membership else "",
        ))
    return list(by_school.values())


def report_class_on(student: Student, day: datetime.date) -> HomeroomClass | None:
    """The pupil's homeroom on `day`: the class of the school year that contains it."""
    membership = (
        ClassMembership.objects.filter(
            student=student, homeroom_class__school_year__start_date__lte=day,
            homeroom_class__school_year__end_date__gte=day,
        )
        .select_related("homeroom_class__school_year__school")
        .first()
    )
    return membership.homeroom_class if membership else None


class ReportStatus:
    SENT = "sent"
    READ = "read"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class GuardianReportRow:
    """One report as its guardian sees it: what was sent and whether the school has read it."""

    id: uuid.UUID
    receipt_no: str
    child_family_name: str
    child_given_name: str
    date: datetime.date
    date_label: str
    kind: str
    kind_label: str
    reason_label: str
    symptoms: list[str]
    note: str
    expected_time: datetime.time | None
    submitted_at: datetime.datetime
    status: str
    read_at: datetime.datetime | None
    withdrawn_at: datetime.datetime | None
    can_withdraw: bool
    cutoff: datetime.time
    # Sent from this login (only the sender may withdraw); False for the other parent's report.
    sent_by_me: bool


def _reason_label(rules: AttendanceRules | None, code: str) -> str:
    for reason in (rules.report_reasons if rules else []):
        if reason.get("code") == code:
            return str(reason.get("label", code))
    return code


def _status(report: GuardianReport) -> str:
    if report.withdrawn_at:
        return ReportStatus.WITHDRAWN
    if report.read_at:
        return ReportStatus.READ
    return ReportStatus.SENT


def _guardian_rows(reports: Sequence[GuardianReport], now: datetime.datetime,
                   user_id: Any) -> list[GuardianReportRow]:
    rules_by_school: dict[int, AttendanceRules] = {
        r.school_id: r for r in AttendanceRules.objects.filter(school_id__in={p.student.school_id for p in reports})
    }
    rows = []
    today = now.astimezone(SCHOOL_TZ).date()
    for report in reports:
        rules = rules_by_school.get(report.student.school_id)
        rows.append(GuardianReportRow(
            id=report.pk,
            receipt_no=receipt_number(report.pk),
            child_family_name=report.student.family_name,
            child_given_name=report.student.given_name,
            date=report.date,
            date_label=day_label(report.date, today),
            kind=report.kind,
            kind_label=report.get_kind_display(),
            reason_label=_reason_label(rules, report.reason_code),
            symptoms=[s["label"] for s in parse_symptoms(report.symptoms)],
            note=report.note,
            expected_time=report.expected_time,
            submitted_at=report.submitted_at,
            status=_status(report),
            read_at=report.read_at,
            withdrawn_at=report.withdrawn_at,
            can_withdraw=(report.withdrawn_at is None and rules is not None and report.guardian_user_id == user_id
                          and is_open(rules, report.date, now)),
            cutoff=rules.report_cutoff if rules else datetime.time(8, 0),
            sent_by_me=report.guardian_user_id == user_id,
        ))
    return rows


def _guardian_reports(actor: Actor) -> QuerySet[GuardianReport]:
    return GuardianReport.objects.filter(student__in=reportable_children(actor)).select_related("student")


def guardian_report_history(*, actor: Actor) -> list[GuardianReportRow]:
    """The guardian's reports for their children (from either parent's login), newest first: the last
    HISTORY_DAYS days and every coming day."""
    since = school_today() - datetime.timedelta(days=HISTORY_DAYS)
    reports = list(_guardian_reports(actor).filter(date__gte=since).order_by("-submitted_at")[:HISTORY_LIMIT])
    return _guardian_rows(reports, timezone.now(), actor.user.pk)


def guardian_receipt(*, actor: Actor, report_ids: Sequence[Any]) -> list[GuardianReportRow]:
    """The reports just sent, for the receipt page. Any id that is not one of the guardian's own reports makes
    the whole receipt answer NotFoundOrNoAccess."""
    wanted: list[uuid.UUID] = []
    for raw in report_ids:
        try:
            wanted.append(raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw)))
        except ValueError:
            raise NotFoundOrNoAccess("見つかりません。") from None
    if not wanted or len(wanted) > 20:
        raise NotFoundOrNoAccess("見つかりません。")
    reports = list(_guardian_reports(actor).filter(pk__in=wanted).order_by("student__school_id", "submitted_at"))
    if len(reports) != len(set(wanted)):
        raise NotFoundOrNoAccess("見つかりません。")
    return _guardian_rows(reports, timezone.now(), actor.user.pk)


def guardian_reported_today(*, actor: Actor) -> int:
    """How many of the guardian's children have a live report for today."""
    return (
        _guardian_reports(actor).filter(date=school_today(), withdrawn_at__isnull=True)
        .values("student").distinct().count()
    )


# --- teacher side -----------------------------------------------------------------------------------------------


def report_classes_for(actor: Actor) -> QuerySet[HomeroomClass]:
    """Classes whose reports the actor may read: a homeroom teacher their own class, the principal, vice-principal,
    office and nurse every class of their school (scope.classes_for narrows homeroom teachers for pupil data)."""
    return scope.classes_for(actor, roles.ATTENDANCE_VIEW)


def report_class_choices(*, actor: Actor, day: datetime.date) -> list[HomeroomClass]:
    """The classes of the school year containing `day`, for the class picker."""
    return list(
        report_classes_for(actor)
        .filter(school_year__start_date__lte=day, school_year__end_date__gte=day)
        .select_related("school_year__school")
        .order_by("school_year__school__code", "grade_code", "sort_order", "name")
    )


def report_class_get(*, actor: Actor, class_id: Any) -> HomeroomClass:
    return scope.get_in_scope(report_classes_for(actor).select_related("school_year__school"), pk=class_id)


def _sees_health(actor: Actor, homeroom_class: HomeroomClass) -> bool:
    """Symptoms and notes are health information (情報資産 class I/II): shown only to those who may read pupils'
    sensitive data in this class — not the school office, which records attendance but not health."""
    return scope.classes_for(actor, roles.STUDENTS_VIEW_SENSITIVE).filter(pk=homeroom_class.pk).exists()


def _in_register() -> Exists:
    """Whether the register holds the mark this report wrote (it does not when staff had already marked the day,
    or after the report was withdrawn)."""
    return Exists(Mark.objects.filter(guardian_report=OuterRef("pk")))


def _class_reports(homeroom_class: HomeroomClass, day: datetime.date) -> QuerySet[GuardianReport]:
    seat = ClassMembership.objects.filter(student=OuterRef("student_id"), homeroom_class=homeroom_class)
    return (
        GuardianReport.objects.filter(date=day, student__memberships__homeroom_class=homeroom_class)
        .annotate(shusseki_no=Subquery(seat.values("shusseki_no")[:1]), in_register=_in_register())
        .select_related("student", "read_by")
        .order_by("submitted_at")
    )


def _token(entries: Iterable[tuple[Any, ...]]) -> str:
    """A short fingerprint of what the list shows (which reports, read or withdrawn): the poll sends the one it
    has and gets a new list only when it differs, so an idle screen decrypts and audits nothing."""
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: str(e[0])):
        digest.update("|".join("" if v is None else str(v) for v in entry).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def class_reports_token(*, actor: Actor, class_id: Any, day: datetime.date) -> str:
    homeroom_class = report_class_get(actor=actor, class_id=class_id)
    return _token(
        GuardianReport.objects.filter(date=day, student__memberships__homeroom_class=homeroom_class)
        .values_list("pk", "read_at", "withdrawn_at")
    )


@dataclass(frozen=True)
class TeacherReportRow:
    id: uuid.UUID
    receipt_no: str
    student_id: uuid.UUID
    shusseki_no: int | None
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    date: datetime.date
    kind: str
    kind_label: str
    reason_label: str
    reason_category_label: str
    symptoms: list[str] | None  # None: not shown to this viewer
    note: str | None
    expected_time: datetime.time | None
    submitted_at: datetime.datetime
    status: str
    read_at: datetime.datetime | None
    read_by: str
    withdrawn_at: datetime.datetime | None
    in_register: bool


@dataclass
class ClassReports:
    homeroom_class: HomeroomClass
    date: datetime.date
    rows: list[TeacherReportRow]
    token: str
    shows_health: bool
    can_acknowledge: bool
    unread: int = field(init=False)
    live: int = field(init=False)

    def __post_init__(self) -> None:
        self.unread = sum(1 for r in self.rows if r.status == ReportStatus.SENT)
        self.live = sum(1 for r in self.rows if r.status != ReportStatus.WITHDRAWN)


def _teacher_row(report: GuardianReport, rules: AttendanceRules, health: bool,
                 shusseki_no: int | None) -> TeacherReportRow:
    student = report.student
    return TeacherReportRow(
        id=report.pk,
        receipt_no=receipt_number(report.pk),
        student_id=student.pk,
        shusseki_no=shusseki_no,
        family_name=student.family_name,
        given_name=student.given_name,
        family_name_kana=student.family_name_kana,
        given_name_kana=student.given_name_kana,
        date=report.date,
        kind=report.kind,
        kind_label=report.get_kind_display(),
        reason_label=_reason_label(rules, report.reason_code),
        reason_category_label=report.get_reason_category_display(),
        symptoms=[s["label"] for s in parse_symptoms(report.symptoms)] if health else None,
        note=report.note if health else None,
        expected_time=report.expected_time,
        submitted_at=report.submitted_at,
        status=_status(report),
        read_at=report.read_at,
        read_by=(report.read_by.display_name or report.read_by.get_username()) if report.read_by else "",
        withdrawn_at=report.withdrawn_at,
        in_register=bool(getattr(report, "in_register", False)),
    )


def _audit_scope(homeroom_class: HomeroomClass) -> Scope:
    school = homeroom_class.school_year.school
    return Scope(school_id=school.pk, board_id=school.board_id)


@transaction.atomic
def class_report_list(*, actor: Actor, class_id: Any, day: datetime.date) -> ClassReports:
    """A class's reports for one day, oldest first. Decrypting symptoms and notes is a read of health data: one
    audit event per rendering names every report shown."""
    homeroom_class = report_class_get(actor=actor, class_id=class_id)
    reports = list(_class_reports(homeroom_class, day))
    health = _sees_health(actor, homeroom_class)
    rules = calendar.rules_for(homeroom_class.school_year.school)
    if reports and health:
        audit_record(
            actor=actor.user, action="attendance.guardian_report.viewed",
            object_type=GuardianReport._meta.label_lower,
            fields=["symptoms", "note"],
            detail={"class_id": homeroom_class.pk, "date": day.isoformat(),
                    "report_ids": [str(r.pk) for r in reports]},
            scope=_audit_scope(homeroom_class),
        )
    can_ack = scope.classes_for(actor, roles.ATTENDANCE_RECORD).filter(pk=homeroom_class.pk).exists()
    return ClassReports(
        homeroom_class=homeroom_class, date=day,
        rows=[_teacher_row(r, rules, health, r.shusseki_no) for r in reports],  # type: ignore[attr-defined]
        token=_token((r.pk, r.read_at, r.withdrawn_at) for r in reports),
        shows_health=health, can_acknowledge=can_ack,
    )


def staff_reports(actor: Actor, capability: str = roles.ATTENDANCE_VIEW) -> QuerySet[GuardianReport]:
    """Reports about pupils the actor reaches with `capability` (a homeroom teacher: their class)."""
    return GuardianReport.objects.filter(student__in=scope.students_for(actor, capability))


@dataclass(frozen=True)
class ReportDetail:
    """One report with its proof of intent (MEXT 2文科初第1026号): login id, time, address and content hash, and
    whether the stored content still matches the hash taken when it was sent."""

    row: TeacherReportRow
    homeroom_class: HomeroomClass | None
    login_id: str
    client_ip: str | None
    content_hash: str
    hash_matches: bool
    guardian_relationship: str
    can_acknowledge: bool


@transaction.atomic
def report_get_for(*, actor: Actor, report_id: Any) -> ReportDetail:
    """One report for a member of staff; NotFoundOrNoAccess out of scope. Audited as a read of health data when
    the viewer may see it."""
    report = scope.get_in_scope(
        staff_reports(actor).annotate(in_register=_in_register()).select_related("student__school", "read_by"),
        pk=report_id,
    )
    homeroom_class = report_class_on(report.student, report.date)
    health = homeroom_class is not None and _sees_health(actor, homeroom_class)
    school = report.student.school
    if health:
        audit_record(
            actor=actor.user, action="attendance.guardian_report.viewed", obj=report, fields=["symptoms", "note"],
            scope=Scope(school_id=school.pk, board_id=school.board_id),
        )
    seat = (
        ClassMembership.objects.filter(student=report.student, homeroom_class=homeroom_class)
        .values_list("shusseki_no", flat=True).first() if homeroom_class is not None else None
    )
    relationship = (
        report.student.guardian_links.filter(guardian__user_id=report.guardian_user_id)
        .values_list("relationship", flat=True).first() or ""
    )
    can_ack = staff_reports(actor, roles.ATTENDANCE_RECORD).filter(pk=report.pk).exists()
    return ReportDetail(
        row=_teacher_row(report, calendar.rules_for(school), health, seat),
        homeroom_class=homeroom_class,
        login_id=report.login_id,
        client_ip=report.client_ip,
        content_hash=report.content_hash,
        hash_matches=content_hash(report) == report.content_hash,
        guardian_relationship=relationship,
        can_acknowledge=can_ack,
    )


# --- home page --------------------------------------------------------------------------------------------------


def _homeroom_class_ids(actor: Actor) -> list[int]:
    return [g.class_id for g in actor.grants_with(roles.ATTENDANCE_RECORD)
            if g.role == Role.HOMEROOM_TEACHER and g.class_id is not None]


def home_tasks(*, actor: Actor) -> list[Task]:
    """The home page's report tasks. A homeroom teacher: today's unread reports per class (urgent: a child may be
    missing). A guardian: that today's report was received. Nobody else: nothing (principals see the overview)."""
    today = school_today()
    tasks: list[Task] = []
    class_ids = _homeroom_class_ids(actor)
    if class_ids:
        classes = HomeroomClass.objects.filter(pk__in=class_ids).select_related("school_year")
        unread = dict(
            GuardianReport.objects.filter(
                date=today, read_at__isnull=True, withdrawn_at__isnull=True,
                student__memberships__homeroom_class_id__in=class_ids,
            )
            .values_list("student__memberships__homeroom_class_id")
            .annotate(n=Count("pk", distinct=True))
            .values_list("student__memberships__homeroom_class_id", "n")
        )
        for klass in classes:
            n = unread.get(klass.pk, 0)
            if n:
                tasks.append(Task(
                    _("保護者からの連絡が %(n)d 件あります（未確認）") % {"n": n},
                    _("%(klass)s ・ 本日分") % {"klass": klass.display_label},
                    f"{reverse('attendance:reports')}?class={klass.pk}",
                    urgent=True,
                ))
    if actor.has(roles.ATTENDANCE_REPORT):
        n = guardian_reported_today(actor=actor)
        if n:
            tasks.append(Task(
                _("本日の連絡は受付済み"),
                _("%(n)d 名分の連絡を学校が受け付けました。確認の状況は履歴で見られます。") % {"n": n},
                reverse("attendance:guardian_history"),
            ))
    return tasks
