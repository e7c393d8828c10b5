"""The principal's view of the school's attendance: today by class, infectious-disease 出席停止 this week, classes
that have not entered today's register, and the alerts the law asks the principal to act on:

- 3 consecutive school days absent: a homeroom follow-up;
- 7 consecutive school days absent: the board is to be notified when there is no proper reason (学校教育法施行令
  §20), so the alert says so and shows the reasons recorded;
- approaching (25 days) or reaching 30 days absent in the year: 長期欠席, with the MEXT reason category recorded.

Also `home_tasks`, the attendance to-dos on each person's home page (counts only, no names).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor
from komu.attendance import calendar
from komu.attendance.models import (
    AbsenceReason,
    ClassClosure,
    DailyRegister,
    Disease,
    GuardianReport,
    Mark,
    MarkKind,
    SuspensionKind,
)
from komu.attendance.selectors.registers import year_totals
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess
from komu.directory.models import HomeroomClass, Role, School, SchoolYear
from komu.students.models import ClassMembership, Student
from komu.web.selectors import Task

ALERT_SHORT = 3
ALERT_BOARD = 7
LONG_ABSENCE = 30
LONG_ABSENCE_WATCH = 25
# How far back the consecutive-absence alerts look (calendar days; about six school weeks).
_RUN_WINDOW = 45

# The chart's segments: label, kinds, CSS modifier.
SEGMENTS = (
    ("欠席", (MarkKind.ABSENT,), "absent"),
    ("出席停止・忌引", (MarkKind.SUSPENSION, MarkKind.MOURNING), "excused"),
    ("遅刻・早退", (MarkKind.LATE, MarkKind.EARLY_LEAVE, MarkKind.LATE_AND_EARLY), "late"),
)


def overview_schools(actor: Actor) -> list[School]:
    """Schools whose overview the actor may open: school-wide attendance readers (principal, vice-principal,
    school office, nurse). A homeroom teacher's reach is their class, so the school overview is not theirs."""
    ids = {g.school_id for g in actor.grants_with(roles.ATTENDANCE_VIEW)
           if g.role != Role.HOMEROOM_TEACHER and g.school_id is not None}
    return list(School.objects.filter(pk__in=ids).order_by("code"))


def _school_get(actor: Actor, school_id: int | str) -> School:
    for school in overview_schools(actor):
        if str(school.pk) == str(school_id):
            return school
    raise NotFoundOrNoAccess("見つかりません。")


@dataclass
class ClassToday:
    homeroom_class: HomeroomClass
    pupils: int
    counts: dict[str, int]
    register: DailyRegister | None
    closed: bool

    def count(self, *kinds: str) -> int:
        return sum(self.counts.get(k, 0) for k in kinds)

    @property
    def absent(self) -> int:
        return self.count(MarkKind.ABSENT)

    @property
    def excused(self) -> int:
        return self.count(MarkKind.SUSPENSION, MarkKind.MOURNING)

    @property
    def late_or_early(self) -> int:
        return self.count(MarkKind.LATE, MarkKind.EARLY_LEAVE, MarkKind.LATE_AND_EARLY)

    @property
    def official(self) -> int:
        return self.count(MarkKind.OFFICIAL)

    @property
    def needs_entry(self) -> bool:
        return self.register is None and not self.closed


@dataclass(frozen=True)
class DiseaseCount:
    disease: str
    label: str
    pupils: int
    pupil_days: int
    today: int


@dataclass
class AbsenceRun:
    student_id: uuid.UUID
    name: str
    class_label: str
    days: int
    since: datetime.date
    reasons: list[str]

    @property
    def reportable(self) -> bool:
        return self.days >= ALERT_BOARD


@dataclass
class LongAbsence:
    student_id: uuid.UUID
    name: str
    class_label: str
    absent_days: int
    category: str

    @property
    def reached(self) -> bool:
        return self.absent_days >= LONG_ABSENCE


@dataclass(frozen=True)
class Bar:
    label: str
    y: int
    total: int
    segments: list[tuple[str, str, int, int, int]]  # (label, css modifier, x, width, value)
    end_x: int  # where the bar ends: its total is written just after


@dataclass
class Chart:
    width: int
    height: int
    label_width: int
    bar_height: int
    scale_max: int
    bars: list[Bar]
    ticks: list[tuple[int, int]]  # (x, value)


