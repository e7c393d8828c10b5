"""Reading the monthly 出席簿: the month page of a class (grid in paper symbols, totals of the law, corrections
struck through, approval and seals), the year's months of a class, a school's year overview for the principal,
and the data of the printed documents (monthly register, annual 出欠の記録).

Scope: whoever reads attendance for the class (attendance.view; a homeroom teacher only their class) and
whoever may act on, or has acted on, the register's approval (a delegate approver). Out of scope answers 404.
Reads are audited: pupils' attendance carries health categories (出席停止 with disease).
"""

from __future__ import annotations

import datetime
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jpholiday
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from komu.access import roles
from komu.access.scope import Actor, classes_for, get_in_scope
from komu.approvals import selectors as approvals
from komu.approvals.models import ApprovalAction, ApprovalRequest
from komu.approvals.seals import SealCheck
from komu.attendance import calendar
from komu.attendance.arithmetic import Totals
from komu.attendance.models import (
    ABSENCE_SYMBOL,
    PAPER_SYMBOL,
    AbsenceReason,
    Disease,
    MarkChange,
    MarkKind,
    MonthlyRegister,
)
from komu.attendance.registers import MonthSheet, build_month
from komu.attendance.services import monthly as monthly_services
from komu.attendance.services.monthly import (
    SEALED,
    fiscal_months,
    month_in_year,
    month_title,
    submittable_from,
    year_close_blockers,
)
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess
from komu.directory.models import HomeroomClass, Role, School, SchoolYear

WEEKDAYS = "月火水木金土日"
_REASON_LABEL = dict(AbsenceReason.choices)
_KIND_LABEL = dict(MarkKind.choices)
_DISEASE_LABEL = dict(Disease.choices)


def symbol(kind: str, reason: str = "") -> str:
    """The paper register's symbol: 病 事 他 for 欠席 by reason, チ 早 停 忌 公, blank for 出席."""
    if kind == MarkKind.ABSENT:
        return str(ABSENCE_SYMBOL.get(reason, "欠"))  # type: ignore[call-overload]
    return str(PAPER_SYMBOL.get(kind, ""))  # type: ignore[call-overload]


def mark_label(kind: str, reason: str = "") -> str:
    label = str(_KIND_LABEL.get(kind, kind))
    if kind == MarkKind.ABSENT and reason:
        label += f"（{_REASON_LABEL.get(reason, reason)}）"
    return label


# --- Scope -----------------------------------------------------------------------------------------------------

def monthly_classes_for(actor: Actor) -> QuerySet[HomeroomClass]:
    return classes_for(actor, roles.ATTENDANCE_VIEW)


def _class_for(actor: Actor, class_id: Any) -> HomeroomClass:
    qs = HomeroomClass.objects.select_related("school_year__school")
    try:
        return get_in_scope(qs.filter(pk__in=monthly_classes_for(actor).values("pk")), pk=class_id)
    except NotFoundOrNoAccess:
        pass
    # A delegate approver may read the register they are asked to seal, and only that register.
    klass = get_in_scope(qs, pk=class_id)
    registers = MonthlyRegister.objects.filter(homeroom_class=klass)
    if any(approvals.may_review_subject(actor, r) for r in registers):
        return klass
    raise NotFoundOrNoAccess("見つかりません。")


def _register_in_scope(actor: Actor, klass: HomeroomClass, register: MonthlyRegister | None) -> bool:
    if monthly_classes_for(actor).filter(pk=klass.pk).exists():
        return True
    return register is not None and approvals.may_review_subject(actor, register)


def _audit_scope(klass: HomeroomClass) -> Scope:
    school = klass.school_year.school
    return Scope(school_id=school.pk, board_id=school.board_id)


# --- The month page ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DayColumn:
    date: datetime.date
    weekday: str
    is_school_day: bool
    is_closure: bool
    holiday: str

    @property
    def is_weekend(self) -> bool:
        return self.date.weekday() >= 5


