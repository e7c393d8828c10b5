"""Reading a class's register: the morning-entry sheet for one day, one pupil's row, and the year's totals per
pupil (指導要録 出欠の記録). Scoped by the actor; reading a class's register is audited (who read which class, which
day), since it shows names beside absences and their reasons."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.attendance import arithmetic, calendar
from komu.attendance.models import (
    ABSENCE_SYMBOL,
    PAPER_SYMBOL,
    AbsenceReason,
    AttendanceRules,
    ClassClosure,
    DailyRegister,
    Disease,
    GuardianReport,
    LongAbsenceCategory,
    LongAbsenceRecord,
    Mark,
    MarkChange,
    MarkKind,
    MarkSource,
    MonthlyRegister,
    PeriodMark,
    SuspensionKind,
)
from komu.attendance.registers import rules_of
from komu.attendance.services.marks import AMENDABLE_STATUSES, latest_reports
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess
from komu.directory.models import HomeroomClass, SchoolYear
from komu.students.models import ClassMembership

# How far the day navigation looks for the previous and next 授業日.
_NAV_WINDOW = 21


def attendance_classes(actor: Actor, capability: str = roles.ATTENDANCE_VIEW) -> QuerySet[HomeroomClass]:
    """Classes whose register the actor may read (attendance.view) or write (attendance.record): a homeroom
    teacher their own class, school staff with the capability every class of their school."""
    return scope.classes_for(actor, capability)


def entry_classes_for(*, actor: Actor, day: datetime.date) -> list[HomeroomClass]:
    """Classes the actor may enter attendance for on `day` (the class picker), in school and grade order."""
    return list(
        attendance_classes(actor, roles.ATTENDANCE_RECORD)
        .filter(school_year__start_date__lte=day, school_year__end_date__gte=day)
        .select_related("school_year__school")
        .order_by("school_year__school__code", "grade_code", "sort_order", "name")
    )


def _report_reason(report: GuardianReport, rules: AttendanceRules) -> str:
    """The reason as the school's list names it (発熱, 通院 …), else its category (病気 / 事故 / その他)."""
    reasons = {r.get("code"): r.get("label", "") for r in rules.report_reasons if isinstance(r, dict)}
    reason = str(reasons.get(report.reason_code, ""))
    if not reason and report.reason_category in AbsenceReason.values:
        reason = str(AbsenceReason(report.reason_category).label)
    return reason


def _label_for_report(report: GuardianReport, rules: AttendanceRules) -> str:
    reason = _report_reason(report, rules)
    kind = report.get_kind_display()
    return f"{kind}・{reason}" if reason else kind


# The buttons of a row, in order, with their keyboard shortcut (the legend and aria-keyshortcuts show them; entry.js
# implements them). Two kanji each, so seven fit beside a name on half a tablet's width.
ROW_BUTTONS = (
    (MarkKind.PRESENT, "出席", "S"),
    (MarkKind.ABSENT, "欠席", "K"),
    (MarkKind.LATE, "遅刻", "C"),
    (MarkKind.EARLY_LEAVE, "早退", "H"),
    (MarkKind.SUSPENSION, "出停", "T"),
    (MarkKind.MOURNING, "忌引", "G"),
    (MarkKind.OFFICIAL, "公欠", "O"),
)


def toggle_target(current: str, pressed: str) -> str:
    """The kind a button sets, given the row's kind: 遅刻 and 早退 combine (遅刻 then 早退 is 遅刻・早退) and
    pressing a lit 遅刻, 早退 or 公欠 again turns it off. entry.js applies the same rule (toggleTarget)."""
    late, early, both = MarkKind.LATE, MarkKind.EARLY_LEAVE, MarkKind.LATE_AND_EARLY
    if pressed in (late, early):
        other = early if pressed == late else late
        if current == both:
            return other
        if current == pressed:
            return MarkKind.PRESENT
        if current == other:
            return both
        return pressed
    if pressed == MarkKind.OFFICIAL and current == MarkKind.OFFICIAL:
        return MarkKind.PRESENT
    return pressed


@dataclass(frozen=True)
class RowButton:
    kind: str
    label: str
    key: str
    pressed: bool
    target: str


