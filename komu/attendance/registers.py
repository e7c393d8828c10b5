"""The register of one class for one month: per pupil, a mark per school day and the totals of the law.

Internal computation shared by the screens, the approval (its canonical content hash), the PDF and the annual
record. Callers authorise first (selectors); this module only reads.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass, field

from komu.attendance import arithmetic, calendar
from komu.attendance.models import AttendanceRules, Mark, MarkChange
from komu.directory.models import HomeroomClass
from komu.students.models import LEAVING_KINDS, ClassMembership, EnrollmentEvent, EnrollmentKind

# The 学籍の異動 that start a pupil's enrolment at the school; LEAVING_KINDS end it.
_JOINING_KINDS = frozenset({EnrollmentKind.ADMISSION, EnrollmentKind.READMISSION, EnrollmentKind.TRANSFER_IN})


def rules_of(model: AttendanceRules) -> arithmetic.Rules:
    return arithmetic.Rules(
        official_counts_as_present=model.official_absence_counts_as_present,
        lates_per_absence=model.lates_per_absence,
        excused_kinds=frozenset(model.excused_kinds),
        bereavement_limits={int(k): int(v) for k, v in dict(model.bereavement_limits).items()},
    )


@dataclass
class PupilMonth:
    student_id: uuid.UUID
    shusseki_no: int
    family_name: str
    given_name: str
    marks: dict[datetime.date, Mark]
    totals: arithmetic.Totals
    changes: list[MarkChange] = field(default_factory=list)
    # School days of the month on which the pupil was not enrolled at the school (joined later by 転入学・編入学,
    # or left earlier by 転学・退学): blank in the register and outside every count.
    not_enrolled: frozenset[datetime.date] = frozenset()


@dataclass
class MonthSheet:
    homeroom_class: HomeroomClass
    year: int
    month: int
    days: list[datetime.date]
    closure_days: set[datetime.date]
    pupils: list[PupilMonth]

    @property
    def class_totals(self) -> arithmetic.Totals:
        total = arithmetic.Totals()
        for pupil in self.pupils:
            total = total + pupil.totals
        return total

    def canonical(self) -> dict[str, object]:
        """What an approval seals: every pupil's marks and totals, in a stable order. Names are not included:
        a seal must stay verifiable after a name is corrected, and the hash must reveal nothing."""
        return {
            "class": self.homeroom_class.pk,
            "year": self.year,
            "month": self.month,
            "days": [d.isoformat() for d in self.days],
            "closures": sorted(d.isoformat() for d in self.closure_days),
            "pupils": [
                {
                    "student": str(p.student_id),
                    "no": p.shusseki_no,
                    "marks": {
                        d.isoformat(): [m.kind, m.absence_reason, m.suspension_kind, m.disease, m.kinship_degree]
                        for d, m in sorted(p.marks.items())
                    },
                    "totals": [p.totals.lesson_days, p.totals.excused_days, p.totals.required_days,
                               p.totals.absent_days, p.totals.present_days, p.totals.late, p.totals.early_leave],
                    # Only when the pupil joined or left within the month, so the hash of every register
                    # sealed before this existed stays the same.
                    **({"not_enrolled": sorted(d.isoformat() for d in p.not_enrolled)} if p.not_enrolled else {}),
                }
                for p in self.pupils
            ],
        }

    def content_hash(self) -> str:
        data = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(data.encode("utf-8")).hexdigest()


def build_month(homeroom_class: HomeroomClass, year: int, month: int, *, with_names: bool = True) -> MonthSheet:
    """Compute one class's month. Queries are constant in the number of pupils and days."""
    start, end = calendar.month_bounds(year, month)
    school_year = homeroom_class.school_year
    rules_model = calendar.rules_for(school_year.school)
    rules = rules_of(rules_model)
    days = calendar.school_days(school_year, start, end, rules_model)
    closed = calendar.closure_days(homeroom_class, start, end) & set(days)
    memberships = list(
        ClassMembership.objects.filter(homeroom_class=homeroom_class).select_related("student").order_by("shusseki_no")
    )
    marks_by_student: dict[uuid.UUID, dict[datetime.date, Mark]] = {}
    for mark in Mark.objects.filter(homeroom_class=homeroom_class, date__range=(start, end)):
        marks_by_student.setdefault(mark.student_id, {})[mark.date] = mark
    changes_by_student: dict[uuid.UUID, list[MarkChange]] = {}
    for change in MarkChange.objects.filter(homeroom_class=homeroom_class, date__range=(start, end)).select_related(
        "changed_by"
    ):
        changes_by_student.setdefault(change.student_id, []).append(change)
    windows = enrolment_windows([m.student_id for m in memberships])
    pupils = []
    for membership in memberships:
        student = membership.student
        joined, left = windows.get(student.pk, (None, None))
        own_days = [d for d in days if (joined is None or d >= joined) and (left is None or d <= left)]
        enrolled = set(own_days)
        marks = {d: m for d, m in marks_by_student.get(student.pk, {}).items() if d in enrolled}
        day_marks = {
            d: arithmetic.DayMark(m.kind, m.absence_reason, m.kinship_degree) for d, m in marks.items()
        }
        pupils.append(
            PupilMonth(
                student_id=student.pk,
                shusseki_no=membership.shusseki_no,
                family_name=student.family_name if with_names else "",
                given_name=student.given_name if with_names else "",
                marks=marks,
                totals=arithmetic.totals_for(own_days, day_marks, rules, closed & enrolled),
                changes=changes_by_student.get(student.pk, []),
                not_enrolled=frozenset(set(days) - enrolled),
            )
        )
    return MonthSheet(homeroom_class, year, month, days, closed, pupils)


def enrolment_windows(
    student_ids: list[uuid.UUID],
) -> dict[uuid.UUID, tuple[datetime.date | None, datetime.date | None]]:
    """(first day, last day) of each pupil's enrolment at their school from the 学籍の異動, one query. A pupil
    with no such record is enrolled throughout (None, None). The day of a 転入学 is the first day on the register;
    the day of a 転学・退学・卒業 is the last."""
    windows: dict[uuid.UUID, tuple[datetime.date | None, datetime.date | None]] = {}
    events = EnrollmentEvent.objects.filter(student_id__in=student_ids).order_by("date", "created_at")
    for event in events.values_list("student_id", "kind", "date"):
        student_id, kind, day = event
        joined, left = windows.get(student_id, (None, None))
        if kind in _JOINING_KINDS:
            joined, left = day, None  # a later joining (re-admission) starts a new window
        elif kind in LEAVING_KINDS:
            left = day
        windows[student_id] = (joined, left)
    return windows