@dataclass(frozen=True)
class Correction:
    """訂正: one amendment after submission, shown as the old symbol struck through with who, when and why."""

    number: int
    date: datetime.date
    shusseki_no: int
    pupil: str
    old_symbol: str
    old_label: str
    new_symbol: str
    new_label: str
    by: str
    at: datetime.datetime
    reason: str


@dataclass(frozen=True)
class Cell:
    symbol: str
    label: str
    is_school_day: bool
    is_closure: bool
    corrections: tuple[Correction, ...] = ()


@dataclass
class PupilRow:
    student_id: uuid.UUID
    shusseki_no: int
    name: str
    cells: list[Cell]
    totals: Totals


@dataclass
class MonthPage:
    klass: HomeroomClass
    school: School
    year: int
    month: int
    title: str
    days: list[DayColumn]
    rows: list[PupilRow]
    class_totals: Totals
    lesson_days: int
    register: MonthlyRegister | None
    status: str
    status_label: str
    content_hash: str
    corrections: list[Correction]
    history: approvals.SubjectHistory | None = None
    authority: approvals.Authority | None = None
    can_withdraw: bool = False
    can_submit: bool = False
    submit_note: str = ""
    checks: list[SealCheck] = field(default_factory=list)

    @property
    def current_request(self) -> ApprovalRequest | None:
        """The request in force: pending or approved. A superseded, returned or withdrawn one is history."""
        if self.history is None or self.register is None or self.register.approval_id is None:
            return None
        live = (ApprovalRequest.Status.PENDING, ApprovalRequest.Status.APPROVED)
        return next((r for r in self.history.requests if r.pk == self.register.approval_id and r.status in live),
                    None)

    @property
    def current_steps(self) -> list[approvals.StepView]:
        request = self.current_request
        return self.history.steps[request.pk] if request is not None and self.history is not None else []

    @property
    def earlier_requests(self) -> list[tuple[ApprovalRequest, list[approvals.StepView]]]:
        """Earlier revisions (superseded, returned, withdrawn) with their steps and seals, newest first."""
        current = self.current_request
        if self.history is None:
            return []
        return [(r, self.history.steps[r.pk]) for r in self.history.requests if current is None or r.pk != current.pk]

    @property
    def fiscal_year(self) -> int:
        return self.klass.school_year.year


def _corrections(sheet: MonthSheet) -> dict[tuple[uuid.UUID, datetime.date], list[Correction]]:
    result: dict[tuple[uuid.UUID, datetime.date], list[Correction]] = {}
    changes: list[tuple[Any, MarkChange]] = []
    for pupil in sheet.pupils:
        changes.extend((pupil, c) for c in pupil.changes if c.is_amendment)
    changes.sort(key=lambda pc: (pc[1].date, pc[0].shusseki_no, pc[1].changed_at))
    for number, (pupil, change) in enumerate(changes, start=1):
        who = change.changed_by.display_name or change.changed_by.get_username()
        result.setdefault((pupil.student_id, change.date), []).append(Correction(
            number=number, date=change.date, shusseki_no=pupil.shusseki_no,
            pupil=f"{pupil.family_name} {pupil.given_name}".strip(),
            old_symbol=symbol(change.old_kind, change.old_reason) or "出",
            old_label=mark_label(change.old_kind, change.old_reason),
            new_symbol=symbol(change.new_kind, change.new_reason) or "出",
            new_label=mark_label(change.new_kind, change.new_reason),
            by=who, at=change.changed_at, reason=change.amendment_reason,
        ))
    return result