@dataclass
class EntryRow:
    """One pupil's line on the morning-entry screen."""

    student_id: uuid.UUID
    shusseki_no: int
    family_name: str
    given_name: str
    kana: str
    version: int
    kind: str = MarkKind.PRESENT
    absence_reason: str = ""
    suspension_kind: str = ""
    disease: str = ""
    kinship_degree: int | None = None
    detail: str = ""
    source: str = ""
    report: GuardianReport | None = None
    report_label: str = ""
    report_reason: str = ""
    # Shown from the guardian's report, not stored yet: it becomes a mark when the register is confirmed.
    suggested: bool = False
    periods: dict[int, tuple[str, int]] = field(default_factory=dict)
    periods_per_day: int = 0
    # Filled by the view after a save: a message on the row (error or conflict), and the panel left open.
    error: str = ""
    conflict: str = ""
    open_panel: str = ""

    @property
    def name(self) -> str:
        return f"{self.family_name} {self.given_name}"

    @property
    def kind_label(self) -> str:
        return str(MarkKind(self.kind).label)

    @property
    def symbol(self) -> str:
        if self.kind == MarkKind.ABSENT:
            return ABSENCE_SYMBOL.get(AbsenceReason(self.absence_reason), "欠") if self.absence_reason else "欠"
        return PAPER_SYMBOL.get(MarkKind(self.kind), "")

    @property
    def detail_label(self) -> str:
        """The reason in words: 病気 / 感染症（インフルエンザ） / 1親等."""
        if self.kind == MarkKind.ABSENT and self.absence_reason:
            return str(AbsenceReason(self.absence_reason).label)
        if self.kind == MarkKind.SUSPENSION and self.suspension_kind:
            if self.suspension_kind == SuspensionKind.INFECTIOUS and self.disease:
                return str(Disease(self.disease).label)
            return str(SuspensionKind(self.suspension_kind).label).split("（")[0]
        if self.kind == MarkKind.MOURNING and self.kinship_degree:
            return f"{self.kinship_degree}親等"
        return ""

    @property
    def tag(self) -> str:
        """A word beside the name: the mark's reason, or what the guardian reported."""
        if self.report is not None and (self.suggested or self.source == MarkSource.GUARDIAN):
            return self.report_reason
        if self.detail_label:
            return self.detail_label
        if self.report is not None:
            return self.report_reason
        return ""

    @property
    def from_guardian(self) -> bool:
        return self.suggested or self.source == MarkSource.GUARDIAN

    @property
    def pressed_kinds(self) -> set[str]:
        if self.kind == MarkKind.LATE_AND_EARLY:
            return {MarkKind.LATE, MarkKind.EARLY_LEAVE}
        return {self.kind}

    @property
    def buttons(self) -> list[RowButton]:
        pressed = self.pressed_kinds
        return [RowButton(kind, label, key, kind in pressed, toggle_target(self.kind, kind))
                for kind, label, key in ROW_BUTTONS]

    @property
    def period_cells(self) -> list[tuple[int, str, int]]:
        """(period, kind, version) for 1..n, filled by the sheet (n is the school's periods per day)."""
        return [(p, self.periods.get(p, (MarkKind.PRESENT, 0))[0], self.periods.get(p, (MarkKind.PRESENT, 0))[1])
                for p in range(1, self.periods_per_day + 1)]

    @property
    def period_kinds(self) -> dict[int, str]:
        return {p: k for p, (k, _) in self.periods.items()}


@dataclass
class EntrySheet:
    homeroom_class: HomeroomClass
    day: datetime.date
    school_year: SchoolYear
    rules: AttendanceRules
    is_school_day: bool
    closure: ClassClosure | None
    status: str
    register: DailyRegister | None
    rows: list[EntryRow]
    previous_day: datetime.date | None
    next_day: datetime.date | None

    @property
    def locked(self) -> bool:
        return self.status == MonthlyRegister.Status.LOCKED

    @property
    def needs_amendment_reason(self) -> bool:
        return self.status in AMENDABLE_STATUSES

    @property
    def editable(self) -> bool:
        return self.is_school_day and self.closure is None and not self.locked

    @property
    def status_label(self) -> str:
        return str(MonthlyRegister.Status(self.status).label)

    @property
    def period_numbers(self) -> list[int]:
        return list(range(1, self.rules.periods_per_day + 1)) if self.rules.per_period else []

    @property
    def all_counts(self) -> list[tuple[str, str, int]]:
        """(kind, label, pupils) for every kind, zeros included (the screen hides them and keeps them current)."""
        tally: dict[str, int] = {}
        for row in self.rows:
            tally[row.kind] = tally.get(row.kind, 0) + 1
        return [(k, str(MarkKind(k).label), tally.get(k, 0)) for k in MarkKind.values]

    @property
    def column_rows(self) -> int:
        """Rows per column when the list is laid out in two columns (1–20 left, 21–40 right)."""
        return (len(self.rows) + 1) // 2

    @property
    def suggested_count(self) -> int:
        return sum(1 for r in self.rows if r.suggested)


