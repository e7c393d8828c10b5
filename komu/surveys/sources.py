"""Figures a school's own data already holds, which a survey field can be bound to (自動入力).

Each source is a code such as "suspension:influenza" (pupils under 出席停止 for influenza during the survey's
対象期間), "closures" (学級閉鎖 overlapping the period), "enrolment:g1" (pupils in the 1st grade of the school's
年度 at the period's end), "absent_pupils", "long_absence:futoko". The figures are counts only, never names,
computed with a handful of aggregate queries per school.

Adding a source means adding it to SOURCES and to `figures_for` together.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db.models import Count
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from komu.attendance.models import (
    ClassClosure,
    Disease,
    LongAbsenceCategory,
    LongAbsenceRecord,
    Mark,
    MarkKind,
    SuspensionKind,
)
from komu.directory.models import School, SchoolYear
from komu.students.models import ClassMembership

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

_GRADE_NUMBERS = range(1, 7)


def _catalogue() -> dict[str, StrOrPromise]:
    """Source code → its name on screens (lazy: Japanese msgids, shown in the screen's language)."""
    sources: dict[str, StrOrPromise] = {}
    for disease in Disease:
        sources[f"suspension:{disease.value}"] = format_lazy(_("出席停止（{disease}）の人数"), disease=disease.label)
    sources["suspension:total"] = _("出席停止（感染症）の人数・合計")
    sources["closures"] = _("学級閉鎖の学級数")
    sources["closure_days"] = _("学級閉鎖の延べ日数")
    sources["absent_pupils"] = _("欠席した児童生徒数")
    sources["absence_days"] = _("欠席の延べ日数")
    for n in _GRADE_NUMBERS:
        sources[f"enrolment:g{n}"] = format_lazy(_("在籍者数（{n}年）"), n=n)
    sources["enrolment:total"] = _("在籍者数・合計")
    for category in LongAbsenceCategory:
        sources[f"long_absence:{category.value}"] = format_lazy(_("長期欠席者数（{category}）"), category=category.label)
    sources["long_absence:total"] = _("長期欠席者数・合計")
    return sources


SOURCES: dict[str, StrOrPromise] = _catalogue()


def label_of(code: str) -> str:
    return str(SOURCES.get(code, code))


def _year_of(school: School, day: datetime.date) -> SchoolYear | None:
    return (SchoolYear.objects.filter(school=school, start_date__lte=day, end_date__gte=day).first()
            or SchoolYear.objects.filter(school=school, start_date__lte=day).order_by("-start_date").first())


def figures_for(
    school: School, *, start: datetime.date | None, end: datetime.date | None, codes: Iterable[str] | None = None,
) -> dict[str, int]:
    """The figures of `school` over [start, end] (the week containing today when the survey set no period).
    Only the families of the requested codes are queried."""
    if start is None or end is None:
        today = timezone.localdate()
        start = today - datetime.timedelta(days=today.weekday())
        end = start + datetime.timedelta(days=6)
    wanted = set(codes) if codes is not None else set(SOURCES)
    families = {code.split(":")[0] for code in wanted}
    figures: dict[str, int] = {}
    marks = Mark.objects.filter(homeroom_class__school_year__school=school, date__gte=start, date__lte=end)
    if "suspension" in families:
        infectious = marks.filter(kind=MarkKind.SUSPENSION, suspension_kind=SuspensionKind.INFECTIOUS)
        by_disease = {row["disease"]: row["n"] for row in
                      infectious.values("disease").annotate(n=Count("student", distinct=True))}
        for disease in Disease:
            figures[f"suspension:{disease.value}"] = by_disease.get(disease.value, 0)
        # A pupil suspended for two diseases in one week is one pupil.
        figures["suspension:total"] = infectious.values("student").distinct().count()
    if "closures" in families or "closure_days" in families:
        closures = list(ClassClosure.objects.filter(
            homeroom_class__school_year__school=school, start_date__lte=end, end_date__gte=start,
        ).values_list("homeroom_class_id", "start_date", "end_date"))
        figures["closures"] = len({c[0] for c in closures})
        figures["closure_days"] = sum((min(e, end) - max(s, start)).days + 1 for _c, s, e in closures)
    if "absent_pupils" in families or "absence_days" in families:
        absent = marks.filter(kind=MarkKind.ABSENT)
        counted = absent.aggregate(days=Count("pk"), pupils=Count("student", distinct=True))
        figures["absent_pupils"] = counted["pupils"]
        figures["absence_days"] = counted["days"]
    year = _year_of(school, end) if {"enrolment", "long_absence"} & families else None
    if "enrolment" in families:
        by_grade: dict[str, int] = {}
        if year is not None:
            by_grade = {row["homeroom_class__grade_code"]: row["n"] for row in
                        ClassMembership.objects.filter(homeroom_class__school_year=year)
                        .values("homeroom_class__grade_code").annotate(n=Count("student", distinct=True))}
        for n in _GRADE_NUMBERS:
            figures[f"enrolment:g{n}"] = sum(v for k, v in by_grade.items() if k[1:] == str(n))
        figures["enrolment:total"] = sum(by_grade.values())
    if "long_absence" in families:
        counts: dict[str, int] = {}
        if year is not None:
            counts = {row["category"]: row["n"] for row in
                      LongAbsenceRecord.objects.filter(school_year=year).values("category")
                      .annotate(n=Count("pk"))}
        for category in LongAbsenceCategory:
            figures[f"long_absence:{category.value}"] = counts.get(category.value, 0)
        figures["long_absence:total"] = sum(counts.values())
    return {code: value for code, value in figures.items() if code in wanted}