@dataclass
class Overview:
    school: School
    day: datetime.date
    school_year: SchoolYear | None
    is_school_day: bool
    classes: list[ClassToday] = field(default_factory=list)
    diseases: list[DiseaseCount] = field(default_factory=list)
    week_start: datetime.date | None = None
    runs: list[AbsenceRun] = field(default_factory=list)
    long_absences: list[LongAbsence] = field(default_factory=list)
    closures: list[ClassClosure] = field(default_factory=list)

    @property
    def not_entered(self) -> list[ClassToday]:
        return [c for c in self.classes if c.needs_entry] if self.is_school_day else []

    @property
    def board_runs(self) -> list[AbsenceRun]:
        return [r for r in self.runs if r.reportable]

    @property
    def short_runs(self) -> list[AbsenceRun]:
        return [r for r in self.runs if not r.reportable]

    @property
    def totals(self) -> dict[str, int]:
        return {
            "pupils": sum(c.pupils for c in self.classes),
            "absent": sum(c.absent for c in self.classes),
            "excused": sum(c.excused for c in self.classes),
            "late": sum(c.late_or_early for c in self.classes),
            "official": sum(c.official for c in self.classes),
        }

    @property
    def chart(self) -> Chart:
        return build_chart(self.classes)


def build_chart(classes: list[ClassToday], *, width: int = 680, label_width: int = 168,
                bar_height: int = 22) -> Chart:
    """A horizontal stacked bar per class (欠席 / 出席停止・忌引 / 遅刻・早退), laid out for a server-drawn SVG."""
    gap = 10
    top = 24
    values = [[sum(c.counts.get(k, 0) for k in kinds) for _label, kinds, _css in SEGMENTS] for c in classes]
    peak = max([sum(v) for v in values] + [1])
    # A round scale (1, 2, 5, 10, …) so the ticks read as whole pupils.
    step = 1
    while peak / step > 5:
        step = step * 2 if str(step)[0] in "15" else step * 5 // 2
    scale_max = ((peak + step - 1) // step) * step
    plot = width - label_width - 40
    bars = []
    for i, (klass, row) in enumerate(zip(classes, values, strict=True)):
        y = top + i * (bar_height + gap)
        x = label_width
        segments = []
        for (label, _kinds, modifier), value in zip(SEGMENTS, row, strict=True):
            w = round(plot * value / scale_max)
            if value:
                segments.append((label, modifier, x, w, value))
            x += w
        bars.append(Bar(klass.homeroom_class.display_label, y, sum(row), segments, x))
    ticks = [(label_width + round(plot * v / scale_max), v) for v in range(0, scale_max + 1, step)]
    height = top + len(classes) * (bar_height + gap) + 8
    return Chart(width, height, label_width, bar_height, scale_max, bars, ticks)


def _school_year_on(school: School, day: datetime.date) -> SchoolYear | None:
    return SchoolYear.objects.filter(school=school, start_date__lte=day, end_date__gte=day).first()


def _names(student_ids: set[uuid.UUID], school_year: SchoolYear) -> dict[uuid.UUID, tuple[str, str]]:
    """Name and class label for a few pupils (the alerts)."""
    if not student_ids:
        return {}
    students = {s.pk: s for s in Student.objects.filter(pk__in=student_ids)}
    labels = {
        m.student_id: m.homeroom_class.display_label
        for m in ClassMembership.objects.filter(student_id__in=student_ids,
                                                homeroom_class__school_year=school_year)
        .select_related("homeroom_class")
    }
    return {sid: (students[sid].full_name, labels.get(sid, "")) for sid in student_ids if sid in students}


def _runs(school_year: SchoolYear, classes: list[HomeroomClass], day: datetime.date,
          entered: set[int]) -> list[tuple[uuid.UUID, int, datetime.date, list[str]]]:
    """Runs of ≥ 3 consecutive 授業日 absent, ending on the latest day entered: today counts once the class's
    register is confirmed or the pupil is marked. 学級閉鎖 days are skipped (nobody attends or is absent)."""
    rules = calendar.rules_for(school_year.school)
    start = max(school_year.start_date, day - datetime.timedelta(days=_RUN_WINDOW))
    days = calendar.school_days(school_year, start, day, rules)
    if not days:
        return []
    class_ids = [c.pk for c in classes]
    closed: dict[int, set[datetime.date]] = {}
    for c in ClassClosure.objects.filter(homeroom_class_id__in=class_ids, start_date__lte=day, end_date__gte=start):
        span = (c.end_date - c.start_date).days + 1
        closed.setdefault(c.homeroom_class_id, set()).update(
            c.start_date + datetime.timedelta(days=i) for i in range(span)
        )
    marks: dict[uuid.UUID, dict[datetime.date, tuple[str, str]]] = {}
    klass_of: dict[uuid.UUID, int] = {}
    for sid, class_id, date, kind, reason in Mark.objects.filter(
        homeroom_class_id__in=class_ids, date__range=(start, day)
    ).values_list("student_id", "homeroom_class_id", "date", "kind", "absence_reason"):
        marks.setdefault(sid, {})[date] = (kind, reason)
        klass_of[sid] = class_id
    runs = []
    for sid, pupil_marks in marks.items():
        class_id = klass_of[sid]
        skip = closed.get(class_id, set())
        run = 0
        since = day
        reasons: list[str] = []
        for d in reversed(days):
            if d in skip:
                continue
            mark = pupil_marks.get(d)
            if d == day and mark is None and class_id not in entered:
                continue  # today not entered yet: the run so far still stands
            if mark is None or mark[0] != MarkKind.ABSENT:
                break
            run += 1
            since = d
            reasons.append(mark[1])
        if run >= ALERT_SHORT:
            labels = sorted({str(AbsenceReason(r).label) for r in reasons if r in AbsenceReason.values})
            runs.append((sid, run, since, labels))
    return runs


def _long_absences(school_year: SchoolYear, classes: list[HomeroomClass],
                   day: datetime.date) -> list[tuple[uuid.UUID, int, str]]:
    """Pupils at ≥ 25 days absent this year (欠席日数 as the 出欠の記録 counts it). A pupil's 欠席日数 can never
    exceed their number of non-公欠 marks, so only pupils with that many marks are computed exactly."""
    class_ids = set(
        Mark.objects.filter(homeroom_class__in=classes, date__range=(school_year.start_date, day))
        .exclude(kind=MarkKind.OFFICIAL)
        .values("student_id", "homeroom_class_id").annotate(n=Count("id")).filter(n__gte=LONG_ABSENCE_WATCH)
        .values_list("homeroom_class_id", flat=True)
    )
    result = []
    for klass in classes:
        if klass.pk not in class_ids:
            continue
        year = year_totals(klass, through=day, with_names=False)
        for pupil in year.pupils:
            if pupil.totals.absent_days >= LONG_ABSENCE_WATCH:
                result.append((pupil.student_id, pupil.totals.absent_days, pupil.long_absence_category))
    return result


def _class_today(classes: list[HomeroomClass], day: datetime.date) -> list[ClassToday]:
    class_ids = [c.pk for c in classes]
    pupils = dict(
        ClassMembership.objects.filter(homeroom_class_id__in=class_ids, student__is_active=True)
        .values("homeroom_class_id").annotate(n=Count("id")).values_list("homeroom_class_id", "n")
    )
    counts: dict[int, dict[str, int]] = {}
    for class_id, kind, n in (
        Mark.objects.filter(homeroom_class_id__in=class_ids, date=day)
        .values("homeroom_class_id", "kind").annotate(n=Count("id")).values_list("homeroom_class_id", "kind", "n")
    ):
        counts.setdefault(class_id, {})[kind] = n
    registers = {
        r.homeroom_class_id: r
        for r in DailyRegister.objects.filter(homeroom_class_id__in=class_ids, date=day).select_related("entered_by")
    }
    closed = set(
        ClassClosure.objects.filter(homeroom_class_id__in=class_ids, start_date__lte=day, end_date__gte=day)
        .values_list("homeroom_class_id", flat=True)
    )
    return [
        ClassToday(c, pupils.get(c.pk, 0), counts.get(c.pk, {}), registers.get(c.pk), c.pk in closed)
        for c in classes
    ]


def _diseases(classes: list[HomeroomClass], week_start: datetime.date, day: datetime.date) -> list[DiseaseCount]:
    rows = (
        Mark.objects.filter(homeroom_class__in=classes, date__range=(week_start, day), kind=MarkKind.SUSPENSION,
                            suspension_kind=SuspensionKind.INFECTIOUS)
        .values("disease")
        .annotate(pupils=Count("student_id", distinct=True), days=Count("id"), today=Count("id", filter=Q(date=day)))
        .order_by("-pupils", "disease")
    )
    return [
        DiseaseCount(r["disease"], str(Disease(r["disease"]).label) if r["disease"] in Disease.values else
                     r["disease"], r["pupils"], r["days"], r["today"])
        for r in rows
    ]


@transaction.atomic
def school_overview(*, actor: Actor, school_id: int | str, day: datetime.date | None = None) -> Overview:
    """The school's attendance on `day` (today by default). Audited: the alerts name pupils."""
    school = _school_get(actor, school_id)
    day = day or timezone.localdate()
    school_year = _school_year_on(school, day)
    if school_year is None:
        return Overview(school, day, None, False)
    classes = list(HomeroomClass.objects.filter(school_year=school_year))
    overview = Overview(school, day, school_year, calendar.is_school_day(school_year, day))
    overview.classes = _class_today(classes, day)
    overview.week_start = max(day - datetime.timedelta(days=day.weekday()), school_year.start_date)
    overview.diseases = _diseases(classes, overview.week_start, day)
    overview.closures = list(
        ClassClosure.objects.filter(homeroom_class__in=classes, start_date__lte=day, end_date__gte=day)
        .select_related("homeroom_class")
    )
    entered = {c.homeroom_class.pk for c in overview.classes if c.register is not None}
    runs = _runs(school_year, classes, day, entered)
    longs = _long_absences(school_year, classes, day)
    names = _names({r[0] for r in runs} | {r[0] for r in longs}, school_year)
    overview.runs = sorted(
        (AbsenceRun(sid, *names.get(sid, ("", "")), days, since, reasons) for sid, days, since, reasons in runs),
        key=lambda r: (-r.days, r.class_label),
    )
    overview.long_absences = sorted(
        (LongAbsence(sid, *names.get(sid, ("", "")), n, category) for sid, n, category in longs),
        key=lambda r: (-r.absent_days, r.class_label),
    )
    audit_record(
        actor=actor.user, action="attendance.overview.viewed", obj=school, fields=["attendance"],
        detail={"date": day.isoformat(), "alerts": len(overview.runs), "long_absences": len(overview.long_absences)},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return overview


# --- Home page ------------------------------------------------------------------------------------------------------

def home_tasks(*, actor: Actor) -> list[Task]:
    """Attendance to-dos for the home page: a homeroom teacher's 「今日の出欠を入力」 until the register is
    confirmed; for the principal and others who oversee the school, classes not entered and the alerts. Counts
    only: the names are behind the links."""
    today = timezone.localdate()
    tasks: list[Task] = []
    own = [g.class_id for g in actor.grants_with(roles.ATTENDANCE_RECORD)
           if g.role == Role.HOMEROOM_TEACHER and g.class_id is not None]
    if own:
        classes = list(
            HomeroomClass.objects.filter(pk__in=own, school_year__start_date__lte=today,
                                         school_year__end_date__gte=today).select_related("school_year__school")
        )
        entered = set(DailyRegister.objects.filter(homeroom_class__in=classes, date=today)
                      .values_list("homeroom_class_id", flat=True))
        closed = set(ClassClosure.objects.filter(homeroom_class__in=classes, start_date__lte=today,
                                                 end_date__gte=today).values_list("homeroom_class_id", flat=True))
        reports = dict(
            GuardianReport.objects.filter(date=today, withdrawn_at__isnull=True,
                                          student__memberships__homeroom_class__in=classes)
            .values("student__memberships__homeroom_class").annotate(n=Count("id", distinct=True))
            .values_list("student__memberships__homeroom_class", "n")
        )
        for klass in classes:
            if klass.pk in entered or klass.pk in closed or not calendar.is_school_day(klass.school_year, today):
                continue
            n = reports.get(klass.pk, 0)
            detail = _("%(klass)s・保護者からの連絡 %(n)d 件") % {"klass": klass.display_label, "n": n} if n else klass.display_label
            tasks.append(Task(
                _("今日の出欠を入力"), detail,
                reverse("attendance:register", kwargs={"class_id": klass.pk, "day": today}), urgent=True,
            ))
    for school in overview_schools(actor):
        school_year = _school_year_on(school, today)
        if school_year is None:
            continue
        url = reverse("attendance:overview", kwargs={"school_id": school.pk})
        classes = list(HomeroomClass.objects.filter(school_year=school_year))
        if calendar.is_school_day(school_year, today):
            missing = [c for c in _class_today(classes, today) if c.needs_entry]
            if missing:
                tasks.append(Task(
                    _("出欠が未確定の学級があります"),
                    _("%(school)s・%(n)d 学級") % {"school": school.name, "n": len(missing)}, url,
                ))
        entered = set(DailyRegister.objects.filter(homeroom_class__in=classes, date=today)
                      .values_list("homeroom_class_id", flat=True))
        runs = _runs(school_year, classes, today, entered)
        board = sum(1 for r in runs if r[1] >= ALERT_BOARD)
        if board:
            tasks.append(Task(
                _("7日連続で欠席している児童生徒がいます"),
                _("%(n)d 名・教育委員会への報告対象（施行令 §20）") % {"n": board}, url, urgent=True,
            ))
        if len(runs) > board:
            tasks.append(Task(_("3日以上連続で欠席している児童生徒がいます"),
                              _("%(n)d 名") % {"n": len(runs) - board}, url))
        unrecorded = [r for r in _long_absences(school_year, classes, today) if r[1] >= LONG_ABSENCE and not r[2]]
        if unrecorded and actor.has(roles.ATTENDANCE_RECORD):
            tasks.append(Task(_("長期欠席の理由の区分が未記録です"),
                              _("%(n)d 名（年間30日以上の欠席）") % {"n": len(unrecorded)}, url))
    return tasks