def _rows(klass: HomeroomClass, day: datetime.date, rules: AttendanceRules, *, open_month: bool,
          student_ids: list[uuid.UUID] | None = None) -> list[EntryRow]:
    memberships = ClassMembership.objects.filter(homeroom_class=klass, student__is_active=True).select_related(
        "student").order_by("shusseki_no")
    if student_ids is not None:
        memberships = memberships.filter(student_id__in=student_ids)
    members = list(memberships)
    ids = [m.student_id for m in members]
    marks = {m.student_id: m for m in Mark.objects.filter(student_id__in=ids, date=day)}
    versions = dict(
        MarkChange.objects.filter(student_id__in=ids, date=day).order_by().values("student_id")
        .annotate(v=Max("version"))
        .values_list("student_id", "v")
    )
    reports = latest_reports(klass, day, ids)
    period_rows: dict[uuid.UUID, dict[int, tuple[str, int]]] = {}
    if rules.per_period:
        for p in PeriodMark.objects.filter(student_id__in=ids, date=day):
            period_rows.setdefault(p.student_id, {})[p.period] = (p.kind, p.version)
    rows = []
    for membership in members:
        student = membership.student
        mark = marks.get(student.pk)
        report = reports.get(student.pk)
        row = EntryRow(
            student_id=student.pk, shusseki_no=membership.shusseki_no, family_name=student.family_name,
            given_name=student.given_name, kana=student.full_kana,
            version=mark.version if mark else versions.get(student.pk, 0),
            report=report, report_label=_label_for_report(report, rules) if report else "",
            report_reason=_report_reason(report, rules) if report else "",
            periods=period_rows.get(student.pk, {}),
            periods_per_day=rules.periods_per_day if rules.per_period else 0,
        )
        if mark is not None:
            row.kind, row.absence_reason = mark.kind, mark.absence_reason
            row.suspension_kind, row.disease = mark.suspension_kind, mark.disease
            row.kinship_degree, row.detail, row.source = mark.kinship_degree, mark.detail, mark.source
        elif report is not None and student.pk not in versions and open_month:
            row.suggested = True
            if report.kind == GuardianReport.Kind.ABSENT:
                row.kind = MarkKind.ABSENT
                row.absence_reason = (report.reason_category if report.reason_category in AbsenceReason.values
                                      else AbsenceReason.OTHER)
            else:
                row.kind = MarkKind.LATE if report.kind == GuardianReport.Kind.LATE else MarkKind.EARLY_LEAVE
        rows.append(row)
    return rows


def _neighbours(school_year: SchoolYear, day: datetime.date,
                rules: AttendanceRules) -> tuple[datetime.date | None, datetime.date | None]:
    days = calendar.school_days(school_year, day - datetime.timedelta(days=_NAV_WINDOW),
                                day + datetime.timedelta(days=_NAV_WINDOW), rules)
    before = [d for d in days if d < day]
    after = [d for d in days if d > day]
    return (before[-1] if before else None), (after[0] if after else None)


def register_class_get(*, actor: Actor, class_id: int | str,
                       capability: str = roles.ATTENDANCE_RECORD) -> HomeroomClass:
    return scope.get_in_scope(
        attendance_classes(actor, capability).select_related("school_year__school"), pk=class_id
    )