def _page(klass: HomeroomClass, year: int, month: int, register: MonthlyRegister | None) -> MonthPage:
    sheet = build_month(klass, year, month)
    start, end = calendar.month_bounds(year, month)
    school_days = set(sheet.days)
    year_obj = klass.school_year
    days = []
    day = start
    while day <= end:
        in_year = year_obj.start_date <= day <= year_obj.end_date
        days.append(DayColumn(
            date=day, weekday=WEEKDAYS[day.weekday()], is_school_day=in_year and day in school_days,
            is_closure=day in sheet.closure_days, holiday=jpholiday.is_holiday_name(day) or "",
        ))
        day += datetime.timedelta(days=1)
    corrections = _corrections(sheet)
    rows = []
    for pupil in sheet.pupils:
        cells = []
        for col in days:
            mark = pupil.marks.get(col.date) if col.is_school_day else None
            kind = mark.kind if mark is not None else MarkKind.PRESENT
            reason = mark.absence_reason if mark is not None else ""
            if col.is_school_day and col.date in pupil.not_enrolled:
                text, label = "", "在籍していない日"
            elif col.is_closure and col.is_school_day:
                text, label = "閉", "学級閉鎖"
            elif col.is_school_day:
                text, label = symbol(kind, reason), mark_label(kind, reason)
                if mark is not None and mark.disease:
                    label += f"・{_DISEASE_LABEL.get(mark.disease, mark.disease)}"
            else:
                text, label = "", col.holiday or "休業日"
            cells.append(Cell(text, label, col.is_school_day and col.date not in pupil.not_enrolled, col.is_closure,
                              tuple(corrections.get((pupil.student_id, col.date), ()))))
        rows.append(PupilRow(pupil.student_id, pupil.shusseki_no, f"{pupil.family_name} {pupil.given_name}".strip(),
                             cells, pupil.totals))
    status = register.status if register is not None else MonthlyRegister.Status.OPEN
    flat = sorted((c for cs in corrections.values() for c in cs), key=lambda c: c.number)
    return MonthPage(
        klass=klass, school=year_obj.school, year=year, month=month, title=month_title(klass, year, month),
        days=days, rows=rows, class_totals=sheet.class_totals, lesson_days=len(sheet.days), register=register,
        status=status, status_label=str(MonthlyRegister.Status(status).label), content_hash=sheet.content_hash(),
        corrections=flat,
    )


def _month_register(klass: HomeroomClass, year: int, month: int) -> MonthlyRegister | None:
    return MonthlyRegister.objects.filter(homeroom_class=klass, year=year, month=month).first()


def _load(actor: Actor, class_id: Any, year: int, month: int) -> tuple[HomeroomClass, MonthlyRegister | None]:
    qs = HomeroomClass.objects.select_related("school_year__school")
    klass = get_in_scope(qs, pk=class_id)
    if not month_in_year(klass, year, month):
        raise NotFoundOrNoAccess("見つかりません。")
    register = _month_register(klass, year, month)
    if not _register_in_scope(actor, klass, register):
        raise NotFoundOrNoAccess("見つかりません。")
    return klass, register


def _with_approval(page: MonthPage, actor: Actor) -> MonthPage:
    register = page.register
    if register is not None:
        page.history = approvals.subject_history(register)
        current = page.current_request
        if current is not None:
            page.authority = approvals.authority_for(actor, current)
            page.can_withdraw = (current.status == ApprovalRequest.Status.PENDING
                                 and current.submitted_by_id == actor.user.pk)
    teaches = any(g.role == Role.HOMEROOM_TEACHER and g.class_id == page.klass.pk for g in actor.grants)
    opens = submittable_from(page.klass, page.year, page.month)
    if not teaches or page.status in SEALED or page.status == MonthlyRegister.Status.LOCKED:
        page.submit_note = ""
    elif monthly_services.today() < opens:
        page.submit_note = f"{opens.month}月{opens.day}日（月の最後の授業日）から提出できます。"
    else:
        page.can_submit = True
    return page


def monthly_register_get_for(*, actor: Actor, class_id: Any, year: int, month: int) -> MonthPage:
    """One class's month as the screen shows it. Audited as a read of pupils' attendance."""
    klass, register = _load(actor, class_id, year, month)
    page = _with_approval(_page(klass, year, month, register), actor)
    with transaction.atomic():
        audit_record(actor=actor.user, action="attendance.register.viewed", object_type="attendance.monthlyregister",
                     object_id=f"{klass.pk}:{year}-{month:02d}", scope=_audit_scope(klass))
    return page


