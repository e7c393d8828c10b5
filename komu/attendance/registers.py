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
from komu.students.models import ClassMembership


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
    pupils = []
    for membership in memberships:
        student = membership.student
        marks = {d: m for d, m in marks_by_student.get(student.pk, {}).items() if d in days}
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
                totals=arithmetic.totals_for(days, day_marks, rules, closed),
                changes=changes_by_student.get(student.pk, []),
            )
        )
    return MonthSheet(homeroom_class, year, month, days, closed, pupils)
