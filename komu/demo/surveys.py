"""Demo data for 照会・回答 (komu.surveys): this week's infectious-disease 出席停止 and a 学級閉鎖 at the schools, a
few long-term absentees, and last month's 月例 出欠状況 survey whose deadline has passed with two schools answered
and the rest late — so the board's weekly report comes prefilled and the progress page has late schools to remind.

Fixture data written through the ORM like the rest of the demo builder (komu/demo/builder.py calls `build`).
"""

from __future__ import annotations

import datetime
import json
import random

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
from komu.directory.models import Board, Role, School, StaffAssignment
from komu.students.models import ClassMembership, GuardianLink
from komu.surveys import sources
from komu.surveys.models import Survey, SurveyAnswer, SurveyField
from komu.surveys.presets import MONTHLY_ATTENDANCE

# Per school: (disease, pupils) suspended this week.
_OUTBREAK = ((Disease.INFLUENZA, 4), (Disease.GASTROENTERITIS, 1), (Disease.COVID19, 1))


def _school_days(today: datetime.date) -> list[datetime.date]:
    """This week's weekdays before today (today itself on a Monday): today's register is left for the visitor."""
    monday = today - datetime.timedelta(days=today.weekday())
    last = min(today - datetime.timedelta(days=1), monday + datetime.timedelta(days=4))
    if last < monday:
        return [monday]
    return [monday + datetime.timedelta(days=i) for i in range((last - monday).days + 1)]


def build(*, board: Board, schools: list[School], seed: int) -> None:
    rng = random.Random(seed + 5)
    today = timezone.localdate()
    days = _school_days(today)
    staff = {a.school_id: a.user for a in StaffAssignment.objects.filter(school__in=schools, role=Role.PRINCIPAL)
             .select_related("user")}
    memberships = list(ClassMembership.objects.filter(homeroom_class__school_year__school__in=schools,
                                                      homeroom_class__school_year__start_date__lte=today,
                                                      homeroom_class__school_year__end_date__gte=today)
                       .select_related("homeroom_class__school_year"))
    # The classes and children the other demo walkthroughs use (demo-homeroom's class, demo-guardian's children)
    # keep a clean register.
    spared_classes = set(StaffAssignment.objects.filter(user__username="demo-homeroom")
                         .values_list("homeroom_class_id", flat=True))
    spared_pupils = set(GuardianLink.objects.filter(guardian__user__username="demo-guardian")
                        .values_list("student_id", flat=True))
    by_school: dict[int, list[ClassMembership]] = {}
    for m in memberships:
        if m.homeroom_class_id in spared_classes or m.student_id in spared_pupils:
            continue
        by_school.setdefault(m.homeroom_class.school_year.school_id, []).append(m)
    marks: list[Mark] = []
    for school in schools:
        pupils = by_school.get(school.pk, [])
        if len(pupils) < 10 or school.pk not in staff:
            continue
        chosen = rng.sample(pupils, sum(n for _d, n in _OUTBREAK))
        i = 0
        for disease, count in _OUTBREAK:
            for m in chosen[i:i + count]:
                for day in days[-2:]:  # the last two school days of the week so far
                    marks.append(Mark(student_id=m.student_id, homeroom_class=m.homeroom_class, date=day,
                                      kind=MarkKind.SUSPENSION, suspension_kind=SuspensionKind.INFECTIOUS,
                                      disease=disease, updated_by=staff[school.pk]))
            i += count
        absentee = pupils[-1]
        LongAbsenceRecord.objects.create(student_id=absentee.student_id, school_year=absentee.homeroom_class.school_year,
                                         category=LongAbsenceCategory.FUTOKO, recorded_by=staff[school.pk],
                                         recorded_at=timezone.now())
    Mark.objects.bulk_create(marks, batch_size=500)
    if by_school.get(schools[0].pk):
        closed = by_school[schools[0].pk][0].homeroom_class
        ClassClosure.objects.create(homeroom_class=closed, start_date=days[-1],
                                    end_date=days[-1] + datetime.timedelta(days=2), disease=Disease.INFLUENZA,
                                    note="インフルエンザによる学級閉鎖")
    _last_months_survey(board, schools, today)


def _last_months_survey(board: Board, schools: list[School], today: datetime.date) -> None:
    officer = StaffAssignment.objects.filter(board=board, role=Role.BOARD_OFFICER).select_related("user").first()
    if officer is None:
        return
    end = today.replace(day=1) - datetime.timedelta(days=1)
    start = end.replace(day=1)
    now = timezone.now()
    survey = Survey.objects.create(
        board=board, title=f"{MONTHLY_ATTENDANCE.title}（{start.month}月分）", description=MONTHLY_ATTENDANCE.description,
        status=Survey.Status.PUBLISHED, period_start=start, period_end=end,
        deadline=now - datetime.timedelta(days=1), template_code=MONTHLY_ATTENDANCE.code, created_by=officer.user,
        published_at=now - datetime.timedelta(days=8), published_by=officer.user, target_label="所管の全校",
        remind_before_days=1, reminded_before_at=now - datetime.timedelta(days=2),
    )
    SurveyField.objects.bulk_create([
        SurveyField(survey=survey, key=s.key, position=i, label=s.label, kind=s.kind, required=s.required,
                    help_text=s.help_text, config=dict(s.config), source=s.source)
        for i, s in enumerate(MONTHLY_ATTENDANCE.fields)
    ])
    answers = []
    for index, school in enumerate(schools):
        answer = SurveyAnswer(survey=survey, school=school)
        if index < 2:  # two schools answered in time; the others are late
            figures = sources.figures_for(school, start=start, end=end,
                                          codes=[s.source for s in MONTHLY_ATTENDANCE.fields if s.source])
            values: dict[str, object] = {s.key: figures.get(s.source) for s in MONTHLY_ATTENDANCE.fields}
            values["note"] = ""
            answer.values = json.dumps(values, ensure_ascii=False, sort_keys=True)
            answer.prefilled = {s.key: figures[s.source] for s in MONTHLY_ATTENDANCE.fields if s.source}
            answer.status = SurveyAnswer.Status.SUBMITTED
            answer.started_at = answer.saved_at = now - datetime.timedelta(days=4)
            answer.submitted_at = now - datetime.timedelta(days=3)
        answers.append(answer)
    SurveyAnswer.objects.bulk_create(answers)
