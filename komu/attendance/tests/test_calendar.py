"""The school calendar (days, 臨時休業, 学級閉鎖) and the school's attendance rules: services and screens."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.urls import reverse

from komu.attendance import calendar
from komu.attendance.models import CalendarDay, ClassClosure, MarkKind, MonthlyRegister
from komu.attendance.registers import build_month
from komu.attendance.services import calendar as calendar_services
from komu.attendance.services import marks, rules
from komu.attendance.tests.entry_helpers import (  # noqa: F401
    _fast_password_hashing,
    a_saturday,
    a_school_day,
    actor,
)
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _first_holiday(world: World) -> datetime.date:
    """A national holiday on a weekday in the year (e.g. 海の日 in July)."""
    import jpholiday

    year = world.class_a1.school_year
    day = year.start_date
    while not (jpholiday.is_holiday(day) and day.weekday() < 5):
        day += datetime.timedelta(days=1)
    return day


def test_a_saturday_lesson_day_becomes_a_school_day_and_counts(world: World) -> None:
    saturday = a_saturday(world.class_a1)
    before = build_month(world.class_a1, saturday.year, saturday.month).days
    row = calendar_services.calendar_day_set(actor=actor(world, "principal_a"), school_id=world.school_a.pk,
                                             date=saturday, kind=CalendarDay.Kind.SCHOOL_DAY, note="学習発表会")
    assert row is not None and row.note == "学習発表会"
    assert calendar.is_school_day(world.class_a1.school_year, saturday)
    assert len(build_month(world.class_a1, saturday.year, saturday.month).days) == len(before) + 1
    event = AuditEvent.objects.get(action="attendance.calendar.day_set")
    assert event.detail == {"date": saturday.isoformat(), "old": "", "new": "school_day", "note": "学習発表会"}


def test_a_weekday_holiday_and_a_temporary_closure_are_not_school_days(world: World) -> None:
    day, other = a_school_day(world.class_a1, n=3), a_school_day(world.class_a1, n=4)
    who = actor(world, "vice_principal_a")
    calendar_services.calendar_day_set(actor=who, school_id=world.school_a.pk, date=day,
                                       kind=CalendarDay.Kind.HOLIDAY, note="開校記念日")
    calendar_services.calendar_day_set(actor=who, school_id=world.school_a.pk, date=other,
                                       kind=CalendarDay.Kind.SCHOOL_CLOSURE, note="台風")
    year = world.class_a1.school_year
    assert not calendar.is_school_day(year, day) and not calendar.is_school_day(year, other)


def test_giving_a_day_back_to_the_weekday_rule_removes_its_row(world: World) -> None:
    day = a_school_day(world.class_a1)
    who = actor(world, "school_admin_a")
    calendar_services.calendar_day_set(actor=who, school_id=world.school_a.pk, date=day,
                                       kind=CalendarDay.Kind.HOLIDAY)
    assert calendar_services.calendar_day_set(actor=who, school_id=world.school_a.pk, date=day, kind="") is None
    assert not CalendarDay.objects.exists()
    # A kind the rule already gives is not stored without a note.
    assert calendar_services.calendar_day_set(actor=who, school_id=world.school_a.pk, date=day,
                                              kind=CalendarDay.Kind.SCHOOL_DAY) is None


def test_a_national_holiday_can_be_made_a_school_day(world: World) -> None:
    holiday = _first_holiday(world)
    year = world.class_a1.school_year
    assert not calendar.is_school_day(year, holiday)
    calendar_services.calendar_day_set(actor=actor(world, "principal_a"), school_id=world.school_a.pk,
                                       date=holiday, kind=CalendarDay.Kind.SCHOOL_DAY)
    assert calendar.is_school_day(year, holiday)


@pytest.mark.parametrize("who", ["homeroom_a1", "teacher_a", "nurse_a", "principal_b"])
def test_only_those_who_manage_the_school_set_its_calendar(world: World, who: str) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        calendar_services.calendar_day_set(actor=actor(world, who), school_id=world.school_a.pk,
                                           date=a_school_day(world.class_a1), kind=CalendarDay.Kind.HOLIDAY)


def test_a_day_outside_any_school_year_or_a_bad_kind_is_refused(world: World) -> None:
    who = actor(world, "principal_a")
    with pytest.raises(ValidationFailed, match="含む年度が登録されていません"):
        calendar_services.calendar_day_set(actor=who, school_id=world.school_a.pk, date=datetime.date(1999, 5, 6),
                                           kind=CalendarDay.Kind.HOLIDAY)
    with pytest.raises(ValidationFailed, match="「授業日」「休業日」「臨時休業」から選んでください"):
        calendar_services.calendar_day_set(actor=who, school_id=world.school_a.pk,
                                           date=a_school_day(world.class_a1), kind="vacation")


def test_a_month_whose_register_was_submitted_keeps_its_calendar(world: World) -> None:
    day = a_school_day(world.class_a1)
    MonthlyRegister.objects.create(homeroom_class=world.class_a1, year=day.year, month=day.month,
                                   status=MonthlyRegister.Status.APPROVED)
    with pytest.raises(ValidationFailed, match="提出・承認済みのため"):
        calendar_services.calendar_day_set(actor=actor(world, "principal_a"), school_id=world.school_a.pk,
                                           date=day, kind=CalendarDay.Kind.HOLIDAY)


def test_a_class_closure_is_registered_counted_and_taken_back(world: World) -> None:
    start, end = a_school_day(world.class_a1, n=5), a_school_day(world.class_a1, n=7)
    who = actor(world, "principal_a")
    closure = calendar_services.class_closure_create(actor=who, class_id=world.class_a1.pk, start_date=start,
                                                     end_date=end, disease="influenza", note="インフルエンザ流行")
    sheet = build_month(world.class_a1, start.year, start.month)
    assert sheet.pupils[0].totals.closure_days == 3
    with pytest.raises(ValidationFailed, match="既に学級閉鎖が登録されています"):
        calendar_services.class_closure_create(actor=who, class_id=world.class_a1.pk, start_date=end,
                                               end_date=end)
    calendar_services.class_closure_delete(actor=who, closure_id=closure.pk)
    assert not ClassClosure.objects.exists()
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="attendance.closure")] == [
        "attendance.closure.created", "attendance.closure.deleted"]


def test_a_class_closure_must_be_a_real_period_in_the_year(world: World) -> None:
    who = actor(world, "principal_a")
    day = a_school_day(world.class_a1)
    with pytest.raises(ValidationFailed) as exc:
        calendar_services.class_closure_create(actor=who, class_id=world.class_a1.pk, start_date=day,
                                               end_date=day - datetime.timedelta(days=1))
    assert exc.value.errors["end_date"] == ["終了日は開始日と同じか、それより後の日付にしてください。"]
    with pytest.raises(ValidationFailed, match="期間内"):
        calendar_services.class_closure_create(actor=who, class_id=world.class_a1.pk,
                                               start_date=datetime.date(1999, 5, 6), end_date=day)
    with pytest.raises(ValidationFailed, match="原因の感染症を一覧から選んでください"):
        calendar_services.class_closure_create(actor=who, class_id=world.class_a1.pk, start_date=day, end_date=day,
                                               disease="cold")
    with pytest.raises(NotFoundOrNoAccess):
        calendar_services.class_closure_create(actor=actor(world, "principal_b"), class_id=world.class_a1.pk,
                                               start_date=day, end_date=day)


# --- Rules ------------------------------------------------------------------------------------------------------

def test_the_rules_change_the_arithmetic(world: World) -> None:
    day1, day2 = a_school_day(world.class_a1, n=1), a_school_day(world.class_a1, n=2)
    who = actor(world, "homeroom_a1")
    for day in (day1, day2):
        marks.mark_set(actor=who, student_id=world.students["a1_first"].pk, date=day, kind=MarkKind.LATE)
    assert build_month(world.class_a1, day1.year, day1.month).pupils[0].totals.absent_days == 0
    rules.attendance_rules_update(actor=actor(world, "principal_a"), school_id=world.school_a.pk,
                                  data=rules.RulesInput(lates_per_absence=2))
    assert build_month(world.class_a1, day1.year, day1.month).pupils[0].totals.absent_days == 1
    event = AuditEvent.objects.get(action="attendance.rules.updated")
    assert event.detail == {"old": {"lates_per_absence": 0}, "new": {"lates_per_absence": 2}}


def test_the_weekdays_rule_decides_the_school_days(world: World) -> None:
    saturday = a_saturday(world.class_a1)
    rules.attendance_rules_update(actor=actor(world, "principal_a"), school_id=world.school_a.pk,
                                  data=rules.RulesInput(weekdays=[0, 1, 2, 3, 4, 5]))
    assert calendar.is_school_day(world.class_a1.school_year, saturday)


@pytest.mark.parametrize(("data", "field", "message"), [
    (rules.RulesInput(lates_per_absence=31), "lates_per_absence",
     "遅刻・早退の換算は0（換算しない）から30までの数で入力してください。"),
    (rules.RulesInput(weekdays=[]), "weekdays", "授業を行う曜日を1つ以上選んでください。"),
    (rules.RulesInput(excused_kinds=["official"]), "excused_kinds",
     "出席停止・忌引等に数える区分は「出席停止」「忌引」から選んでください。"),
    (rules.RulesInput(bereavement_limits={1: 7, 2: 3}), "bereavement_3", "3親等の忌引の日数を0〜30日で入力してください。"),
    (rules.RulesInput(periods_per_day=0), "periods_per_day", "1日の時限数は1〜10で入力してください。"),
])
def test_bad_rules_are_refused_with_a_message(world: World, data: rules.RulesInput, field: str,
                                              message: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        rules.attendance_rules_update(actor=actor(world, "principal_a"), school_id=world.school_a.pk, data=data)
    assert exc.value.errors[field] == [message]


def test_arithmetic_rules_are_frozen_once_a_register_of_the_year_is_submitted(world: World) -> None:
    day = a_school_day(world.class_a1)
    MonthlyRegister.objects.create(homeroom_class=world.class_a1, year=day.year, month=day.month,
                                   status=MonthlyRegister.Status.SUBMITTED)
    who = actor(world, "principal_a")
    with pytest.raises(ValidationFailed, match="集計に関わる規則"):
        rules.attendance_rules_update(actor=who, school_id=world.school_a.pk,
                                      data=rules.RulesInput(lates_per_absence=6))
    updated = rules.attendance_rules_update(actor=who, school_id=world.school_a.pk,
                                            data=rules.RulesInput(report_cutoff=datetime.time(8, 30)))
    assert updated.report_cutoff == datetime.time(8, 30)


def test_rules_are_managed_within_scope(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        rules.attendance_rules_update(actor=actor(world, "homeroom_a1"), school_id=world.school_a.pk,
                                      data=rules.RulesInput())


# --- Screens ------------------------------------------------------------------------------------------------------

def test_the_calendar_month_shows_school_days_holidays_and_closures(world: World, signed_in: Any) -> None:
    holiday = _first_holiday(world)
    ClassClosure.objects.create(homeroom_class=world.class_a1, start_date=holiday + datetime.timedelta(days=1),
                                end_date=holiday + datetime.timedelta(days=1))
    url = reverse("attendance:calendar_month", kwargs={"school_id": world.school_a.pk, "year": holiday.year,
                                                       "month": holiday.month})
    response = signed_in("principal_a").get(url)
    assert response.status_code == 200
    body = response.content.decode()
    import jpholiday

    assert jpholiday.is_holiday_name(holiday) in body
    assert "1組 学級閉鎖" in body and "授業日" in body


def test_setting_a_day_from_the_calendar_screen(world: World, signed_in: Any) -> None:
    saturday = a_saturday(world.class_a1)
    url = reverse("attendance:calendar_month", kwargs={"school_id": world.school_a.pk, "year": saturday.year,
                                                       "month": saturday.month})
    response = signed_in("principal_a").post(url, {"day-date": saturday.isoformat(), "day-kind": "school_day",
                                                    "day-note": "土曜授業"})
    assert response.status_code == 302
    assert CalendarDay.objects.get().kind == CalendarDay.Kind.SCHOOL_DAY
    bad = signed_in("principal_a").post(url, {"closure-homeroom_class": world.class_a1.pk,
                                               "closure-start_date": saturday.isoformat(),
                                               "closure-end_date": (saturday - datetime.timedelta(days=2)).isoformat()})
    assert bad.status_code == 400
    assert "終了日は開始日と同じか、それより後の日付にしてください。" in bad.content.decode()


def test_the_calendar_and_rules_are_not_found_outside_scope(world: World, signed_in: Any) -> None:
    client = signed_in("homeroom_a1")
    assert client.get(reverse("attendance:calendar", kwargs={"school_id": world.school_a.pk})).status_code == 404
    client = signed_in("principal_b")
    assert client.get(reverse("attendance:rules", kwargs={"school_id": world.school_a.pk})).status_code == 404


def test_the_rules_form_saves_the_school_rules(world: World, signed_in: Any) -> None:
    url = reverse("attendance:rules", kwargs={"school_id": world.school_a.pk})
    client = signed_in("principal_a")
    assert client.get(url).status_code == 200
    response = client.post(url, {
        "lates_per_absence": "6", "bereavement_1": "7", "bereavement_2": "3", "bereavement_3": "1",
        "excused_kinds": ["suspension", "mourning"], "weekdays": ["0", "1", "2", "3", "4"],
        "report_cutoff": "08:15", "periods_per_day": "6",
    })
    assert response.status_code == 302
    saved = calendar.rules_for(world.school_a)
    assert saved.lates_per_absence == 6 and saved.official_absence_counts_as_present is False
    assert saved.report_cutoff == datetime.time(8, 15)
    missing = client.post(url, {"lates_per_absence": "6", "bereavement_1": "7", "bereavement_2": "3",
                                "bereavement_3": "1", "report_cutoff": "08:15", "periods_per_day": "6"})
    assert missing.status_code == 400
    assert "授業を行う曜日を1つ以上選んでください。" in missing.content.decode()
