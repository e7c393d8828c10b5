"""Answers prefilled from the school's own data: 出席停止 by disease, 学級閉鎖, enrolment, long-term absence; the
answer records which figures were prefilled and which the school edited."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone

from komu.attendance.models import (
    ClassClosure,
    Disease,
    LongAbsenceCategory,
    LongAbsenceRecord,
    Mark,
    MarkKind,
    SuspensionKind,
)
from komu.surveys import aggregate, selectors, services, sources
from komu.surveys.models import SurveyAnswer
from komu.testing.world import World

from .conftest import Posted, act, publish


def monday(world: World) -> datetime.date:
    start = world.class_a1.school_year.start_date + datetime.timedelta(days=60)
    return start - datetime.timedelta(days=start.weekday())


def suspend(world: World, who: str, on: datetime.date, disease: str, klass: Any = None) -> None:
    Mark.objects.create(student=world.students[who], homeroom_class=klass or world.class_a1, date=on,
                        kind=MarkKind.SUSPENSION, suspension_kind=SuspensionKind.INFECTIOUS, disease=disease,
                        updated_by=world.user("homeroom_a1"))


def test_figures_count_the_week_of_the_school_only(world: World) -> None:
    week = monday(world)
    suspend(world, "a1_first", week, Disease.INFLUENZA)
    suspend(world, "a1_first", week + datetime.timedelta(days=1), Disease.INFLUENZA)  # same pupil, next day
    suspend(world, "a1_second", week + datetime.timedelta(days=2), Disease.INFLUENZA)
    suspend(world, "a2_first", week, Disease.GASTROENTERITIS, world.class_a2)
    suspend(world, "a1_second", week - datetime.timedelta(days=3), Disease.COVID19)  # the week before
    suspend(world, "b1_first", week, Disease.INFLUENZA, world.class_b1)  # another school
    Mark.objects.create(student=world.students["a2_first"], homeroom_class=world.class_a2,
                        date=week + datetime.timedelta(days=3), kind=MarkKind.ABSENT, absence_reason="illness",
                        updated_by=world.user("homeroom_a1"))
    ClassClosure.objects.create(homeroom_class=world.class_a1, start_date=week + datetime.timedelta(days=3),
                                end_date=week + datetime.timedelta(days=9), disease=Disease.INFLUENZA)
    LongAbsenceRecord.objects.create(student=world.students["a1_first"], school_year=world.class_a1.school_year,
                                     category=LongAbsenceCategory.FUTOKO, recorded_by=world.user("principal_a"),
                                     recorded_at=timezone.now())
    figures = sources.figures_for(world.school_a, start=week, end=week + datetime.timedelta(days=6))
    assert figures["suspension:influenza"] == 2
    assert figures["suspension:gastroenteritis"] == 1
    assert figures["suspension:covid19"] == 0
    assert figures["suspension:total"] == 3
    assert figures["closures"] == 1 and figures["closure_days"] == 4  # Thursday to Sunday of this week
    assert figures["absent_pupils"] == 1 and figures["absence_days"] == 1
    assert figures["enrolment:g1"] == 3 and figures["enrolment:g2"] == 0 and figures["enrolment:total"] == 3
    assert figures["long_absence:futoko"] == 1 and figures["long_absence:total"] == 1


def test_the_weekly_template_comes_prefilled_and_records_what_was_edited(world: World) -> None:
    week = monday(world)
    suspend(world, "a1_first", week, Disease.INFLUENZA)
    suspend(world, "a1_second", week + datetime.timedelta(days=1), Disease.INFLUENZA)
    ClassClosure.objects.create(homeroom_class=world.class_a2, start_date=week, end_date=week)
    board = act(world, "board_officer_a")
    survey = services.survey_create(actor=board, title="", template_code="infectious_weekly",
                                    period_start=week, period_end=week + datetime.timedelta(days=6))
    assert survey.title == "感染症の発生状況（週報）"
    publish(world, survey)
    answer = SurveyAnswer.objects.get(survey=survey, school=world.school_a)
    admin = act(world, "school_admin_a")

    shown = selectors.answer_get_for_school(actor=admin, answer_id=answer.pk)
    by_key = {f.spec.key: f for f in shown.fields}
    assert by_key["flu"].raw == "2" and by_key["flu"].prefilled and not by_key["flu"].edited
    assert by_key["closure_classes"].raw == "1" and by_key["suspension_total"].raw == "2"

    # The school confirms everything but corrects influenza (a pupil reported late) and answers the rest.
    post = Posted({f.name: f.raw for f in shown.fields})
    post.update({"f_flu": "3", "f_school_closure": "なし"})
    services.answer_save(actor=admin, answer_id=answer.pk, data=post)
    answer.refresh_from_db()
    assert answer.prefilled["flu"] == 2 and answer.prefilled["closure_classes"] == 1
    assert services.edited_keys(answer.prefilled, services.answer_values(answer)) == ["flu"]

    detail = selectors.answer_get_for_board(actor=board, survey_id=survey.pk, answer_id=answer.pk)
    flu = next(f for f in detail.fields if f.spec.key == "flu")
    assert flu.edited and flu.prefilled_value == 2 and flu.value == 3
    header = aggregate.headers(selectors.specs_of(survey))
    row = aggregate.rows(selectors.specs_of(survey), [aggregate.AnswerRecord(
        "x", "x", "draft", "作成中", None, 1, services.answer_values(answer), answer.prefilled)])[0]
    assert row[header.index(aggregate.EDITED_HEADING)] == "出席停止（インフルエンザ）"


def test_the_monthly_template_prefills_enrolment_by_grade(world: World) -> None:
    board = act(world, "board_officer_a")
    survey = services.survey_create(actor=board, title="", template_code="monthly_attendance")
    publish(world, survey)
    answer = SurveyAnswer.objects.get(survey=survey, school=world.school_a)
    # The template's period is this month, inside the world's 年度 (built around today).
    shown = selectors.answer_get_for_school(actor=act(world, "principal_a"), answer_id=answer.pk)
    by_key = {f.spec.key: f for f in shown.fields}
    assert by_key["enrolment_g1"].raw == "3" and by_key["enrolment_total"].raw == "3"
    assert by_key["enrolment_g2"].raw == "0"


def test_refilling_takes_new_cases_but_keeps_what_the_school_edited(world: World, signed_in: Any) -> None:
    week = monday(world)
    suspend(world, "a1_first", week, Disease.INFLUENZA)
    board = act(world, "board_officer_a")
    survey = services.survey_create(actor=board, title="", template_code="infectious_weekly",
                                    period_start=week, period_end=week + datetime.timedelta(days=6))
    publish(world, survey)
    answer = SurveyAnswer.objects.get(survey=survey, school=world.school_a)
    admin = act(world, "school_admin_a")
    shown = selectors.answer_get_for_school(actor=admin, answer_id=answer.pk)
    post = Posted({f.name: f.raw for f in shown.fields})
    post["f_closure_classes"] = "2"  # the school knows of a closure not yet entered
    services.answer_save(actor=admin, answer_id=answer.pk, data=post)
    # Later that week: two more influenza cases are entered in the register.
    suspend(world, "a1_second", week + datetime.timedelta(days=3), Disease.INFLUENZA)
    suspend(world, "a2_first", week + datetime.timedelta(days=3), Disease.INFLUENZA, world.class_a2)
    response = signed_in("school_admin_a").post(f"/surveys/answers/{answer.pk}/", {"action": "refill"}, follow=True)
    assert "2項目が変わりました" in response.content.decode()  # influenza and the total
    answer.refresh_from_db()
    values = services.answer_values(answer)
    assert values["flu"] == 3 and values["suspension_total"] == 3
    assert values["closure_classes"] == 2 and answer.prefilled["closure_classes"] == 0
    assert services.edited_keys(answer.prefilled, values) == ["closure_classes"]
