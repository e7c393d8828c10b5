"""Which days are 授業日: the school's weekdays, minus national holidays (jpholiday), minus the school's holidays
and closures, plus its extra school days (CalendarDay rows). 学級閉鎖 days stay school days; they are excused."""

from __future__ import annotations

import datetime

import jpholiday

from komu.attendance.models import AttendanceRules, CalendarDay, ClassClosure
from komu.directory.models import HomeroomClass, School, SchoolYear


def rules_for(school: School) -> AttendanceRules:
    """The school's rules, created with the defaults on first use (every school has rules)."""
    rules, _ = AttendanceRules.objects.get_or_create(school=school)
    return rules


def _days(start: datetime.date, end: datetime.date) -> list[datetime.date]:
    return [start + datetime.timedelta(days=i) for i in range((end - start).days + 1)]


def school_days(school_year: SchoolYear, start: datetime.date, end: datetime.date,
                rules: AttendanceRules | None = None) -> list[datetime.date]:
    """授業日 of the school year between start and end (inclusive), clipped to the year."""
    start = max(start, school_year.start_date)
    end = min(end, school_year.end_date)
    if start > end:
        return []
    rules = rules or rules_for(school_year.school)
    weekdays = set(rules.weekdays)
    overrides = dict(
        # order_by(): the model's ordering would join the school year and school for nothing.
        CalendarDay.objects.filter(school_year=school_year, date__range=(start, end)).order_by()
        .values_list("date", "kind")
    )
    return [day for day in _days(start, end) if _is_school_day(day, weekdays, overrides.get(day))]


def _is_school_day(day: datetime.date, weekdays: set[int] | list[int], override: str | None) -> bool:
    if override == CalendarDay.Kind.SCHOOL_DAY:
        return True
    if override in (CalendarDay.Kind.HOLIDAY, CalendarDay.Kind.SCHOOL_CLOSURE):
        return False
    return day.weekday() in weekdays and not jpholiday.is_holiday(day)


def is_school_day_known(school_year: SchoolYear, day: datetime.date, rules: AttendanceRules,
                        override: str | None) -> bool:
    """is_school_day when the caller has already read the calendar's entry for the day (`override`: its kind, or
    None when the calendar says nothing), e.g. in the same query as the class."""
    if not (school_year.start_date <= day <= school_year.end_date):
        return False
    return _is_school_day(day, rules.weekdays, override)


def is_school_day(school_year: SchoolYear, day: datetime.date, rules: AttendanceRules | None = None) -> bool:
    """`rules`: the school's rules when the caller already holds them (saves their query)."""
    return bool(school_days(school_year, day, day, rules))


def closure_days(homeroom_class: HomeroomClass, start: datetime.date, end: datetime.date) -> set[datetime.date]:
    days: set[datetime.date] = set()
    for closure in ClassClosure.objects.filter(homeroom_class=homeroom_class, start_date__lte=end,
                                               end_date__gte=start):
        days.update(d for d in _days(max(start, closure.start_date), min(end, closure.end_date)))
    return days


def month_bounds(year: int, month: int) -> tuple[datetime.date, datetime.date]:
    start = datetime.date(year, month, 1)
    end = (start + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1)
    return start, end
