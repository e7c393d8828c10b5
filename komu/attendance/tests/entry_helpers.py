"""Shared helpers for the morning-entry, calendar, overview and retention tests (test_marks*, test_entry*,
test_calendar*, test_overview*, test_retention*). Days are chosen inside the shared world's school year, so the
tests read the same whatever the date they run on; `today` pins the clock where a rule depends on it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from komu.access.scope import Actor, forget_actor, get_actor
from komu.attendance import calendar
from komu.directory.models import HomeroomClass
from komu.students.models import ClassMembership, Student
from komu.testing.world import World


def actor(world: World, name: str) -> Actor:
    user = world.user(name)
    forget_actor(user)
    return get_actor(user)


def school_days_of(klass: HomeroomClass, month: int) -> list[datetime.date]:
    """The 授業日 of a month of the class's school year (month 4–12 in the first calendar year, 1–3 after)."""
    year = klass.school_year
    cal_year = year.start_date.year if month >= 4 else year.start_date.year + 1
    start, end = calendar.month_bounds(cal_year, month)
    return calendar.school_days(year, start, end)


def a_school_day(klass: HomeroomClass, month: int = 6, n: int = 0) -> datetime.date:
    return school_days_of(klass, month)[n]


def a_saturday(klass: HomeroomClass, month: int = 6) -> datetime.date:
    year = klass.school_year
    day = datetime.date(year.start_date.year, month, 1)
    while day.weekday() != 5:
        day += datetime.timedelta(days=1)
    return day


def add_pupils(klass: HomeroomClass, n: int, *, start_no: int = 50) -> list[Student]:
    """Pupils with made-up names, for tests that need a full class."""
    pupils = []
    for i in range(n):
        student = Student(school=klass.school_year.school, family_name="試験", given_name=f"太郎{i}",
                          family_name_kana="シケン", given_name_kana="タロウ")
        student.save()
        ClassMembership.objects.create(student=student, homeroom_class=klass, shusseki_no=start_no + i)
        pupils.append(student)
    return pupils


def set_today(monkeypatch: pytest.MonkeyPatch, day: datetime.date) -> None:
    """timezone.localdate() answers `day` (the rules that depend on the date: confirming, the overview's default
    day, the home page's tasks)."""
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: day)


def headers_htmx() -> dict[str, Any]:
    return {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The shared world creates fifteen users; Argon2 would make every test wait for it. Autouse in every module
    # that imports it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
