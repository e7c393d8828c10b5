"""Reading the school calendar (a month at a time) and the school's rules, for those who manage the school."""

from __future__ import annotations

import calendar as pycalendar
import datetime
from dataclasses import dataclass, field

import jpholiday
from django.utils.translation import pgettext_lazy

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.attendance import calendar
from komu.attendance.models import AttendanceRules, CalendarDay, ClassClosure
from komu.attendance.services.calendar import manageable_school
from komu.directory.models import HomeroomClass, School, SchoolYear

WEEKDAY_LABELS = (
    pgettext_lazy("weekday", "月"),
    pgettext_lazy("weekday", "火"),
    pgettext_lazy("weekday", "水"),
    pgettext_lazy("weekday", "木"),
    pgettext_lazy("weekday", "金"),
    pgettext_lazy("weekday", "土"),
    pgettext_lazy("weekday", "日"),
)


@dataclass
class DayCell:
    date: datetime.date
    in_year: bool
    is_school_day: bool
    by_rule: bool
    holiday_name: str
    override: CalendarDay | None
    closures: list[ClassClosure] = field(default_factory=list)

    @property
    def weekday_label(self) -> str:
        return str(WEEKDAY_LABELS[self.date.weekday()])

    @property
    def kind(self) -> str:
        return self.override.kind if self.override else ""

    @property
    def label(self) -> str:
        """How the day reads in the calendar: 授業日 / 休日 / the override's kind."""
        if not self.in_year:
            return "年度外"
        if self.override is not None:
            return str(self.override.get_kind_display())
        return "授業日" if self.is_school_day else "休日"


@dataclass
class CalendarMonth:
    school: School
    school_year: SchoolYear | None
    year: int
    month: int
    weeks: list[list[DayCell | None]]
    closures: list[ClassClosure]
    classes: list[HomeroomClass]
    rules: AttendanceRules

    @property
    def school_day_count(self) -> int:
        return sum(1 for week in self.weeks for cell in week if cell is not None and cell.is_school_day)

    @property
    def previous_month(self) -> tuple[int, int]:
        return (self.year - 1, 12) if self.month == 1 else (self.year, self.month - 1)

    @property
    def next_month(self) -> tuple[int, int]:
        return (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)

    @property
    def days(self) -> list[DayCell]:
        return [cell for week in self.weeks for cell in week if cell is not None]


def _school_year_for_month(school: School, first: datetime.date, last: datetime.date) -> SchoolYear | None:
    return (
        SchoolYear.objects.filter(school=school, start_date__lte=last, end_date__gte=first)
        .order_by("-start_date").first()
    )


def calendar_month(*, actor: Actor, school_id: int | str, year: int, month: int) -> CalendarMonth:
    """One month of the school's calendar: each day's kind, national holidays by name, 学級閉鎖 per class.
    Weeks start on Sunday, as Japanese school calendars print them."""
    school = manageable_school(actor, school_id)
    first, last = calendar.month_bounds(year, month)
    school_year = _school_year_for_month(school, first, last)
    rules = calendar.rules_for(school)
    overrides: dict[datetime.date, CalendarDay] = {}
    school_days: set[datetime.date] = set()
    closures: list[ClassClosure] = []
    classes: list[HomeroomClass] = []
    if school_year is not None:
        overrides = {d.date: d for d in CalendarDay.objects.filter(school_year=school_year, date__range=(first, last))}
        school_days = set(calendar.school_days(school_year, first, last, rules))
        closures = list(
            ClassClosure.objects.filter(homeroom_class__school_year=school_year, start_date__lte=last,
                                        end_date__gte=first).select_related("homeroom_class")
            .order_by("start_date", "homeroom_class__grade_code", "homeroom_class__name")
        )
        classes = list(HomeroomClass.objects.filter(school_year=school_year))
    weekdays = set(rules.weekdays)
    weeks: list[list[DayCell | None]] = []
    # Sunday first: pycalendar's firstweekday 6.
    for week in pycalendar.Calendar(firstweekday=6).monthdatescalendar(year, month):
        row: list[DayCell | None] = []
        for day in week:
            if day.month != month:
                row.append(None)
                continue
            in_year = school_year is not None and school_year.start_date <= day <= school_year.end_date
            row.append(DayCell(
                date=day, in_year=in_year, is_school_day=day in school_days,
                by_rule=day.weekday() in weekdays and not jpholiday.is_holiday(day),
                holiday_name=jpholiday.is_holiday_name(day) or "", override=overrides.get(day),
                closures=[c for c in closures if c.start_date <= day <= c.end_date],
            ))
        weeks.append(row)
    return CalendarMonth(school, school_year, year, month, weeks, closures, classes, rules)


def manageable_schools(*, actor: Actor) -> list[School]:
    """Schools whose calendar and rules the actor may change (directory.manage), for the attendance menu.
    Operators and boards manage many schools; the menu lists at most the first 50 by code."""
    return list(scope.schools_for(actor, roles.DIRECTORY_MANAGE).order_by("code")[:50])


def rules_get(*, actor: Actor, school_id: int | str) -> AttendanceRules:
    """The school's attendance rules (created with the defaults on first use)."""
    school = manageable_school(actor, school_id)
    return calendar.rules_for(school)
