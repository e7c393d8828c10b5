"""The demo's survey data (komu/demo/surveys.py): the weekly report comes prefilled with this week's outbreak at
demo-admin's school, and last month's survey has late schools for the board to remind."""

from __future__ import annotations

from typing import Any

from komu.access.scope import get_actor
from komu.accounts.models import User
from komu.demo.builder import build_demo
from komu.directory.models import School
from komu.surveys import selectors, services, sources
from komu.surveys.models import Survey


def test_the_demo_has_an_outbreak_and_a_late_survey(db: Any) -> None:
    build_demo(seed=7)
    school = School.objects.get(name="こもれび市立第一小学校")
    figures = sources.figures_for(school, start=None, end=None)
    assert figures["suspension:influenza"] == 4 and figures["suspension:total"] == 6
    assert figures["closures"] == 1 and figures["long_absence:futoko"] == 1
    board = get_actor(User.objects.get(username="demo-board"))
    survey = Survey.objects.get()
    progress = selectors.progress_for(actor=board, survey_id=survey.pk)
    assert progress.counts["submitted"] == 2 and progress.late == progress.total - 2 > 0
    assert services.survey_remind(actor=board, survey_id=survey.pk) == progress.late