def monthly_register_print_for(*, actor: Actor, class_id: Any, year: int, month: int) -> MonthPage:
    """The month for its PDF: with every seal verified at the time of printing. Audited like an export
    ("attendance.register.printed": who, which class and month)."""
    klass, register = _load(actor, class_id, year, month)
    page = _with_approval(_page(klass, year, month, register), actor)
    if register is not None:
        page.checks = approvals.subject_verify(register)
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="attendance.register.printed", object_type="attendance.monthlyregister",
            object_id=f"{klass.pk}:{year}-{month:02d}", fields=["marks", "names"],
            detail={"class": str(klass), "year": year, "month": month, "pupils": len(page.rows),
                    "content_hash": page.content_hash},
            scope=_audit_scope(klass),
        )
    return page


# --- The year of one class -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MonthSummary:
    year: int
    month: int
    status: str
    status_label: str
    lesson_days: int


@dataclass
class ClassYear:
    klass: HomeroomClass
    months: list[MonthSummary]


def class_year_for(*, actor: Actor, class_id: Any) -> ClassYear:
    klass = _class_for(actor, class_id)
    school_year = klass.school_year
    statuses = dict(
        ((y, m), s) for y, m, s in MonthlyRegister.objects.filter(homeroom_class=klass).values_list("year", "month", "status")
    )
    days = Counter((d.year, d.month) for d in calendar.school_days(school_year, school_year.start_date,
                                                                       school_year.end_date))
    months = []
    for y, m in fiscal_months(school_year):
        status = statuses.get((y, m), MonthlyRegister.Status.OPEN)
        months.append(MonthSummary(y, m, status, str(MonthlyRegister.Status(status).label), days.get((y, m), 0)))
    return ClassYear(klass, months)


def class_choices_for(*, actor: Actor) -> list[HomeroomClass]:
    """This year's classes whose registers the actor reads, school by school."""
    from komu.core.wareki import fiscal_year_of

    current = fiscal_year_of(timezone.localdate())
    return list(
        monthly_classes_for(actor).filter(school_year__year__gte=current - 1)
        .select_related("school_year__school")
        .order_by("school_year__school__code", "-school_year__year", "grade_code", "sort_order", "name")
    )


# --- A school's year, for the principal ----------------------------------------------------------------------------

@dataclass
class SchoolYearRow:
    klass: HomeroomClass
    statuses: list[str]


@dataclass
class SchoolYearOverview:
    school: School
    school_year: SchoolYear
    months: list[tuple[int, int]]
    rows: list[SchoolYearRow]
    can_close: bool
    blockers: list[str]
    is_closed: bool


def school_year_overview_for(*, actor: Actor, school_id: Any, fiscal_year: int) -> SchoolYearOverview:
    visible = monthly_classes_for(actor)
    school_year = get_in_scope(
        SchoolYear.objects.select_related("school").filter(pk__in=visible.values("school_year_id")),
        school_id=school_id, year=fiscal_year,
    )
    classes = list(visible.filter(school_year=school_year).order_by("grade_code", "sort_order", "name"))
    months = fiscal_months(school_year)
    statuses = {
        (k, y, m): s for k, y, m, s in MonthlyRegister.objects.filter(homeroom_class__in=classes)
        .values_list("homeroom_class_id", "year", "month", "status")
    }
    rows = [SchoolYearRow(k, [statuses.get((k.pk, y, m), MonthlyRegister.Status.OPEN) for y, m in months])
            for k in classes]
    may_close = school_year.school_id in {g.school_id for g in actor.grants_with(roles.ATTENDANCE_CLOSE_YEAR)}
    is_closed = bool(rows) and all(s == MonthlyRegister.Status.LOCKED for r in rows for s in r.statuses)
    blockers = year_close_blockers(school_year) if may_close and not is_closed else []
    return SchoolYearOverview(school_year.school, school_year, months, rows, may_close and not is_closed,
                              blockers, is_closed)