@transaction.atomic
def entry_sheet(*, actor: Actor, class_id: int | str, day: datetime.date) -> EntrySheet:
    """The class's register for `day` as the morning-entry screen shows it. Queries are constant in the number
    of pupils. Audited as a read of the class's attendance."""
    klass = register_class_get(actor=actor, class_id=class_id)
    school_year = klass.school_year
    if not (school_year.start_date <= day <= school_year.end_date):
        raise NotFoundOrNoAccess("見つかりません。")
    rules = calendar.rules_for(school_year.school)
    is_school_day = calendar.is_school_day(school_year, day)
    closure = ClassClosure.objects.filter(homeroom_class=klass, start_date__lte=day, end_date__gte=day).first()
    status = (MonthlyRegister.objects.filter(homeroom_class=klass, year=day.year, month=day.month)
              .order_by("pk").values_list("status", flat=True).first()) or MonthlyRegister.Status.OPEN
    register = DailyRegister.objects.filter(homeroom_class=klass, date=day).select_related("entered_by").first()
    rows = _rows(klass, day, rules, open_month=status == MonthlyRegister.Status.OPEN)
    previous_day, next_day = _neighbours(school_year, day, rules)
    school = school_year.school
    audit_record(
        actor=actor.user, action="attendance.register.viewed", obj=klass, fields=["attendance"],
        detail={"date": day.isoformat(), "pupils": len(rows)},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return EntrySheet(klass, day, school_year, rules, is_school_day, closure, status, register, rows, previous_day,
                      next_day)


def is_member(*, class_id: int, student_id: uuid.UUID) -> bool:
    """Whether the pupil is (still) in the class: a row URL names both, and they must agree."""
    return ClassMembership.objects.filter(homeroom_class_id=class_id, student_id=student_id,
                                          student__is_active=True).exists()


def entry_status(*, actor: Actor, class_id: int | str, day: datetime.date, klass: HomeroomClass | None = None,
                 rules: AttendanceRules | None = None, status: str | None = None,
                 register: DailyRegister | None = None) -> EntrySheet:
    """The register's state for the status bar (confirmed by whom, the month's status), without pupils. `klass`,
    `rules`, `status` and `register` (the day's DailyRegister with entered_by): what a save in the same request
    already read or wrote (komu.attendance.services.marks.RegisterSaveResult), the class fetched through the
    actor's recording scope."""
    if klass is None or str(klass.pk) != str(class_id):
        klass, rules, status, register = register_class_get(actor=actor, class_id=class_id), None, None, None
    school_year = klass.school_year
    rules = rules or calendar.rules_for(school_year.school)
    status = status or (MonthlyRegister.objects.filter(homeroom_class=klass, year=day.year, month=day.month)
                        .order_by("pk").values_list("status", flat=True).first()) or MonthlyRegister.Status.OPEN
    if register is None or register.homeroom_class_id != klass.pk or register.date != day:
        register = DailyRegister.objects.filter(homeroom_class=klass, date=day).select_related("entered_by").first()
    return EntrySheet(klass, day, school_year, rules, True, None, status, register, [], None, None)


def entry_row(*, actor: Actor, class_id: int | str, day: datetime.date, student_id: uuid.UUID,
              klass: HomeroomClass | None = None) -> tuple[EntrySheet, EntryRow]:
    """One pupil's row (after a save, or to show a conflict), with the sheet's day context but no other rows.
    Not audited separately: it follows a write that was. `klass`: the class as the caller already fetched it
    through the actor's scope for recording (komu.attendance.services.marks.entry_class_get), with its school
    year and school; it must be `class_id`'s."""
    if klass is None or str(klass.pk) != str(class_id):
        klass = register_class_get(actor=actor, class_id=class_id)
    school_year = klass.school_year
    if not (school_year.start_date <= day <= school_year.end_date):
        raise NotFoundOrNoAccess("見つかりません。")
    rules = calendar.rules_for(school_year.school)
    status = (MonthlyRegister.objects.filter(homeroom_class=klass, year=day.year, month=day.month)
              .order_by("pk").values_list("status", flat=True).first()) or MonthlyRegister.Status.OPEN
    rows = _rows(klass, day, rules, open_month=status == MonthlyRegister.Status.OPEN, student_ids=[student_id])
    if not rows:
        raise NotFoundOrNoAccess("見つかりません。")
    sheet = EntrySheet(klass, day, school_year, rules, True, None, status, None, rows, None, None)
    return sheet, rows[0]


# --- The year: 指導要録 出欠の記録 ------------------------------------------------------------------------------------

@dataclass
class PupilYear:
    student_id: uuid.UUID
    shusseki_no: int
    family_name: str
    given_name: str
    totals: arithmetic.Totals
    by_month: list[arithmetic.Totals]
    long_absence_category: str = ""

    @property
    def name(self) -> str:
        return f"{self.family_name} {self.given_name}"

    @property
    def long_absence_label(self) -> str:
        if self.long_absence_category in LongAbsenceCategory.values:
            return str(LongAbsenceCategory(self.long_absence_category).label)
        return ""


@dataclass
class ClassYear:
    homeroom_class: HomeroomClass
    school_year: SchoolYear
    months: list[tuple[int, int]]
    through: datetime.date
    pupils: list[PupilYear]

    @property
    def class_totals(self) -> arithmetic.Totals:
        total = arithmetic.Totals()
        for pupil in self.pupils:
            total = total + pupil.totals
        return total


def school_year_months(school_year: SchoolYear, through: datetime.date) -> list[tuple[int, int]]:
    months = []
    day = school_year.start_date.replace(day=1)
    last = min(through, school_year.end_date)
    while day <= last:
        months.append((day.year, day.month))
        day = (day + datetime.timedelta(days=32)).replace(day=1)
    return months


def year_totals(klass: HomeroomClass, *, through: datetime.date, with_names: bool = True) -> ClassYear:
    """Per pupil, the sum of the months' totals from April through the month of `through` — the same numbers as
    each month's register (komu.attendance.registers.build_month), computed with one query per table."""
    school_year = klass.school_year
    rules_model = calendar.rules_for(school_year.school)
    rules = rules_of(rules_model)
    months = school_year_months(school_year, through)
    if not months:
        return ClassYear(klass, school_year, [], through, [])
    start = datetime.date(*months[0], 1)
    end = calendar.month_bounds(*months[-1])[1]
    days = calendar.school_days(school_year, start, end, rules_model)
    closed = calendar.closure_days(klass, start, end) & set(days)
    days_by_month: dict[tuple[int, int], list[datetime.date]] = {m: [] for m in months}
    for d in days:
        days_by_month[(d.year, d.month)].append(d)
    memberships = list(
        ClassMembership.objects.filter(homeroom_class=klass).select_related("student").order_by("shusseki_no")
    )
    marks: dict[uuid.UUID, dict[datetime.date, arithmetic.DayMark]] = {}
    for student_id, date, kind, reason, degree in Mark.objects.filter(
        homeroom_class=klass, date__range=(start, end)
    ).values_list("student_id", "date", "kind", "absence_reason", "kinship_degree"):
        marks.setdefault(student_id, {})[date] = arithmetic.DayMark(kind, reason, degree)
    categories = dict(
        LongAbsenceRecord.objects.filter(school_year=school_year, student_id__in=[m.student_id for m in memberships])
        .values_list("student_id", "category")
    )
    pupils = []
    for membership in memberships:
        student = membership.student
        pupil_marks = marks.get(student.pk, {})
        by_month = [
            arithmetic.totals_for(days_by_month[m], pupil_marks, rules, closed) for m in months
        ]
        total = arithmetic.Totals()
        for t in by_month:
            total = total + t
        pupils.append(PupilYear(
            student_id=student.pk, shusseki_no=membership.shusseki_no,
            family_name=student.family_name if with_names else "",
            given_name=student.given_name if with_names else "",
            totals=total, by_month=by_month, long_absence_category=categories.get(student.pk, ""),
        ))
    return ClassYear(klass, school_year, months, min(through, school_year.end_date), pupils)


@transaction.atomic
def class_year_totals(*, actor: Actor, class_id: int | str, through: datetime.date | None = None) -> ClassYear:
    """The class's 出欠の記録 for its school year so far (or the whole year once it has ended). Audited."""
    klass = register_class_get(actor=actor, class_id=class_id, capability=roles.ATTENDANCE_VIEW)
    through = through or timezone.localdate()
    result = year_totals(klass, through=through)
    school = klass.school_year.school
    audit_record(
        actor=actor.user, action="attendance.year_totals.viewed", obj=klass, fields=["attendance"],
        detail={"through": result.through.isoformat(), "pupils": len(result.pupils)},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return result


def viewable_classes_by_school(*, actor: Actor, day: datetime.date) -> list[HomeroomClass]:
    """Classes of the year containing `day` whose registers the actor may read."""
    return list(
        attendance_classes(actor, roles.ATTENDANCE_VIEW)
        .filter(school_year__start_date__lte=day, school_year__end_date__gte=day)
        .select_related("school_year__school")
        .order_by("school_year__school__code", "grade_code", "sort_order", "name")
    )
