"""The principal's overview: today by class, classes not entered, 出席停止 by disease, the 3- and 7-day alerts,
長期欠席 with its MEXT category, the chart, and the home page's attendance tasks."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.urls import reverse

from komu.attendance import calendar
from komu.attendance.models import DailyRegister, LongAbsenceRecord, MarkKind
from komu.attendance.selectors import overview as overview_selectors
from komu.attendance.services import long_absence, marks
from komu.attendance.tests.entry_helpers import (  # noqa: F401
    _fast_password_hashing,
    a_school_day,
    actor,
    school_days_of,
    set_today,
)
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.directory.models import HomeroomClass
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _absent(world: World, pupil: str, days: list[datetime.date], reason: str = "illness") -> None:
    who = actor(world, "principal_a")
    for day in days:
        marks.mark_set(actor=who, student_id=world.students[pupil].pk, date=day, kind=MarkKind.ABSENT,
                       absence_reason=reason)


def _year_days(world: World) -> list[datetime.date]:
    year = world.class_a1.school_year
    return calendar.school_days(year, year.start_date, year.end_date)


def test_today_by_class_counts_each_kind_and_lists_classes_not_entered(world: World) -> None:
    day = a_school_day(world.class_a1)
    who = actor(world, "principal_a")
    marks.mark_set(actor=who, student_id=world.students["a1_first"].pk, date=day, kind=MarkKind.ABSENT,
                   absence_reason="illness")
    marks.mark_set(actor=who, student_id=world.students["a1_second"].pk, date=day, kind=MarkKind.LATE)
    marks.mark_set(actor=who, student_id=world.students["a2_first"].pk, date=day, kind=MarkKind.SUSPENSION,
                   suspension_kind="infectious", disease="influenza")
    DailyRegister.objects.create(homeroom_class=world.class_a1, date=day, entered_by=world.user("homeroom_a1"),
                                 entered_at=datetime.datetime.now(datetime.UTC))
    data = overview_selectors.school_overview(actor=who, school_id=world.school_a.pk, day=day)
    by_class = {str(c.homeroom_class): c for c in data.classes}
    a1, a2 = by_class[str(world.class_a1)], by_class[str(world.class_a2)]
    assert (a1.pupils, a1.absent, a1.late_or_early, a1.excused) == (2, 1, 1, 0)
    assert (a2.pupils, a2.absent, a2.excused) == (1, 0, 1)
    assert [c.homeroom_class for c in data.not_entered] == [world.class_a2]
    assert data.totals == {"pupils": 3, "absent": 1, "excused": 1, "late": 1, "official": 0}
    assert AuditEvent.objects.filter(action="attendance.overview.viewed", school_id=world.school_a.pk).exists()


def test_suspensions_are_counted_by_disease_for_the_week(world: World) -> None:
    days = school_days_of(world.class_a1, 6)
    monday = next(d for d in days if d.weekday() == 0 and d + datetime.timedelta(days=1) in days)
    tuesday = monday + datetime.timedelta(days=1)
    who = actor(world, "principal_a")
    for pupil, dates in (("a1_first", [monday, tuesday]), ("a2_first", [tuesday])):
        for day in dates:
            marks.mark_set(actor=who, student_id=world.students[pupil].pk, date=day, kind=MarkKind.SUSPENSION,
                           suspension_kind="infectious", disease="influenza")
    marks.mark_set(actor=who, student_id=world.students["a1_second"].pk, date=monday, kind=MarkKind.SUSPENSION,
                   suspension_kind="conduct")
    data = overview_selectors.school_overview(actor=who, school_id=world.school_a.pk, day=tuesday)
    assert [(d.label, d.pupils, d.pupil_days, d.today) for d in data.diseases] == [("インフルエンザ", 2, 3, 2)]
    assert data.week_start == monday


def test_three_and_seven_consecutive_absences_raise_alerts_with_the_board_one_marked(world: World) -> None:
    days = _year_days(world)[20:30]
    _absent(world, "a1_first", days[:8])          # 8 days running
    _absent(world, "a1_second", days[4:7])        # 3 days ending two days before the 8th
    _absent(world, "a2_first", days[5:8], "accident")  # 3 days ending on the 8th
    DailyRegister.objects.create(homeroom_class=world.class_a1, date=days[7], entered_by=world.user("homeroom_a1"),
                                 entered_at=datetime.datetime.now(datetime.UTC))
    data = overview_selectors.school_overview(actor=actor(world, "principal_a"), school_id=world.school_a.pk,
                                              day=days[7])
    assert [(r.name, r.days, r.reportable) for r in data.runs] == [("髙橋 𠮷乃", 8, True), ("佐藤 花子", 3, False)]
    assert data.board_runs[0].since == days[0] and data.board_runs[0].reasons == ["病気"]
    assert data.short_runs[0].reasons == ["事故"]


def test_a_day_not_yet_entered_does_not_break_a_run(world: World) -> None:
    days = _year_days(world)[20:30]
    _absent(world, "a1_first", days[:3])
    # The fourth day has no register yet and no mark: the run of three still stands that morning.
    data = overview_selectors.school_overview(actor=actor(world, "principal_a"), school_id=world.school_a.pk,
                                              day=days[3])
    assert [r.days for r in data.runs] == [3]
    DailyRegister.objects.create(homeroom_class=world.class_a1, date=days[3], entered_by=world.user("homeroom_a1"),
                                 entered_at=datetime.datetime.now(datetime.UTC))
    data = overview_selectors.school_overview(actor=actor(world, "principal_a"), school_id=world.school_a.pk,
                                              day=days[3])
    assert data.runs == []  # entered, and the pupil came


def test_pupils_near_or_over_thirty_days_are_listed_with_their_category(world: World) -> None:
    days = _year_days(world)
    _absent(world, "a1_first", days[:25:1])
    _absent(world, "a2_first", days[:31])
    # Two absences out of the window counted only once each; a 公欠 never counts.
    marks.mark_set(actor=actor(world, "principal_a"), student_id=world.students["a1_second"].pk, date=days[0],
                   kind=MarkKind.OFFICIAL)
    long_absence.long_absence_record_set(actor=actor(world, "principal_a"), student_id=world.students["a2_first"].pk,
                                         year=world.class_a1.school_year.year, category="futoko")
    data = overview_selectors.school_overview(actor=actor(world, "principal_a"), school_id=world.school_a.pk,
                                              day=days[40])
    assert [(r.name, r.absent_days, r.reached, r.category) for r in data.long_absences] == [
        ("佐藤 花子", 31, True, "futoko"), ("髙橋 𠮷乃", 25, False, ""),
    ]


def test_the_long_absence_category_is_recorded_audited_and_cleared(world: World) -> None:
    year = world.class_a1.school_year.year
    who = actor(world, "vice_principal_a")
    pupil = world.students["a1_first"].pk
    record = long_absence.long_absence_record_set(actor=who, student_id=pupil, year=year, category="illness")
    assert record is not None and record.recorded_by == world.user("vice_principal_a")
    long_absence.long_absence_record_set(actor=who, student_id=pupil, year=year, category="")
    assert not LongAbsenceRecord.objects.exists()
    assert [e.detail["new"] for e in AuditEvent.objects.filter(action="attendance.long_absence.recorded")] == [
        "illness", ""]
    with pytest.raises(ValidationFailed, match="「病気」「経済的理由」「不登校」「その他」"):
        long_absence.long_absence_record_set(actor=who, student_id=pupil, year=year, category="lazy")
    with pytest.raises(NotFoundOrNoAccess):
        long_absence.long_absence_record_set(actor=actor(world, "homeroom_a1"),
                                             student_id=world.students["a2_first"].pk, year=year, category="illness")


@pytest.mark.parametrize("who", ["homeroom_a1", "teacher_a", "principal_b", "board_officer_a"])
def test_the_overview_is_for_those_who_oversee_the_school(world: World, who: str) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        overview_selectors.school_overview(actor=actor(world, who), school_id=world.school_a.pk)


def test_the_chart_draws_a_bar_per_class_scaled_to_round_numbers() -> None:
    class Fake:
        def __init__(self, name: str, counts: dict[str, int]) -> None:
            self.homeroom_class = HomeroomClass(grade_code="P1", name=name)
            self.counts = counts

    chart = overview_selectors.build_chart([Fake("1組", {"absent": 3, "late": 1}),  # type: ignore[list-item]
                                            Fake("2組", {"suspension": 7})])
    assert chart.scale_max == 8 and [v for _, v in chart.ticks] == [0, 2, 4, 6, 8]
    first, second = chart.bars
    assert [(s[0], s[4]) for s in first.segments] == [("欠席", 3), ("遅刻・早退", 1)]
    assert first.total == 4 and second.total == 7
    assert second.segments[0][3] == round((chart.width - chart.label_width - 40) * 7 / 8)
    assert second.y > first.y


def test_the_overview_page_draws_the_chart_and_the_alerts(world: World, signed_in: Any) -> None:
    days = _year_days(world)[20:30]
    _absent(world, "a1_first", days[:7])
    url = reverse("attendance:overview", kwargs={"school_id": world.school_a.pk})
    response = signed_in("principal_a").get(url, {"day": days[6].isoformat()})
    assert response.status_code == 200
    body = response.content.decode()
    assert "教育委員会への報告対象（施行令 §20）" in body and "髙橋 𠮷乃" in body
    assert '<svg class="chart"' in body and "<rect" in body
    assert signed_in("homeroom_a1").get(url).status_code == 404
    assert signed_in("nurse_a").get(url).status_code == 200


def test_recording_a_category_from_the_overview(world: World, signed_in: Any) -> None:
    url = reverse("attendance:long_absence", kwargs={"school_id": world.school_a.pk,
                                                     "student_id": world.students["a1_first"].pk})
    response = signed_in("principal_a").post(url, {"year": world.class_a1.school_year.year, "category": "economic"})
    assert response.status_code == 302
    assert LongAbsenceRecord.objects.get().category == "economic"
    assert signed_in("nurse_a").post(url, {"year": "2026", "category": "illness"}).status_code == 404


def test_the_home_page_asks_the_homeroom_teacher_for_todays_register_until_confirmed(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    day = a_school_day(world.class_a1)
    set_today(monkeypatch, day)
    tasks = overview_selectors.home_tasks(actor=actor(world, "homeroom_a1"))
    assert [t.title for t in tasks] == ["今日の出欠を入力"]
    assert tasks[0].urgent and tasks[0].url == reverse("attendance:register",
                                                       kwargs={"class_id": world.class_a1.pk, "day": day})
    marks.register_confirm(actor=actor(world, "homeroom_a1"), class_id=world.class_a1.pk, date=day)
    assert overview_selectors.home_tasks(actor=actor(world, "homeroom_a1")) == []


def test_the_home_page_tells_the_principal_about_classes_and_alerts_without_names(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    days = _year_days(world)[20:30]
    _absent(world, "a1_first", days[:7])
    set_today(monkeypatch, days[6])
    tasks = overview_selectors.home_tasks(actor=actor(world, "principal_a"))
    titles = {t.title: t.detail for t in tasks}
    assert titles["出欠が未確定の学級があります"].endswith("2 学級")
    assert titles["7日連続で欠席している児童生徒がいます"] == "1 名・教育委員会への報告対象（施行令 §20）"
    assert not any("髙橋" in t.detail for t in tasks)
    assert overview_selectors.home_tasks(actor=actor(world, "teacher_a")) == []