# --- The annual 出欠の記録 --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AnnualMonth:
    year: int
    month: int
    totals: Totals
    note: str


@dataclass
class AnnualPupil:
    student_id: uuid.UUID
    shusseki_no: int
    name: str
    months: list[AnnualMonth]
    total: Totals
    note: str


@dataclass
class AnnualRecord:
    klass: HomeroomClass
    school: School
    fiscal_year: int
    pupils: list[AnnualPupil]


def _note(totals: Totals, diseases: Counter[str], *, short: bool) -> str:
    """備考: what the numbers do not say — 遅刻・早退, 出席停止 (with the disease), 忌引, 学級閉鎖, 公欠."""
    parts = []
    if totals.late:
        parts.append(f"遅刻{totals.late}")
    if totals.early_leave:
        parts.append(f"早退{totals.early_leave}")
    if totals.suspension_days:
        if diseases and not short:
            named = "・".join(f"{_DISEASE_LABEL.get(d, d)}{n}日" for d, n in sorted(diseases.items()))
            parts.append(f"出席停止{totals.suspension_days}日（{named}）")
        else:
            parts.append(f"出席停止{totals.suspension_days}")
    if totals.mourning_days:
        parts.append(f"忌引{totals.mourning_days}")
    if totals.closure_days:
        parts.append(f"学級閉鎖{totals.closure_days}")
    if totals.official_days:
        parts.append(f"公欠{totals.official_days}")
    if totals.absent_from_lates:
        parts.append(f"遅刻・早退の換算による欠席{totals.absent_from_lates}")
    return "・".join(parts) if short else "、".join(parts)


def annual_record_print_for(*, actor: Actor, class_id: Any, student_id: Any = None) -> AnnualRecord:
    """出欠の記録 (指導要録) of a class's pupils for their school year, month by month and for the year, for the
    PDF. Audited like an export ("attendance.annual_record.printed")."""
    klass = _class_for(actor, class_id)
    school_year = klass.school_year
    sheets = [build_month(klass, y, m) for y, m in fiscal_months(school_year)]
    pupils: dict[uuid.UUID, AnnualPupil] = {}
    diseases: dict[uuid.UUID, Counter[str]] = {}
    for sheet in sheets:
        for p in sheet.pupils:
            if student_id is not None and str(p.student_id) != str(student_id):
                continue
            entry = pupils.setdefault(p.student_id, AnnualPupil(
                p.student_id, p.shusseki_no, f"{p.family_name} {p.given_name}".strip(), [], Totals(), "",
            ))
            month_diseases: Counter[str] = Counter(
                m.disease for d, m in p.marks.items() if m.kind == MarkKind.SUSPENSION and m.disease
                and d not in sheet.closure_days
            )
            diseases.setdefault(p.student_id, Counter()).update(month_diseases)
            entry.months.append(AnnualMonth(sheet.year, sheet.month, p.totals,
                                            _note(p.totals, month_diseases, short=True)))
            entry.total = entry.total + p.totals
    if student_id is not None and not pupils:
        raise NotFoundOrNoAccess("見つかりません。")
    result = sorted(pupils.values(), key=lambda p: p.shusseki_no)
    for pupil in result:
        pupil.note = _note(pupil.total, diseases.get(pupil.student_id, Counter()), short=False)
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="attendance.annual_record.printed", object_type="directory.homeroomclass",
            object_id=str(klass.pk), fields=["marks", "names"],
            detail={"class": str(klass), "fiscal_year": school_year.year, "pupils": len(result),
                    "student": str(student_id) if student_id else ""},
            scope=_audit_scope(klass),
        )
    return AnnualRecord(klass, school_year.school, school_year.year, result)


def seal_actions(page: MonthPage) -> list[ApprovalAction]:
    """The seals of the register's current request, in step order (for the PDF's seal block)."""
    return [s.seal for s in page.current_steps if s.seal is not None]
